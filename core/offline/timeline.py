"""Human-readable postmortem output of a replay: the reconnect timeline and the state at a
moment (``epochbot replay PATH --timeline`` / ``--until``).

The timeline is the engine's own log, re-created by the replay (same records, stamped with the
journaled process time): epochs with their cause, book resyncs, snapshots, confidence-driven
mode changes with their reasons, operator actions, orders and fills, in time order; each epoch
that resynchronised is followed by its phase timings.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_state", "format_timeline"]

# Debug records worth a line in the timeline (the rest of debug is noise for a person).
_DEBUG_KEPT = ("snapshot requested",)


def _clock(ns: int) -> str:
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def _fields(fields: dict) -> str:
    parts = []
    for key, value in fields.items():
        if key == "source" and value == "runtime":
            continue
        if isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items())
            parts.append(f"{key}=[{value}]")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def format_timeline(records, engine) -> list[str]:
    lines = []
    if records:
        day = datetime.fromtimestamp(records[0].ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d")
        lines.append(f"timeline (UTC, {day}): time  epoch  level  what")
    for r in records:
        if r.level == "debug" and r.msg not in _DEBUG_KEPT:
            continue
        lines.append(f"{_clock(r.ts_ns)}  e{r.epoch:<3} {r.level.upper():<5} {r.msg}  {_fields(r.fields)}".rstrip())
    lines.append("")
    lines.append(
        "epochs: epoch  cause  opened  closed (why)  time-to-resync  phases ms (detect close dial subscribe snapshot "
        "rebuild validate)"
    )
    for e in engine.epochs:
        phases = e.phases_ms()
        ph = " ".join(
            f"{phases[k]:g}" for k in ("detect", "close", "dial", "subscribe", "snapshot", "rebuild", "validate")
        )
        resync = f"{e.resync_ms:.1f} ms" if e.resync_ms is not None else "not resynced"
        closed = f"{_clock(e.closed_ns)} ({e.close_cause})" if e.closed_ns else "open"
        lines.append(
            f"  e{e.epoch:<3} {e.cause!r}  {_clock(e.opened_ns or e.requested_ns)}  {closed}  {resync}  [{ph}]"
        )
    if engine.book_resyncs:
        lines.append("book resyncs: symbol  cause  epoch  detected  time-to-resync")
        for b in engine.book_resyncs:
            lines.append(
                f"  {b.symbol:<12} {b.cause:<16} e{b.epoch:<3} {_clock(b.detected_ns)}  "
                f"{f'{b.resync_ms:.1f} ms' if b.resync_ms is not None else 'not resynced'}"
            )
    return lines


def format_state(engine, depth: int = 10) -> list[str]:
    """Books (top ``depth`` levels) and working orders as the engine had them."""
    lines = [
        f"state at {_clock(engine.clock())} UTC: epoch {engine.epoch}, mode {engine.mode.value}, confidence "
        f"{engine.confidence.score:.2f}"
    ]
    for reason in engine.confidence.reasons:
        lines.append(f"  reason: {reason.describe()}")
    for symbol in sorted(engine.symbols):
        book = engine.symbols[symbol].book
        lines.append(f"  {symbol}: {book.state.value}, last_update_id {book.last_update_id}")
        if book.codec is None or not (book.bids or book.asks):
            continue
        bids, asks = book.top_strings(depth)
        for i in range(max(len(bids), len(asks))):
            b = bids[i] if i < len(bids) else ["", ""]
            a = asks[i] if i < len(asks) else ["", ""]
            lines.append(f"    {b[1]:>14} {b[0]:>14} | {a[0]:<14} {a[1]:<14}")
    trader = engine.trader
    working = trader.orders.working() if trader is not None else []
    lines.append(f"  working orders: {len(working)}")
    for o in working:
        f = trader.filters.get(o.symbol)
        price = "MKT" if o.price is None else (f.price_str(o.price) if f else str(o.price))
        qty = f.qty_str(o.qty) if f else str(o.qty)
        lines.append(f"    {o.client_order_id}  {o.symbol} {o.side} {qty} @ {price}  {o.state.value}")
    return lines
