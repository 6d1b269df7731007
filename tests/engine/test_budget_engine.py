"""The engine's side of the request-weight budget: per-symbol depth, the confidence reason,
parked buffers; and the C snapshot install's parity with the Python one."""

from __future__ import annotations

import random

import pytest

import epochbot.book.book as book_mod
from epochbot.book.book import OrderBook, SnapshotOutcome, VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.model.numeric import UnitCodec
from tests.core._support import diff

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        return self.t


def _engine(**config) -> tuple[Engine, Clock]:
    clock = Clock()
    engine = Engine(EngineConfig(venue=VenueRules.USDM, symbols=SYMBOLS, **config), clock)
    engine.start()
    engine.handle(ev.SessionOpened(epoch=1, recv_ts=clock()))
    return engine, clock


def test_snapshot_depth_is_configurable_per_symbol():
    engine, clock = _engine(snapshot_limit=1000, snapshot_limits={"ETHUSDT": 100})

    commands = engine.handle(ev.SubscriptionConfirmed(epoch=1, recv_ts=clock()))

    assert {c.symbol: c.limit for c in commands} == {"BTCUSDT": 1000, "ETHUSDT": 100, "SOLUSDT": 1000}


def test_books_waiting_for_weight_are_a_confidence_reason_and_are_logged_once():
    engine, clock = _engine()
    engine.handle(ev.SubscriptionConfirmed(epoch=1, recv_ts=clock()))

    engine.handle(ev.SnapshotBudget(recv_ts=clock(), waiting=("ETHUSDT", "SOLUSDT"), used=2150, cap=2160))
    engine.handle(ev.SnapshotBudget(recv_ts=clock(), waiting=("SOLUSDT",), used=2160, cap=2160))
    engine.handle(ev.TimerTick(recv_ts=clock()))

    reasons = {r.factor: r.value for r in engine.confidence.reasons}
    assert reasons["books_awaiting_weight"] == pytest.approx(1 / 3, abs=1e-3)
    logged = [r for r in engine.log if r.msg == "request weight spent: snapshots wait their turn"]
    assert len(logged) == 1 and logged[0].fields["waiting"] == 2


def test_a_book_waiting_for_weight_keeps_only_its_newest_diffs_and_gets_its_limit_back():
    engine, clock = _engine(book_buffer_limit=600)
    engine.handle(ev.SubscriptionConfirmed(epoch=1, recv_ts=clock()))
    engine.handle(ev.SnapshotBudget(recv_ts=clock(), waiting=("BTCUSDT",), used=2160, cap=2160))
    for i in range(200):
        engine.handle(diff(100 + i, 100 + i, [("1.00", "1")], [("2.00", "1")], pu=99 + i, recv_ts=clock()))

    book = engine.book("BTCUSDT")
    assert len(book.buffer) <= 20 and book.buffer[-1].final_id == 299
    engine.handle(ev.SnapshotBudget(recv_ts=clock(), waiting=(), used=0, cap=2160))
    assert book.buffer_limit == 600


@pytest.mark.parametrize("use_c", [True, False])
def test_a_1000_level_snapshot_installs_the_same_book_on_the_c_and_python_paths(monkeypatch, use_c):
    pytest.importorskip("epochbot.book._fastbook")
    rng = random.Random(14)
    bids = [
        [f"{50000 - i * 0.1 - rng.randrange(0, 3) * 0.01:.2f}", f"{rng.randrange(0, 5000) / 1000:.3f}"]
        for i in range(1000)
    ]
    asks = [
        [f"{50000.1 + i * 0.1 + rng.randrange(0, 3) * 0.01:.2f}", f"{rng.randrange(0, 5000) / 1000:.3f}"]
        for i in range(1000)
    ]
    monkeypatch.setattr(book_mod, "USE_FASTBOOK", use_c)
    book = OrderBook("BTCUSDT", VenueRules.USDM, codec=UnitCodec.from_filters("0.01", "0.001"))
    book.on_diff(diff(10, 12, pu=9))

    outcome = book.on_snapshot(11, bids, asks)

    reference = {round(float(p) * 100): round(float(q) * 1000) for p, q in bids if float(q)}
    assert outcome is SnapshotOutcome.SYNCED
    assert book.bids == reference and book.best_bid == max(reference)
    assert all(q > 0 for q in book.asks.values()) and book.check_invariants() is None
