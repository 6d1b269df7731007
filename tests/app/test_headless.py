"""Headless runner: lifecycle, exit codes, report, logs, and the no-Textual boundary."""

from __future__ import annotations

import io
import json
import queue
import signal
import subprocess
import sys
import threading
import time

import orjson

from epochbot.app.config import load_settings
from epochbot.app.daemon.headless import HeadlessRunner, run_headless
from epochbot.app.daemon.logging_json import JsonLogWriter
from tests.app.conftest import REPO, TOKEN, FakeRuntime
from tests.helpers import child_env

API_KEY = "live-api-key-must-not-leak-42"


def headless_settings(tmp_path, **flags):
    base = {
        "control": {"port": 0},
        "status_interval_s": 0.05,
        "report": str(tmp_path / "report.json"),
        "headless": True,
    }
    for key, value in flags.items():
        if isinstance(value, dict):
            base.setdefault(key, {}).update(value)
        else:
            base[key] = value
    return load_settings(flags=base, env={"EPOCHBOT_CONTROL__TOKEN": TOKEN, "EPOCHBOT_API_KEY": API_KEY})


async def run_with(settings, runtime):
    out = io.BytesIO()
    log = JsonLogWriter(out, level="debug", secrets=[TOKEN, API_KEY])
    code = await HeadlessRunner(settings, log, lambda s: runtime).run()
    log.close()
    return code, [orjson.loads(line) for line in out.getvalue().splitlines()]


