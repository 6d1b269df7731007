"""End to end: the dashboard at 120x36 over the REAL core process (the default demo: embedded
simulator, quoter) - what an operator reads must be the current truth.

* the newest log line on screen is seconds old (the log follows);
* faults injected into the simulator (``POST /_sim/fault`` on ``--sim-port``) appear on screen
  within 3 s: a diff gap (book resync with its cause), a dropped connection (a new epoch), and a
  snapshot that fails with HTTP 503 (the book banner names the status, not an old gap).

The screen is read as text from Textual's compositor, i.e. what the terminal shows.
"""

from __future__ import annotations

import json
import time
import urllib.request

from rich.console import Console

from epochbot.app.config import load_settings
from epochbot.app.console.core_process import ProcessSource
from epochbot.app.console.tui import ConsoleApp
from epochbot.widgets._format import clock_utc
from epochbot.widgets.event_log import EventLog
from tests.helpers import free_port

SIZE = (120, 36)


def screen_text(app) -> str:
    update = app.screen._compositor.render_update(full=True)
    console = Console(width=SIZE[0], record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(update)
    return console.export_text()


def sim(port: int, method: str, path: str, body: dict | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


async def wait_screen(pilot, app, predicate, timeout_s: float, what: str) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        await pilot.pause(0.1)
        text = screen_text(app)
        if predicate(text, app.snapshot):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"not on screen within {timeout_s} s: {what}\n{text}")


async def test_dashboard_shows_a_seconds_old_log_line_and_injected_faults_within_3_s(tmp_path):
    port = free_port()
    settings = load_settings(None, {"sim": {"port": port}, "storage": str(tmp_path / "db.sqlite3")}, {})
    source = ProcessSource(settings)
    source.start()
    app = ConsoleApp(source, symbols=settings.symbols, venue="sim", install_signal_handlers=False)
    async with app.run_test(size=SIZE) as pilot:
        try:
            await wait_screen(
                pilot,
                app,
                lambda t, s: (
                    s is not None
                    and s.book("BTCUSDT") is not None
                    and s.book("BTCUSDT").state == "synced"
                    and "synced" in t
                ),
                40,
                "BTCUSDT synced",
            )
            # The newest log line the core has (at the pane's level) is on screen, seconds old.
            log = app.query_one(EventLog)

            def newest_on_screen(text, snap) -> bool:
                shown = [r for r in snap.log if log._passes(r, snap.epoch)]
                return bool(shown) and clock_utc(shown[-1].ts_ns) in text and snap.at_ns - shown[-1].ts_ns < 5e9

            await wait_screen(pilot, app, newest_on_screen, 3, "the newest log line")
            assert log.following

            sim(port, "POST", "/_sim/fault", {"kind": "gap", "symbol": "BTCUSDT"})
            await wait_screen(
                pilot, app, lambda t, s: "gap" in t and any(r.symbol == "BTCUSDT" for r in s.book_resyncs), 3, "the gap"
            )

            epoch = app.snapshot.epoch
            sim(port, "POST", "/_sim/fault", {"kind": "drop"})
            await wait_screen(
                pilot, app, lambda t, s: f"epoch {epoch + 1}" in t or "SESSION DOWN" in t, 3, "the dropped connection"
            )

            await wait_screen(
                pilot, app, lambda t, s: s.book("BTCUSDT").state == "synced", 30, "resynced after the drop"
            )
            sim(port, "POST", "/_sim/fault", {"kind": "snapshot_fail", "symbol": "BTCUSDT", "status": 503})
            sim(port, "POST", "/_sim/fault", {"kind": "gap", "symbol": "BTCUSDT"})
            await wait_screen(pilot, app, lambda t, s: "503" in t, 3, "the snapshot failing with 503")
            sim(port, "DELETE", "/_sim/faults")
        finally:
            app.begin_shutdown("test done")
            await pilot.pause(0.5)
    source.finished.wait(20)
