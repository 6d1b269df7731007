"""End to end: the operator's stop commands leave nothing open, even when they race an order.

The worst moment for cancel-all, flatten or the kill switch is right after an order has left the
daemon and before the venue has processed it: the cancel arrives first, the venue answers -2011
"Unknown order sent.", and then the order opens. On Binance that happens whenever the two
requests take different paths; the simulator's ``order_delay`` fault makes it happen every time
(new orders reach its matching engine later, cancels do not wait).

The venue is the real simulator (USD-M) on a thread of this test; the daemon is the real product
(``python -m epochbot.app.cli --headless`` trading the quoter, orders over the WebSocket API). The test
watches the simulator for the arrival of each new order and fires the operator command over the
control API at that instant. After each command, within a bounded wait, nothing of ours may be
open at the venue or working in the daemon, and (the strategy is paused or halted) nothing new
may be sent. Flatten must also leave the position flat: it waits for the cancels, so an order
left open would stall it for ever.

Bounded: six commands, every wait has a deadline (well under a minute on a loaded 2-core machine).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from tests.helpers import REPO, ThreadedSim, child_env, free_port, get_json, post_json, wait_until

SYMBOL = "BTCUSDT"
TOKEN = "race-test-token-0123456789abcdef"
ACCOUNT = "acct-1"  # the simulator's default account (sim-key / sim-secret)
HOLD_MS = 1000  # how long the venue holds each new order before matching it
COMMANDS = ("cancel-all", "halted", "flatten", "cancel-all", "halted", "flatten")


class WatchedSim(ThreadedSim):
    """The simulator on its own thread; records each new order's arrival and each cancel the
    venue refused because the order was not there (yet)."""

    def __init__(self) -> None:
        from epochbot.sim.auth import SimApiError

        super().__init__(market="usdm", symbols=[SYMBOL], seed=5, rate=40.0)
        self.arrived: list[str] = []  # client order ids, as new orders reach the venue
        self.arrival = threading.Event()
        self.overtaken: list[str] = []  # cancels answered "Unknown order sent."
        note_place, cancel = self.sim.orders.note_place, self.sim.venue.cancel_order

        def placed(coid):
            self.arrived.append(str(coid))
            self.arrival.set()
            return note_place(coid)

        def cancelled(account_id, params, now_ms):
            try:
                return cancel(account_id, params, now_ms)
            except SimApiError as exc:
                if exc.code == -2011:
                    self.overtaken.append(str(params.get("origClientOrderId", "")))
                raise

        self.sim.orders.note_place, self.sim.venue.cancel_order = placed, cancelled

    def open_orders(self) -> list[dict]:
        return self.call(self.sim.venue.open_orders, ACCOUNT, SYMBOL)

    def position(self) -> Decimal:
        rows = self.call(self.sim.venue.user_trades, ACCOUNT, SYMBOL, from_id=0, limit=1000)
        return sum((Decimal(t["qty"]) * (1 if t["side"] == "BUY" else -1) for t in rows), Decimal(0))


def _post(url: str, body: dict) -> dict:
    return post_json(url, body, token=TOKEN)


@pytest.fixture
def sim():
    s = WatchedSim()
    yield s
    s.stop()


def _command(base: str, name: str) -> None:
    if name == "halted":
        _post(f"{base}/mode", {"mode": "halted"})
    elif name == "flatten":
        _post(f"{base}/flatten", {"confirm": True, "all": True})
    else:
        _post(f"{base}/cancel-all", {"confirm": True})


def _resume(base: str) -> None:
    _post(f"{base}/mode", {"mode": "normal"})
    _post(f"{base}/pause", {"paused": False})


def test_stop_commands_fired_while_an_order_is_in_flight_leave_nothing_open(tmp_path, sim):
    control = free_port()
    env = child_env(
        {
            "EPOCHBOT_API_KEY": "sim-key",
            "EPOCHBOT_API_SECRET": "sim-secret",
            "EPOCHBOT_CONTROL__TOKEN": TOKEN,
            "EPOCHBOT_RISK__BREAKER_LOSSES": "1000",
            "EPOCHBOT_STRATEGY__PARAMS": json.dumps(
                {
                    "half_spread_ticks": 1,
                    "half_spread_bps": 0.0,
                    "exit_edge_bps": -1.0,
                    "skew_bps_per_size": 0.0,
                    "refresh_ms": 300,
                }
            ),
        }
    )
    log = tmp_path / "daemon.err"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "--headless",
            "--venue",
            "binance-usdm",
            "--rest-url",
            sim.sim.rest_url,
            "--ws-url",
            sim.sim.ws_url,
            "--symbols",
            SYMBOL,
            "--storage",
            str(tmp_path / "db.sqlite3"),
            "--strategy",
            "quoter",
            "--control-port",
            str(control),
            "--status-interval",
            "60",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
        env=env,
        cwd=REPO,
    )
    base = f"http://127.0.0.1:{control}"

    def working() -> list:
        try:
            return get_json(f"{base}/status")["trading"]["working_orders"]
        except OSError:
            return ["no status yet"]

    try:
        _run_rounds(daemon, sim, base, working, log)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(5)
    assert sim.open_orders() == []


def _run_rounds(daemon, sim, base, working, log) -> None:
    try:
        _rounds(daemon, sim, base, working, log)
    except AssertionError as exc:  # say what the daemon said
        tail = "\n".join(line for line in log.read_text().splitlines()[-40:])
        raise AssertionError(f"{exc}\n--- daemon log (tail) ---\n{tail}") from None


def _rounds(daemon, sim, base, working, log) -> None:
    if True:
        wait_until(lambda: daemon.poll() is not None or sim.arrived, 30, "the daemon's first order")
        assert daemon.poll() is None, log.read_text()[-3000:]
        sim.call(sim.sim.inject, "order_delay", ms=HOLD_MS)
        for round_, name in enumerate(COMMANDS):
            sim.arrival.clear()
            seen = len(sim.arrived)
            wait_until(lambda seen=seen: len(sim.arrived) > seen, 20, f"an order in flight before round {round_}")
            in_flight = sim.arrived[-1]
            _command(base, name)  # at the venue's door: it opens up to HOLD_MS from now

            wait_until(
                lambda in_flight=in_flight: (
                    in_flight in {o["clientOrderId"] for o in sim.call(sim.sim.venue.all_orders, ACCOUNT, SYMBOL, 1000)}
                ),
                HOLD_MS / 1000 + 10,
                f"round {round_}: the held order {in_flight} to reach the matching engine",
            )
            wait_until(
                lambda: not sim.open_orders() and not working(),
                15,
                f"round {round_} ({name}): nothing of ours open at the venue nor working in the daemon "
                f"(venue: {sim.open_orders()}, daemon: {working()})",
            )
            if name == "flatten":
                wait_until(
                    lambda: sim.position() == 0,
                    15,
                    f"round {round_}: flatten to leave the position flat (venue: {sim.position()})",
                )
            # The strategy is paused (cancel-all, flatten) or halted: it must not send again.
            sent = len(sim.arrived)
            time.sleep(1.0)  # an observation window: the quoter re-quotes every 300 ms
            assert len(sim.arrived) == sent, f"round {round_} ({name}): new orders after the stop: {sim.arrived[sent:]}"
            assert not sim.open_orders()
            _resume(base)

        # The race really was run: cancels reached the venue before their own orders.
        assert sim.overtaken, "no cancel overtook its order: the test did not exercise the race"
        # ... and a refused cancel is retried with restraint, not on every market event.
        assert len(sim.overtaken) <= 4 * len(COMMANDS), f"{len(sim.overtaken)} cancels refused: a cancel storm"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(20) == 0, log.read_text()[-3000:]
