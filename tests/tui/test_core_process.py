"""The dashboard's core in a child process: snapshots in, control events out, clean exits."""

from __future__ import annotations

import threading
import time

from epochbot.app.config import load_settings
from epochbot.app.console.core_process import ProcessSource
from epochbot.model import events as ev


def wait_for(predicate, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def start(tmp_path) -> tuple[ProcessSource, dict, threading.Thread]:
    settings = load_settings(
        None, {"storage": str(tmp_path / "db.sqlite3"), "strategy": {"name": "none"}, "symbols": "BTCUSDT"}, {}
    )
    source = ProcessSource(settings)
    source.start()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", source.serve()), daemon=True)
    thread.start()
    return source, result, thread


def test_the_child_core_publishes_snapshots_obeys_the_operator_and_exits_cleanly(tmp_path):
    source, result, thread = start(tmp_path)

    synced = wait_for(
        lambda: (
            (s := source.latest()) is not None
            and s.books
            and s.books[0].state == "synced"
            and s.mode.mode == "normal"
            and s
        )
    )
    source.submit(ev.OperatorSetMode(mode="halted"))
    halted = wait_for(lambda: (s := source.latest()) is not None and s.mode.mode == "halted" and s)
    source.request_stop("test done")
    thread.join(20)

    assert synced.venue == "sim" and synced.epoch >= 1
    assert halted.mode.source == "operator"
    assert result["code"] == 0 and source.error is None


def test_the_child_core_stops_when_its_console_goes_away(tmp_path):
    source, result, thread = start(tmp_path)
    wait_for(lambda: source.latest() is not None)

    source._control.close()  # what the OS does for a console killed with SIGKILL
    thread.join(20)

    assert result["code"] == 0
