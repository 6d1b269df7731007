"""The ``trading`` section of the headless report and ``GET /status`` (from a WorldSnapshot).

Shape (money as decimal strings in ``quote_asset``; times ISO-8601 UTC)::

    "trading": {
      "enabled": true,
      "quote_asset": "USDT",
      "pnl": {"session", "daily", "realized", "unrealized", "fees", "funding", "net"},
      "positions": [{"symbol", "qty", "entry_price", "unrealized_pnl", "realized_pnl"}],
      "breakers": [{"name", "tripped", "cause", "until"}],   # symbols, session-loss, daily-loss
      "working_orders": [{"client_order_id", "symbol", "side", "type", "price", "qty", "filled", "status"}],
      "orders_by_outcome": {"placed": n, "FILLED": n, "CANCELED": n, ...},
      "fill_count": n,
      "recent_fills": [{"at", "symbol", "side", "qty", "price", "fee", "fee_asset", "maker", ...}],
      "refusals": n, "refusal_reasons": {...}
    }

With no trader (market data only) the section is ``{"enabled": false}``: nothing is invented.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso", "trading_report"]


def iso(ns: int) -> str | None:
    """Integer nanoseconds since the epoch -> ISO-8601 UTC with milliseconds."""
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trading_report(snapshot) -> dict:
    t = getattr(snapshot, "trading", None)
    if t is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "quote_asset": t.pnl.quote_asset,
        "pnl": {
            "session": t.pnl.session,
            "daily": t.pnl.daily,
            "realized": t.pnl.realized,
            "unrealized": t.pnl.unrealized,
            "fees": t.pnl.fees,
            "funding": t.pnl.funding,
            "net": t.pnl.net,
        },
        "positions": [
            {
                "symbol": p.symbol,
                "qty": p.qty,
                "entry_price": p.entry_price,
                "unrealized_pnl": p.unrealized_pnl,
                "realized_pnl": p.realized_pnl,
            }
            for p in snapshot.positions
        ],
        "breakers": [
            {"name": b.name, "tripped": b.tripped, "cause": b.cause or None, "until": iso(b.until_ns)}
            for b in t.breakers
        ],
        "working_orders": [
            {
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side,
                "type": o.order_type,
                "price": o.price,
                "qty": o.qty,
                "filled": o.filled,
                "status": o.status,
                "updated_at": iso(o.updated_ns),
            }
            for o in t.working_orders
        ],
        "orders_by_outcome": dict(t.orders_by_outcome),
        "fill_count": t.fill_count,
        "recent_fills": [
            {
                "at": iso(f.ts_ns),
                "symbol": f.symbol,
                "side": f.side,
                "qty": f.qty,
                "price": f.price,
                "fee": f.fee,
                "fee_asset": f.fee_asset or t.pnl.quote_asset,
                "maker": f.is_maker,
                "client_order_id": f.client_order_id,
                "trade_id": f.trade_id,
            }
            for f in t.recent_fills
        ],
        "refusals": t.refusals,
        "refusal_reasons": dict(t.refusal_reasons),
    }
