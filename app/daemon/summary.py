"""One-line human texts from a WorldSnapshot: the periodic status line and the session summary.

Both read only the snapshot (exact decimal strings from the core); no number is invented: when
the daemon runs without a trader the trading part says ``trading off``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["money", "session_summary", "status_line", "trading_text"]


def money(text: str, places: int = 2) -> str:
    """A decimal string rounded for reading (never through a float): "-1.23456" -> "-1.23"."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return str(text)
    quant = Decimal(1).scaleb(-places)
    rounded = value.quantize(quant)
    if rounded == 0 and value != 0:  # keep tiny amounts visible
        return f"{value.normalize():f}"
    return f"{rounded:f}"


def trading_text(snap) -> str:
    t = getattr(snap, "trading", None)
    if t is None:
        return "trading off"
    q = t.pnl.quote_asset
    positions = ", ".join(f"{p.symbol} {p.qty}" for p in snap.positions if Decimal(p.qty or "0") != 0) or "flat"
    tripped = t.tripped
    breakers = "breakers ok" if not tripped else "TRIPPED " + ", ".join(b.name for b in tripped)
    return (
        f"PnL net {money(t.pnl.net)} {q} (session {money(t.pnl.session)}, realized {money(t.pnl.realized)}, "
        f"unrealized {money(t.pnl.unrealized)}, fees {money(t.pnl.fees)}) | pos {positions} | "
        f"orders {len(t.working_orders)} working | fills {t.fill_count} | {breakers}"
    )


def status_line(snap) -> str:
    books = " ".join(f"{b.symbol}:{b.state}" for b in snap.books)
    paused = " paused" if snap.mode.paused else ""
    fatal = f" | FATAL {snap.fatal}" if snap.fatal else ""
    head = f"epoch {snap.epoch} {snap.mode.mode}{paused} conf {snap.confidence:.2f}"
    return f"{head} | {books} | {trading_text(snap)}{fatal}"


def session_summary(snap, ran_s: float, exit_code: int | None = None, reason: str | None = None) -> str:
    if snap is None:
        return f"session summary: ran {ran_s:.0f} s, no state published" + (
            f", exit {exit_code}" if exit_code is not None else ""
        )
    t = getattr(snap, "trading", None)
    outcome = ""
    if t is not None:
        o = t.orders_by_outcome
        outcome = (
            f" | orders placed {o.get('placed', 0)}, filled {o.get('FILLED', 0)}, canceled {o.get('CANCELED', 0)}, "
            f"rejected {o.get('REJECTED', 0)}, refused {t.refusals}"
        )
    resyncs = int(dict(snap.ttcr_ms).get("count", 0))
    tail = f" | exit {exit_code}" if exit_code is not None else ""
    tail += f" ({reason})" if reason else ""
    return (
        f"session summary: ran {ran_s:.0f} s, {snap.epoch} epoch(s), {resyncs} resync(s) | "
        f"{trading_text(snap)}{outcome}{tail}"
    )
