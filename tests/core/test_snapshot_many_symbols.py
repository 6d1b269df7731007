"""The snapshot builder with many symbols: bounded work per build, never a stale sync state."""

from __future__ import annotations

from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.views.snapshot import SnapshotBuilder

SYMBOLS = tuple(f"S{i:03d}USDT" for i in range(40))


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        return self.t


def _synced_engine(clock) -> Engine:
    engine = Engine(EngineConfig(venue=VenueRules.USDM, symbols=SYMBOLS), clock)
    engine.start()
    engine.handle(ev.SessionOpened(epoch=1, recv_ts=clock()))
    engine.handle(ev.SubscriptionConfirmed(epoch=1, recv_ts=clock()))
    for s in SYMBOLS:
        engine.handle(ev.SymbolSpec(symbol=s, tick_size="0.01", step_size="0.001", min_notional="5"))
        engine.handle(
            ev.SnapshotReady(
                epoch=1,
                recv_ts=clock(),
                symbol=s,
                request_id=engine.symbols[s].snapshot_request,
                last_update_id=10,
                bids=[["99.99", "1.000"]],
                asks=[["100.01", "2.000"]],
                exchange_ts=0,
            )
        )
    return engine


def test_only_a_few_changed_books_are_rebuilt_per_build_but_summaries_are_all_current():
    clock = Clock()
    engine = _synced_engine(clock)
    builder = SnapshotBuilder("sim", books_per_build=4)
    first = builder.build(engine)
    for s in SYMBOLS:
        engine.symbols[s].book.bids[9_998] = 1_000  # a new best bid, 99.98 -> still below 99.99
        engine.symbols[s].book.best_bid = 9_999
        engine.symbols[s].book.last_update_id = 11

    second = builder.build(engine)

    rebuilt = [b for b, a in zip(second.books, first.books, strict=True) if b is not a]
    assert len(rebuilt) == 4
    assert all(s.last_update_id == 11 for s in second.summary)
    builds = [builder.build(engine) for _ in range(len(SYMBOLS) // 4)]
    assert all(b.last_update_id == 11 for b in builds[-1].books)  # round-robin reaches every book


def test_a_session_replacement_shows_every_book_unsynced_in_the_very_next_snapshot():
    clock = Clock()
    engine = _synced_engine(clock)
    builder = SnapshotBuilder("sim", books_per_build=4)
    assert all(b.state == "synced" for b in builder.build(engine).books)

    engine.handle(ev.OperatorForceResync(symbol=None, replace_session=True, recv_ts=clock()))
    snapshot = builder.build(engine)

    assert all(b.state != "synced" for b in snapshot.books)
    assert all(s.state != "synced" for s in snapshot.summary)


def test_the_focused_symbol_is_always_current():
    clock = Clock()
    engine = _synced_engine(clock)
    builder = SnapshotBuilder("sim", books_per_build=1)
    builder.build(engine)
    builder.focus = frozenset({"S039USDT"})
    for s in SYMBOLS:
        engine.symbols[s].book.last_update_id = 12

    snapshot = builder.build(engine)

    assert snapshot.book("S039USDT").last_update_id == 12
