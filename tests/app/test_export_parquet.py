"""`epochbot export JOURNAL --parquet OUT`: every row kept, readable by ordinary tools."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from epochbot.app.commands.export import export_parquet  # noqa: E402 - only once pyarrow is known to be installed

REPO = Path(__file__).resolve().parents[2]
CAPTURE = Path("/work/shared/captures/binance-spot-2021-10-12.jsonl")


def _journal(path: Path, rows: list[dict], header: dict | None = None) -> None:
    lines = [json.dumps(header or {"capture": 1, "venue": "binance-usdm", "source": "test"})] + [
        json.dumps(r) for r in rows
    ]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def test_v1_rows_and_unknown_row_kinds_all_land_in_one_table(tmp_path):
    frame = json.dumps(
        {
            "stream": "btcusdt@depth@100ms",
            "data": {"e": "depthUpdate", "E": 1700000000123, "s": "BTCUSDT", "U": 1, "u": 2, "pu": 0, "b": [], "a": []},
        }
    )
    _journal(
        tmp_path / "journal-000001.jsonl",
        [
            {
                "ts": 1.0,
                "kind": "open",
                "url": "ws://x/public/stream?streams=btcusdt@depth@100ms",
                "data": "",
                "epoch": 1,
            },
            {"ts": 1.1, "kind": "ws", "data": frame, "epoch": 1},
            {
                "ts": 1.2,
                "kind": "rest",
                "url": "http://x/fapi/v1/depth?symbol=BTCUSDT&limit=1000",
                "data": "{}",
                "epoch": 1,
            },
        ],
    )
    _journal(
        tmp_path / "journal-000002.jsonl.gz",
        [
            {"ts": 2.0, "kind": "timer", "epoch": 1, "seq": 7},  # a row kind a later journal version may add
            {"ts": 2.1, "kind": "control", "data": {"type": "OperatorPause", "paused": True}, "epoch": 1},
            "not an object",
        ],
    )
    out = tmp_path / "out.parquet"

    result = export_parquet(tmp_path, out)

    table = pq.read_table(out).to_pylist()
    assert result["rows"] == 5 and result["files"] == 2 and result["skipped"] == 1
    assert [r["kind"] for r in table] == ["open", "ws", "rest", "timer", "control"]
    ws = table[1]
    assert (ws["symbol"], ws["stream"], ws["event"], ws["exchange_ms"], ws["epoch"]) == (
        "BTCUSDT",
        "btcusdt@depth@100ms",
        "depthUpdate",
        1700000000123,
        1,
    )
    assert ws["data"] == frame  # verbatim
    assert table[2]["symbol"] == "BTCUSDT"
    assert json.loads(table[3]["extra"]) == {"seq": 7}
    assert json.loads(table[4]["data"]) == {"type": "OperatorPause", "paused": True}
    headers = json.loads(pq.read_schema(out).metadata[b"epochbot.headers"])
    assert headers["journal-000001.jsonl"]["venue"] == "binance-usdm"


@pytest.mark.skipif(not CAPTURE.exists(), reason="shared capture not present")
def test_the_cli_exports_a_real_capture_with_every_row(tmp_path):
    out = tmp_path / "capture.parquet"
    rows = sum(1 for line in CAPTURE.read_text().splitlines()[1:] if line.strip())

    proc = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "export", str(CAPTURE), "--parquet", str(out), "--batch", "1000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out, columns=["kind", "symbol", "event"])
    assert table.num_rows == rows
    symbols = set(table.column("symbol").to_pylist()) - {None}
    assert {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"} <= symbols


def test_a_missing_journal_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "export",
            str(tmp_path / "nope.jsonl"),
            "--parquet",
            str(tmp_path / "o.parquet"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 2 and "no such journal" in proc.stderr
