"""USD-M: a snapshot whose lastUpdateId equals a diff's ``pu`` is continuous with that diff,
whichever arrived first (the snapshot, or the diff buffered while the snapshot was in flight).

Property tests over a USD-M-like stream (update ids jump between events, ``pu`` = previous
``u``) and a snapshot taken between two events, so ``U <= lastUpdateId <= u`` never holds for
the diff that continues it: only the ``pu`` bridge does. Both orders of arrival are generated,
at the book and through the engine (snapshot requested at the subscribe ack, as live does).
A seeded synthetic capture with the snapshot recorded before the first diff replays synced.
"""

from __future__ import annotations

import io
import random
from decimal import Decimal

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from epochbot.book.book import OrderBook, SnapshotOutcome, VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.offline.replay import replay_stream
from tests.core._support import FakeClock, diff


def px(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


qty = st.integers(1, 10_000).map(lambda n: f"{n // 1000}.{n % 1000:03d}")
bid = st.tuples(st.integers(1, 100).map(px), st.one_of(qty, st.just("0.000")))
ask = st.tuples(st.integers(101, 200).map(px), st.one_of(qty, st.just("0.000")))


@st.composite
def stream(draw):
    """(base bids, base asks, events, k, start, before): the snapshot is the book after event
    ``k`` (lastUpdateId = u_k); the client sees events ``start..`` (start <= k + 1), the first
    ``before`` of them before the snapshot answer."""
    base_bids = draw(
        st.lists(st.tuples(st.integers(1, 100).map(px), qty), min_size=1, max_size=8, unique_by=lambda level: level[0])
    )
    base_asks = draw(
        st.lists(
            st.tuples(st.integers(101, 200).map(px), qty), min_size=1, max_size=8, unique_by=lambda level: level[0]
        )
    )
    n = draw(st.integers(2, 15))
    events = []
    prev_u = draw(st.integers(1_000, 10**9))
    for _ in range(n):
        first = prev_u + 1 + draw(st.integers(1, 50))  # ids jump between events (USD-M)
        final = first + draw(st.integers(0, 20))
        events.append(
            (
                first,
                final,
                prev_u,
                draw(st.lists(bid, max_size=4, unique_by=lambda level: level[0])),
                draw(st.lists(ask, max_size=4, unique_by=lambda level: level[0])),
            )
        )
        prev_u = final
    k = draw(st.integers(0, n - 2))
    start = draw(st.integers(0, k + 1))
    before = draw(st.integers(0, n - start))
    return base_bids, base_asks, events, k, start, before


def book_after(base_bids, base_asks, events) -> tuple[dict, dict]:
    bids = {Decimal(p): Decimal(q) for p, q in base_bids}
    asks = {Decimal(p): Decimal(q) for p, q in base_asks}
    for _, _, _, b, a in events:
        for side, levels in ((bids, b), (asks, a)):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
    return bids, asks


def as_levels(side: dict) -> list[list[str]]:
    return [[str(p), str(q)] for p, q in side.items()]


def decimals(book: OrderBook) -> tuple[dict, dict]:
    codec = book.codec
    return (
        {Decimal(codec.price_str(p)): Decimal(codec.qty_str(q)) for p, q in book.bids.items()},
        {Decimal(codec.price_str(p)): Decimal(codec.qty_str(q)) for p, q in book.asks.items()},
    )


@settings(max_examples=300, deadline=None)
@given(stream())
def test_a_snapshot_bridged_by_pu_syncs_whether_it_arrives_before_or_after_the_first_diff(case):
    base_bids, base_asks, events, k, start, before = case
    snap_bids, snap_asks = book_after(base_bids, base_asks, events[: k + 1])
    # A book without exchangeInfo learns its scale from the snapshot's strings: an empty
    # snapshot is refused there by design (the engine test below covers it with a SymbolSpec).
    assume(snap_bids or snap_asks)
    book = OrderBook("BTCUSDT", VenueRules.USDM)
    seen = [diff(U, u, b, a, pu=pu) for U, u, pu, b, a in events[start:]]

    for d in seen[:before]:
        book.on_diff(d)
    outcome = book.on_snapshot(events[k][1], as_levels(snap_bids), as_levels(snap_asks))
    for d in seen[before:]:
        book.on_diff(d)

    assert outcome is SnapshotOutcome.SYNCED, book.last_problem
    assert book.synced and book.gaps == 0 and not book.awaiting_bridge
    assert book.last_update_id == events[-1][1]
    assert decimals(book) == book_after(base_bids, base_asks, events)


def test_a_snapshot_whose_id_equals_no_buffered_pu_and_is_older_than_the_buffer_is_still_refused():
    book = OrderBook("BTCUSDT", VenueRules.USDM)
    book.on_diff(diff(120, 125, [["1.00", "1.000"]], pu=110))

    outcome = book.on_snapshot(100, [["0.99", "1.000"]], [["1.01", "1.000"]])

    assert outcome is SnapshotOutcome.TOO_OLD


@settings(max_examples=120, deadline=None)
@given(stream())
def test_the_engine_syncs_without_a_refetch_in_both_orders_of_arrival(case):
    base_bids, base_asks, events, k, start, before = case
    snap_bids, snap_asks = book_after(base_bids, base_asks, events[: k + 1])
    clock = FakeClock()
    engine = Engine(EngineConfig(venue=VenueRules.USDM, symbols=("BTCUSDT",), snapshot_on_subscribe=True), clock)
    engine.handle(ev.SymbolSpec(symbol="BTCUSDT", tick_size="0.01", step_size="0.001"))
    engine.start()
    engine.handle(ev.SessionOpened(epoch=1, url="ws://x"))
    (fetch,) = engine.handle(ev.SubscriptionConfirmed(epoch=1))
    seen = [diff(U, u, b, a, pu=pu) for U, u, pu, b, a in events[start:]]

    commands = []
    for d in seen[:before]:
        clock.advance_ms(1)
        commands += engine.handle(d)
    commands += engine.handle(
        ev.SnapshotReady(
            epoch=1,
            symbol="BTCUSDT",
            request_id=fetch.request_id,
            last_update_id=events[k][1],
            bids=as_levels(snap_bids),
            asks=as_levels(snap_asks),
        )
    )
    for d in seen[before:]:
        clock.advance_ms(1)
        commands += engine.handle(d)

    book = engine.book("BTCUSDT")
    assert not [c for c in commands if type(c) is ev.FetchSnapshot], "no refetch"
    assert book.synced and engine.counters["gaps"] == 0 and engine.counters["snapshots_refetched"] == 0
    assert decimals(book) == book_after(base_bids, base_asks, events)


def synthetic_usdm_capture(seed: int, snapshot_before_open: bool = False) -> bytes:
    """A seeded USD-M capture: the depth snapshot row is recorded before the first diff, and the
    first diff continues it only by ``pu`` (its U is above the snapshot's lastUpdateId)."""
    rng = random.Random(seed)
    t = 1_700_000_000.0
    out = [orjson.dumps({"capture": 1, "venue": "binance-usdm", "source": f"synthetic seed {seed}"})]
    out.append(
        orjson.dumps(
            {
                "ts": t,
                "kind": "open",
                "url": "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms",
                "data": "",
            }
        )
    )
    last = rng.randint(10**9, 2 * 10**9)
    bids = {100_00 - i: rng.randint(1, 9000) for i in range(20)}
    asks = {100_01 + i: rng.randint(1, 9000) for i in range(20)}
    snapshot = {
        "lastUpdateId": last,
        "E": 1,
        "T": 1,
        "bids": [[px(p), f"{q / 1000:.3f}"] for p, q in sorted(bids.items(), reverse=True)],
        "asks": [[px(p), f"{q / 1000:.3f}"] for p, q in sorted(asks.items())],
    }
    rest = orjson.dumps(
        {
            "ts": t + 0.01,
            "kind": "rest",
            "url": "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000",
            "data": orjson.dumps(snapshot).decode(),
        }
    )
    if snapshot_before_open:  # recorded even before the connection opened
        out.insert(1, rest)
    else:
        out.append(rest)
    prev = last
    for i in range(200):
        first = prev + 1 + rng.randint(1, 30)
        final = first + rng.randint(0, 10)
        b = [
            [px(p), "0.000" if rng.random() < 0.2 else f"{rng.randint(1, 9000) / 1000:.3f}"]
            for p in rng.sample(range(99_80, 100_01), 3)
        ]
        a = [
            [px(p), "0.000" if rng.random() < 0.2 else f"{rng.randint(1, 9000) / 1000:.3f}"]
            for p in rng.sample(range(100_01, 100_21), 3)
        ]
        event = {
            "e": "depthUpdate",
            "E": 1_700_000_000_000 + i * 100,
            "T": 1_700_000_000_000 + i * 100,
            "s": "BTCUSDT",
            "U": first,
            "u": final,
            "pu": prev,
            "b": b,
            "a": a,
        }
        out.append(
            orjson.dumps(
                {
                    "ts": t + 0.02 + i * 0.1,
                    "kind": "ws",
                    "data": orjson.dumps({"stream": "btcusdt@depth@100ms", "data": event}).decode(),
                }
            )
        )
        prev = final
    return b"\n".join(out) + b"\n"


def test_a_seeded_usdm_capture_with_the_snapshot_recorded_before_the_first_diff_replays_synced_with_no_gap():
    for seed, before_open in ((1, False), (2, False), (3, True), (4, True)):
        result = replay_stream(io.BytesIO(synthetic_usdm_capture(seed, before_open)))

        book = result.engine.book("BTCUSDT")
        assert book.synced and book.gaps == 0, (seed, book.state, book.last_problem)
        assert result.engine.counters["gaps"] == 0 and result.engine.counters["snapshots_refetched"] == 0
        assert result.malformed == []
