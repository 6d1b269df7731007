"""Sessions: dialled within the connection budget, replaced whole, reported by events; against the
real simulator over loopback (and a port nothing listens on)."""

from __future__ import annotations

from dataclasses import replace

from epochbot.model import events as ev
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.sessions import DialBudget, SessionManager
from epochbot.runtime.streams import StreamPlan
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.sim.server import SimConfig, SimExchange
from tests.helpers import free_port, wait_for
from tests.runtime.fakes import SYMBOL, VENUE, config, engine


class Snapshots:
    def __init__(self) -> None:
        self.cancelled = 0

    def cancel_all(self) -> None:
        self.cancelled += 1


def manager(ws_url: str, *, budget: DialBudget | None = None, max_session_s: float = 3600.0):
    eng = engine()
    inbox = Inbox(1000)
    failures: list = []
    snapshots = Snapshots()
    sessions = SessionManager(
        engine=eng,
        inbox=inbox,
        tasks=TaskSupervisor(lambda name, exc: failures.append((name, exc))),
        plan=StreamPlan(config(venue=replace(VENUE, ws_url=ws_url), trades=False, tickers=False)),
        dial_budget=budget or DialBudget(10, 10.0),
        snapshots=snapshots,
        clock=eng.clock,
        spot=False,
        depth_scales={},
        max_session_s=max_session_s,
    )
    return sessions, eng, inbox, snapshots, failures


def control_events(inbox: Inbox) -> list:
    out = list(inbox.control)
    inbox.control.clear()
    return out


def test_the_dial_budget_lets_attempts_through_until_the_window_is_full():
    now = [100.0]
    budget = DialBudget(2, 10.0, monotonic=lambda: now[0])

    assert budget.wait_s() == 0.0
    budget.note_dial()
    now[0] += 1.0
    budget.note_dial()
    now[0] += 2.0

    assert budget.wait_s() == 7.0  # the first attempt leaves the window 10 s after it was made
    now[0] += 7.0
    assert budget.wait_s() == 0.0


async def test_a_replacement_dials_reports_the_session_and_subscribes():
    async with SimExchange(SimConfig(market="usdm", symbols=[SYMBOL], rate=20.0)) as sim:
        sessions, eng, inbox, snapshots, failures = manager(sim.ws_url)
        inbox.put_market(ev.MarkPrice(0, SYMBOL, "1", "1", "0", 0, 0, 0))  # of the old epoch
        (replace_cmd,) = [c for c in eng.start() if type(c) is ev.ReplaceSession]

        sessions.replace(replace_cmd)
        got: list = []
        await wait_for(
            lambda: got.extend(control_events(inbox)) or any(type(e) is ev.SubscriptionConfirmed for e in got),
            5,
            "the session opened and subscribed",
        )
        await sessions.close()

    opened = next(e for e in got if type(e) is ev.SessionOpened)
    assert opened.epoch == replace_cmd.epoch and "/public/stream" in opened.url and opened.dial_ms >= 0
    assert snapshots.cancelled == 1 and eng.counters["discarded_stale_epoch"] == 1 and failures == []
    assert sessions.session is None


async def test_a_failed_dial_is_reported_as_a_disconnect_of_that_epoch():
    sessions, eng, inbox, _, failures = manager(f"ws://127.0.0.1:{free_port()}")
    (replace_cmd,) = [c for c in eng.start() if type(c) is ev.ReplaceSession]

    sessions.replace(replace_cmd)
    got: list = []
    await wait_for(lambda: got.extend(control_events(inbox)) or got, 5, "the dial's outcome")

    assert [type(e) for e in got] == [ev.Disconnected]
    assert got[0].epoch == replace_cmd.epoch and got[0].reason.startswith("dial failed")
    assert failures == []


async def test_a_session_near_its_lifetime_limit_is_reported_for_replacement():
    async with SimExchange(SimConfig(market="usdm", symbols=[SYMBOL], rate=20.0)) as sim:
        sessions, eng, inbox, _, _ = manager(sim.ws_url, max_session_s=0.2)
        (replace_cmd,) = [c for c in eng.start() if type(c) is ev.ReplaceSession]

        sessions.replace(replace_cmd)
        got: list = []
        await wait_for(
            lambda: got.extend(control_events(inbox)) or any(type(e) is ev.ServerShutdownNotice for e in got),
            5,
            "the lifetime notice",
        )
        await sessions.close()

    notice = next(e for e in got if type(e) is ev.ServerShutdownNotice)
    assert notice.epoch == replace_cmd.epoch and "lifetime" in notice.reason


async def test_subscribe_commands_of_another_epoch_are_ignored():
    async with SimExchange(SimConfig(market="usdm", symbols=[SYMBOL], rate=20.0)) as sim:
        sessions, eng, inbox, _, _ = manager(sim.ws_url)
        (replace_cmd,) = [c for c in eng.start() if type(c) is ev.ReplaceSession]
        sessions.replace(replace_cmd)
        got: list = []
        await wait_for(
            lambda: got.extend(control_events(inbox)) or any(type(e) is ev.SubscriptionConfirmed for e in got),
            5,
            "the session subscribed",
        )

        sessions.subscribe(ev.Subscribe(epoch=replace_cmd.epoch + 1, streams=("ethusdt@depth@100ms",)))
        sessions.subscribe(ev.Subscribe(epoch=replace_cmd.epoch, streams=("btcusdt@bookTicker",)))
        await wait_for(
            lambda: (
                got.extend(control_events(inbox))
                or any(getattr(e, "streams", ()) == ("btcusdt@bookTicker",) for e in got)
            ),
            5,
            "the current epoch's subscription confirmed",
        )
        await sessions.close()

    confirmed = [e.streams for e in got if type(e) is ev.SubscriptionConfirmed]
    assert ("btcusdt@bookTicker",) in confirmed and not any("ethusdt@depth@100ms" in s for s in confirmed)