async def test_duration_elapsing_stops_gracefully_with_exit_0_and_a_report(tmp_path, world):
    settings = headless_settings(tmp_path, duration=0.3)
    runtime = FakeRuntime(world)

    code, lines = await run_with(settings, runtime)

    assert code == 0
    assert runtime.stop_reasons == ["duration elapsed"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["epochs"][0]["cause"] == "startup"
    assert report["exit_code"] == 0 and report["stop_reason"] == "duration elapsed"
    assert lines[-1]["msg"] == "exit" and lines[-1]["exit_code"] == 0


async def test_status_lines_carry_epoch_mode_confidence_and_per_symbol_state(tmp_path, world):
    code, lines = await run_with(headless_settings(tmp_path, duration=0.3), FakeRuntime(world))

    status = [line for line in lines if line["msg"] == "status"]
    assert len(status) >= 2  # periodic ones plus the final one
    first = status[0]
    assert first["epoch"] == 1 and first["mode"] == "normal" and first["confidence"] == 1.0
    assert first["symbols"]["BTCUSDT"] == {"state": "synced", "last_update_id": 1001, "gaps": 0, "resyncs": 0}
    for key in ("reasons", "queue_delay_p99_ms", "transport_latency_p99_ms", "silence_ms", "ttcr_count", "ttcr_p99_ms"):
        assert key in first
    assert status[-1]["final"] is True


async def test_runtime_log_records_are_forwarded_as_json_lines_with_their_fields(tmp_path, world):
    code, lines = await run_with(headless_settings(tmp_path, duration=0.1), FakeRuntime(world))

    forwarded = next(line for line in lines if line["msg"] == "fake runtime running")
    assert forwarded["recv_ts"] == 1 and forwarded["process_ts"] == 2 and forwarded["queue_delay_ms"] == 0.5
    assert forwarded["epoch"] == 1


async def test_the_control_endpoint_is_on_by_default_in_headless_mode(tmp_path, world):
    code, lines = await run_with(headless_settings(tmp_path, duration=0.1), FakeRuntime(world))

    listening = next(line for line in lines if line["msg"] == "control endpoint listening")
    assert listening["url"].startswith("http://127.0.0.1:")
    assert listening["mutating_calls"] == "enabled"


async def test_the_control_endpoint_can_be_disabled(tmp_path, world):
    code, lines = await run_with(
        headless_settings(tmp_path, duration=0.1, control={"enabled": False}), FakeRuntime(world)
    )

    assert not any(line["msg"] == "control endpoint listening" for line in lines)


async def test_fatal_state_corruption_exits_3_and_still_writes_the_report(tmp_path, world):
    runtime = FakeRuntime(world, exit_code=3, stop_when_run=True)

    code, lines = await run_with(headless_settings(tmp_path), runtime)

    assert code == 3
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 3
    assert lines[-1]["level"] == "critical"


async def test_a_crashing_runtime_exits_1_and_logs_why(tmp_path, world):
    runtime = FakeRuntime(world, fail=RuntimeError("boom"))

    code, lines = await run_with(headless_settings(tmp_path), runtime)

    assert code == 1
    failure = next(line for line in lines if line["msg"] == "runtime failed")
    assert failure["error"] == "RuntimeError: boom" and "Traceback" in failure["traceback"]


async def test_secrets_never_reach_the_logs_or_the_report(tmp_path, world):
    runtime = FakeRuntime(world)
    settings = headless_settings(tmp_path, duration=0.2)
    # A careless component logs a secret in a field: the writer must mask it.
    runtime.add_log_listener(lambda record: None)
    original_run = runtime.run

    async def leaky_run():
        runtime.log("error", "signed request failed", url=f"https://x/order?apiKey={API_KEY}", token=TOKEN)
        return await original_run()

    runtime.run = leaky_run

    code, lines = await run_with(settings, runtime)

    text = json.dumps(lines) + (tmp_path / "report.json").read_text()
    assert API_KEY not in text and TOKEN not in text
    assert "apiKey=********" in text


def test_an_unwritable_report_directory_is_a_config_error_before_running(tmp_path, world):
    settings = headless_settings(tmp_path, report=str(tmp_path / "missing" / "r.json"))
    runtime = FakeRuntime(world)

    code = run_headless(settings, runtime_factory=lambda s: runtime, stream=io.BytesIO())

    assert code == 78 and not runtime.ran


def test_headless_entry_points_never_import_textual():
    code = (
        "import sys\n"
        "import epochbot.app.cli, epochbot.app.daemon.headless, epochbot.app.daemon.control, "
        "epochbot.app.commands.ctl, epochbot.app.config, epochbot.app.daemon.logging_json\n"
        "from epochbot.app.cli import build_parser\n"
        "build_parser().parse_args(['--headless'])\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=REPO)

    assert result.returncode == 0, result.stdout + result.stderr


def test_without_a_subcommand_and_without_headless_the_dashboard_is_requested(monkeypatch, tmp_path):
    import types

    from epochbot.app import cli

    calls = []
    fake_tui = types.ModuleType("epochbot.app.console.tui")
    fake_tui.run_dashboard = lambda settings: calls.append(settings) or 0
    monkeypatch.setitem(sys.modules, "epochbot.app.console.tui", fake_tui)

    code = cli.main(["--symbols", "SOLUSDT"])

    assert code == 0
    assert calls[0].symbols == ("SOLUSDT",) and calls[0].headless is False


# ------------------------------------------------------------------------------ end to end


def test_headless_against_the_embedded_simulator_runs_for_its_duration_and_reports(tmp_path):
    report_path = tmp_path / "r.json"
    code = (
        "import sys\n"
        "from epochbot.app.cli import main\n"
        f"rc = main(['--headless', '--duration', '3', '--report', {str(report_path)!r}, '--symbols', 'BTCUSDT,ETHUSDT',"
        " '--control-port', '0', '--status-interval', '1'])\n"
        "assert 'textual' not in sys.modules, 'headless imported textual'\n"
        "sys.exit(rc)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=40, cwd=tmp_path, env=child_env()
    )

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["epochs"][0]["cause"] == "startup"
    assert report["epochs"][0]["resync_ms"] > 0
    assert set(report["symbols"]) == {"BTCUSDT", "ETHUSDT"}
    assert all(info["synced"] for info in report["symbols"].values())
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    assert any(line["msg"] == "status" and line["symbols"] for line in lines)


def test_sigterm_stops_a_running_daemon_with_exit_0_and_writes_the_report(tmp_path):
    report_path = tmp_path / "r.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "--headless",
            "--report",
            str(report_path),
            "--control-port",
            "0",
            "--symbols",
            "BTCUSDT",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
        env=child_env(),
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(raw) for raw in proc.stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + 25
        while True:
            raw = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if json.loads(raw)["msg"] == "resynchronized":
                break

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["stop_reason"] == "signal SIGTERM"
    assert report["symbols"]["BTCUSDT"]["synced"] is True


def test_when_the_dashboard_is_missing_the_cli_says_so_and_exits_1(monkeypatch, capsys):
    from epochbot.app import cli

    monkeypatch.setitem(
        sys.modules, "epochbot.app.console.tui", None
    )  # import of epochbot.app.console.tui fails as if absent

    code = cli.main([])

    assert code == 1
    assert "epochbot --headless" in capsys.readouterr().err
