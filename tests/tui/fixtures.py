"""Hand-built, deterministic WorldSnapshots for the console tests (no runtime, no network).

All timestamps are fixed nanoseconds; the widgets format times from these, never from now().
"""

from __future__ import annotations

import threading
from decimal import Decimal

from epochbot.engine.confidence import Reason
from epochbot.engine.telemetry import LatencyStats
from epochbot.views.snapshot import (
    BookResyncView,
    BookSnapshot,
    BreakerView,
    EpochView,
    FillView,
    LatencyView,
    LevelView,
    LogView,
    ModeView,
    OrderView,
    PnLView,
    PositionView,
    RiskView,
    TradeView,
    TradingView,
    WorldSnapshot,
)

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000
MS = 1_000_000


def _levels(start: Decimal, step: Decimal, sizes: list[str]) -> tuple[LevelView, ...]:
    out = []
    cum = Decimal(0)
    for i, size in enumerate(sizes):
        qty = Decimal(size)
        cum += qty
        price = start + step * i
        out.append(LevelView(f"{price:.1f}", f"{qty:.3f}", f"{cum:.3f}", int(qty * 1000), int(cum * 1000)))
    return tuple(out)


def _mids(base: Decimal, n: int = 120) -> tuple[tuple[int, str], ...]:
    """A deterministic wobbling mid, one sample a second ending at T0 + 60 s."""
    out = []
    for i in range(n):
        wobble = Decimal((i * 7) % 11 - 5) / 10 + Decimal(i // 20) / 10
        out.append((T0 + 60 * S - (n - 1 - i) * S, f"{base + wobble:.2f}"))
    return tuple(out)


def _book(
    symbol: str, base: Decimal, state: str = "synced", problem: str = "", last_id: int = 1_000_000, mids: bool = True
) -> BookSnapshot:
    bids = _levels(
        base,
        Decimal("-0.1"),
        ["1.250", "0.800", "3.100", "0.450", "2.000", "5.500", "0.900", "1.700", "4.200", "0.300"],
    )
    asks = _levels(
        base + Decimal("0.1"),
        Decimal("0.1"),
        ["0.600", "2.400", "1.100", "3.800", "0.700", "1.900", "6.000", "0.250", "2.600", "1.300"],
    )
    trades = tuple(
        TradeView(
            T0 // MS + 59_000 - i * 700,
            f"{base + (Decimal('0.1') if i % 2 else 0):.1f}",
            f"{Decimal('0.013') * (i + 1):.3f}",
            "buy" if i % 2 else "sell",
        )
        for i in range(6)
    )
    return BookSnapshot(
        symbol=symbol,
        state=state,
        last_update_id=last_id,
        bids=bids,
        asks=asks,
        best_bid=bids[0].price,
        best_ask=asks[0].price,
        spread="0.1",
        mid=f"{base + Decimal('0.05'):.2f}",
        gaps=0 if state == "synced" else 1,
        resyncs=0 if state == "synced" else 2,
        problem=problem,
        silence_ms=12.0,
        trades=trades,
        price_decimals=2,  # a tick of 0.01: prices print with two decimals, aligned
        qty_decimals=3,
        mid_history=_mids(base) if mids else (),
    )


def _epochs(n: int, causes: list[str]) -> tuple[EpochView, ...]:
    out = []
    for i in range(1, n + 1):
        opened = T0 + (i - 1) * 20 * S + 150 * MS
        closed = T0 + i * 20 * S if i < n else 0
        out.append(
            EpochView(
                epoch=i,
                cause="startup" if i == 1 else causes[i - 2],
                opened_at_ns=opened,
                closed_at_ns=closed,
                close_cause=causes[i - 1] if i < n else "",
                resync_ms=180.5 + 10 * i,
                phases_ms={
                    "detect": 1.0,
                    "close": 2.0,
                    "dial": 40.5,
                    "subscribe": 22.25,
                    "snapshot": 95.0 + i,
                    "rebuild": 3.5,
                    "validate": 0.25,
                },
            )
        )
    return tuple(out)


def _latency(transport: float, queue: float, silence: float, by_symbol: dict[str, float]) -> LatencyView:
    return LatencyView(
        transport=LatencyStats(transport, transport * 0.8, transport * 2.5, transport * 3, 500),
        queue=LatencyStats(queue, queue * 0.7, queue * 4, queue * 5, 500),
        silence_ms=silence,
        silence_by_symbol=by_symbol,
        transport_history=tuple(transport * (0.6 + (i % 7) / 10) for i in range(60)),
        queue_history=tuple(queue * (0.5 + (i % 5) / 8) for i in range(60)),
        silence_history=tuple(min(silence, 20.0 * (i % 9)) if i < 50 else silence * (i - 49) / 10 for i in range(60)),
    )


def _log(epoch: int, extra: tuple[LogView, ...] = ()) -> tuple[LogView, ...]:
    base = (
        LogView(T0 + 100 * MS, "info", 1, "session opened", "url=ws://127.0.0.1"),
        LogView(T0 + 300 * MS, "info", 1, "resynchronized", "cause=startup resync_ms=190.5"),
        LogView(T0 + 5 * S, "debug", 1, "clock offset", "offset_ms=-1.2"),
        LogView(T0 + 20 * S, "warn", 1, "session replaced", f"cause=market_silence next_epoch={min(2, epoch)}"),
        LogView(T0 + 20 * S + 400 * MS, "info", epoch, "resynchronized", "cause=market_silence resync_ms=200.5"),
    )
    return base + extra


def _fills(n: int = 6) -> tuple[FillView, ...]:
    out = []
    for i in range(n):
        side = "BUY" if i % 2 else "SELL"
        price = Decimal("64250.0") + Decimal(i % 3) / 10 - Decimal("0.5")
        out.append(
            FillView(
                T0 + (58 - i * 9) * S,
                f"eb1-{40 - i}",
                "BTCUSDT",
                side,
                "0.003",
                f"{price:.1f}",
                "0.0385",
                "",
                True,
                str(9000 + i),
            )
        )
    return tuple(out)


def _trading(
    *, tripped: tuple[str, ...] = (), fills: int = 6, orders: tuple[OrderView, ...] = (), session="12.5", daily="-4.25"
) -> TradingView:
    breakers = tuple(
        BreakerView(
            sym,
            sym in tripped,
            "3 losing round trips within 600 s" if sym in tripped else "",
            T0 + 900 * S if sym in tripped else 0,
        )
        for sym in ("BTCUSDT", "ETHUSDT")
    ) + (BreakerView("session-loss", False, "", 0), BreakerView("daily-loss", False, "", 0))
    return TradingView(
        pnl=PnLView("USDT", session, daily, "14.1", "3", "4.6", "0", "12.5"),
        breakers=breakers,
        working_orders=orders,
        fill_count=fills,
        recent_fills=_fills(fills),
        orders_by_outcome={"placed": 40, "CANCELED": 30, "FILLED": fills},
    )


WORKING = OrderView("eb-000000000042", "BTCUSDT", "BUY", "LIMIT", "64249.0", "0.010", "0.000", "NEW", T0 + 50 * S)
DEAD = (
    OrderView("eb-000000000040", "BTCUSDT", "SELL", "LIMIT", "64260.0", "0.010", "0.000", "CANCELED", T0 + 40 * S),
    OrderView("eb-000000000041", "ETHUSDT", "BUY", "LIMIT", "3100.00", "0.050", "0.000", "REJECTED", T0 + 45 * S),
)


def normal_snapshot(seq: int = 1) -> WorldSnapshot:
    """All books synced, confidence 1.0 with no reasons, normal mode, a few trades and epochs."""
    epochs = _epochs(2, ["market_silence"])
    return WorldSnapshot(
        seq=seq,
        at_ns=T0 + 60 * S,
        venue="sim",
        epoch=2,
        session_open=True,
        confidence=1.0,
        reasons=(),
        confidence_history=tuple(1.0 if i % 13 else 0.92 for i in range(60)),
        mode=ModeView(
            "normal",
            "confidence",
            "confidence 1.00 held 2s",
            T0 + 21 * S,
            "normal",
            False,
            (("halted", T0, "startup", "confidence"), ("normal", T0 + 21 * S, "confidence 1.00 held 2s", "confidence")),
        ),
        books=(_book("BTCUSDT", Decimal("64250.0")), _book("ETHUSDT", Decimal("3120.0"), last_id=2_000_000)),
        epochs=epochs,
        book_resyncs=(BookResyncView("ETHUSDT", "gap: U=1041 expected 1040", 1, T0 + 12 * S, 88.25),),
        latency=_latency(14.5, 0.42, 35.0, {"BTCUSDT": 35.0, "ETHUSDT": 61.0}),
        ttcr_ms={"count": 2, "p50": 190.5, "p99": 200.5, "max": 200.5},
        counters={"depth_events": 12000, "trades": 840},
        orders=(WORKING, *DEAD),
        positions=(PositionView("BTCUSDT", "0.020", "64100.0", "3.000", "-1.250"),),
        risk=RiskView(session_pnl="12.500", daily_pnl="-4.250", breakers={"BTCUSDT": "ok", "ETHUSDT": "ok"}),
        log=_log(2),
        trading=_trading(orders=(WORKING,)),
        confidence_min=0.0,
        all_epochs=epochs,
    )


def degraded_snapshot(seq: int = 2) -> WorldSnapshot:
    """One book invalid, confidence 0.35 (market silence and invalid books), mode cancel-makers
    set by confidence, several epochs with different causes, no orders or positions."""
    epochs = _epochs(5, ["market_silence", "operator", "transport_latency", "gap"])
    reasons = (
        Reason("market_silence_ms", 1100.0, 500.0, 1500.0, 0.6),
        Reason("invalid_books", 0.5, 0.0, 1.0, 0.125),
    )
    return WorldSnapshot(
        seq=seq,
        at_ns=T0 + 100 * S,
        venue="sim",
        epoch=5,
        session_open=True,
        confidence=0.35,
        reasons=reasons,
        confidence_history=tuple(1.0 if i < 40 else max(0.35, 1.0 - (i - 40) * 0.05) for i in range(60)),
        mode=ModeView(
            "cancel-makers",
            "confidence",
            "confidence 0.35: market_silence_ms, invalid_books",
            T0 + 99 * S,
            "normal",
            False,
            (
                ("normal", T0 + 21 * S, "confidence 1.00 held 2s", "confidence"),
                ("cancel-makers", T0 + 99 * S, "confidence 0.35: market_silence_ms, invalid_books", "confidence"),
            ),
        ),
        books=(
            _book(
                "BTCUSDT",
                Decimal("64250.0"),
                state="buffering",
                problem="snapshot failed (HTTP 503: Service Unavailable); retry in 0.4 s",
                last_id=0,
                mids=False,
            ),
            _book("ETHUSDT", Decimal("3120.0"), last_id=2_000_000),
        ),
        epochs=epochs,
        book_resyncs=(
            BookResyncView("ETHUSDT", "gap: U=1041 expected 1040", 1, T0 + 12 * S, 88.25),
            BookResyncView("BTCUSDT", "crossed book", 4, T0 + 70 * S, 140.0),
            BookResyncView("BTCUSDT", "gap: pu=1000017 expected 1000016", 5, T0 + 99 * S, None),
        ),
        latency=_latency(310.0, 35.0, 1100.0, {"BTCUSDT": 1100.0, "ETHUSDT": 80.0}),
        ttcr_ms={"count": 4, "p50": 210.5, "p99": 230.5, "max": 230.5},
        counters={"depth_events": 30000, "gaps": 2},
        risk=RiskView(
            session_pnl="-8.750",
            daily_pnl="-21.000",
            breakers={"BTCUSDT": "tripped until 00:15:00 UTC", "ETHUSDT": "tripped until 00:15:00 UTC"},
        ),
        trading=_trading(tripped=("BTCUSDT", "ETHUSDT"), fills=4, session="-8.75", daily="-21"),
        log=_log(
            5,
            (
                LogView(T0 + 99 * S, "error", 5, "book invalid", "symbol=BTCUSDT problem=gap"),
                LogView(T0 + 99 * S + 1 * MS, "warn", 5, "mode changed", "mode=cancel-makers source=confidence"),
            ),
        ),
        confidence_min=0.35,
        all_epochs=epochs,
    )


def startup_snapshot(seq: int = 1) -> WorldSnapshot:
    """Just started: nothing synced or measured yet, confidence 0.00, halted, no strategy view."""
    epochs = _epochs(1, [])
    return WorldSnapshot(
        seq=seq,
        at_ns=T0 + 1 * S,
        venue="sim",
        epoch=1,
        session_open=False,
        confidence=0.0,
        reasons=(Reason("invalid_books", 1.0, 0.0, 1.0, 1.0),),
        confidence_history=(0.0,) * 10,
        mode=ModeView(
            "halted", "confidence", "startup", T0, "normal", False, (("halted", T0, "startup", "confidence"),)
        ),
        books=(
            BookSnapshot("BTCUSDT", "empty", 0, (), (), None, None, None, None, 0, 0, "new session (startup)", 0.0),
            BookSnapshot("ETHUSDT", "empty", 0, (), (), None, None, None, None, 0, 0, "new session (startup)", 0.0),
        ),
        epochs=epochs,
        book_resyncs=(),
        latency=LatencyView(
            LatencyStats(0, 0, 0, 0, 0), LatencyStats(0, 0, 0, 0, 0), 0.0, {}, (0.0,) * 10, (0.0,) * 10, (0.0,) * 10
        ),
        ttcr_ms={"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0},
        counters={},
        log=(LogView(T0 + 1 * MS, "info", 1, "replace session", "cause=startup new_epoch=1 delay_ms=0.0"),),
        confidence_min=1.0,
        all_epochs=epochs,
    )


class FakeSource:
    """A SnapshotSource for tests: serves a fixed snapshot and records submitted events."""

    def __init__(self, snapshot: WorldSnapshot | None = None, exit_code: int = 0) -> None:
        self.snapshot = snapshot
        self.events: list = []
        self.stop_reasons: list[str] = []
        self.exit_code = exit_code
        self._stop = threading.Event()

    def serve(self) -> int:
        self._stop.wait(30)
        return self.exit_code

    def latest(self) -> WorldSnapshot | None:
        return self.snapshot

    def submit(self, event) -> None:
        self.events.append(event)

    def request_stop(self, reason: str) -> None:
        self.stop_reasons.append(reason)
        self._stop.set()
