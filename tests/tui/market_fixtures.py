"""A deterministic 200-symbol WorldSnapshot for the overview and picker tests."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from epochbot.views.snapshot import BookSummary, PositionView
from tests.tui.fixtures import S, _book, normal_snapshot

NAMED = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "ETHBTC", "ETCUSDT", "LINKUSDT"]
SYMBOLS = tuple(sorted(NAMED + [f"C{i:03d}USDT" for i in range(200 - len(NAMED))]))
INVALID = ("C017USDT", "C101USDT", "SOLUSDT")
WAITING = ("C150USDT",)


def market_snapshot(seq: int = 1, shift: int = 0):
    """200 symbols: most synced, three invalid (with resyncs), one waiting for request weight,
    prices spread over several scales. ``shift`` moves every mid by that many ticks (a later
    snapshot for the mid-change column)."""
    base = normal_snapshot(seq)
    summary = []
    for i, symbol in enumerate(SYMBOLS):
        decimals = 1 + i % 4
        bid = (1000 + 37 * i) * 10**decimals // 10 + shift
        ask = bid + 1 + i % 5
        if symbol in INVALID:
            summary.append(BookSummary(symbol, "invalid", None, None, decimals, 0, 2 + i % 3, 1, 2500.0 + i))
        elif symbol in WAITING:
            summary.append(BookSummary(symbol, "buffering", None, None, decimals, 0, 0, 0, 15.0, awaiting_weight=True))
        else:
            summary.append(
                BookSummary(
                    symbol, "synced", bid, ask, decimals, 1_000_000 + i, int(i % 7 == 0), 0, float(5 + (i * 13) % 90)
                )
            )
    books = tuple(
        _book(s, Decimal(1000 + 37 * i), state="invalid" if s in INVALID else "synced") for i, s in enumerate(SYMBOLS)
    )
    positions = (
        PositionView("BTCUSDT", "0.020", "64100.0", "3.000", "-1.250"),
        PositionView("ETHUSDT", "-1.500", "3100.0", "-2.000", "0"),
    )
    return replace(
        base,
        seq=seq,
        at_ns=base.at_ns + seq * 10 * S,
        books=books,
        summary=tuple(summary),
        positions=positions,
        weight_used=1840,
        weight_cap=2160,
    )
