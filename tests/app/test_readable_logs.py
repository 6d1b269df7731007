"""Readable headless output: --log-format text, --log-file, the one-line status and summary."""

from __future__ import annotations

import io
import json

from epochbot.app.daemon.logging_json import JsonLogWriter, LogFanout
from epochbot.engine.engine import LogRecord
from tests.app.conftest import run_cli


def test_text_format_is_one_readable_line_per_record_with_secrets_masked():
    out = io.BytesIO()
    writer = JsonLogWriter(out, level="info", fmt="text", secrets=["hunter2-secret-token"])

    writer.write_record(
        LogRecord(
            1_700_000_000_123_456_789,
            "info",
            "fill BUY 0.003 BTCUSDT @ 60001.1",
            2,
            {"symbol": "BTCUSDT", "side": "BUY", "note": "hunter2-secret-token"},
        )
    )
    writer.emit(
        "info",
        "status",
        epoch=2,
        ts_ns=1_700_000_001_000_000_000,
        summary="epoch 2 normal conf 1.00 | trading off",
        mode="normal",
    )
    writer.write_record(LogRecord(1_700_000_002_000_000_000, "debug", "order place", 2, {}))
    writer.close()

    first, second = out.getvalue().decode().splitlines()
    assert first.startswith(
        "2023-11-14T22:13:20.123Z INFO  e2   fill BUY 0.003 BTCUSDT @ 60001.1  symbol=BTCUSDT side=BUY note=********"
    )
    assert second.endswith("status: epoch 2 normal conf 1.00 | trading off")


def test_a_fanout_sends_each_line_to_every_writer_in_its_own_format():
    text, js = io.BytesIO(), io.BytesIO()
    log = LogFanout(JsonLogWriter(text, fmt="text"), JsonLogWriter(js))

    log.emit("warn", "control: authentication failed", epoch=1, path="/pause")
    log.close()

    assert "WARN  e1   control: authentication failed  path=/pause" in text.getvalue().decode()
    assert json.loads(js.getvalue())["path"] == "/pause"


def test_a_headless_run_in_text_format_also_writes_json_to_the_log_file(tmp_path):
    log_file = tmp_path / "epochbot.log"

    done = run_cli(
        "--headless",
        "--duration",
        "4",
        "--status-interval",
        "1",
        "--log-format",
        "text",
        "--log-file",
        str(log_file),
        "--no-control",
        "--storage",
        str(tmp_path / "db.sqlite3"),
        "--symbols",
        "BTCUSDT",
        timeout=60,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stderr.splitlines()
    assert text and not any(line.startswith("{") for line in text)
    assert any(" status: epoch " in line and "PnL net" in line for line in text)
    summary = [line for line in text if "session summary: ran " in line]
    assert len(summary) == 1 and "fills " in summary[0] and "exit 0" in summary[0]
    stored = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert stored[0]["msg"] == "starting" and stored[-1]["msg"] == "exit"
