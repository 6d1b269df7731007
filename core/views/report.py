"""JSON-ready reports of the engine's state (replay report, headless report, /status)."""

from __future__ import annotations

from epochbot.engine.engine import Engine
from epochbot.views.report_trading import iso, trading_report

__all__ = ["build_report", "iso", "orders_report", "symbols_report"]


def symbols_report(engine: Engine, depth: int = 20) -> dict:
    out = {}
    for symbol in sorted(engine.symbols):
        state = engine.symbols[symbol]
        book = state.book
        bids, asks = book.top_strings(depth) if book.synced else ([], [])
        out[symbol] = {
            "synced": book.synced,
            "state": book.state.value,
            "last_update_id": book.last_update_id,
            "gaps": book.gaps,
            "book_resyncs": sum(1 for r in engine.book_resyncs if r.symbol == symbol),
            "bids": bids,
            "asks": asks,
        }
    return out


def build_report(snapshot) -> dict:
    """The headless report and ``GET /status``: one JSON object from a WorldSnapshot."""
    return {
        "venue": snapshot.venue,
        "epoch": snapshot.epoch,
        "confidence": snapshot.confidence,
        "mode": snapshot.mode.mode,
        "paused": snapshot.mode.paused,
        "epochs": [
            {
                "epoch": e.epoch,
                "cause": e.cause,
                "opened_at": iso(e.opened_at_ns),
                "closed_at": iso(e.closed_at_ns),
                "close_cause": e.close_cause or None,
                "resync_ms": e.resync_ms,
                "phases_ms": dict(e.phases_ms),
            }
            for e in (snapshot.all_epochs or snapshot.epochs)
        ],
        "book_resyncs": [
            {"symbol": r.symbol, "cause": r.cause, "epoch": r.epoch, "at": iso(r.at_ns), "resync_ms": r.resync_ms}
            for r in snapshot.book_resyncs
        ],
        "time_to_correct_resync_ms": dict(snapshot.ttcr_ms),
        "queue_delay_ms": dict(snapshot.queue_delay_run),
        "transport_latency_ms": dict(snapshot.transport_latency_run),
        "confidence_min": snapshot.confidence_min,
        "reasons": [r.describe() for r in snapshot.reasons],
        "modes": [
            {"mode": m, "at": iso(at), "cause": cause, "source": source}
            for m, at, cause, source in snapshot.mode.history
        ],
        "symbols": {
            b.symbol: {
                "synced": b.state == "synced",
                "state": b.state,
                "last_update_id": b.last_update_id,
                "gaps": b.gaps,
                "book_resyncs": b.resyncs,
                "bids": [[lv.price, lv.qty] for lv in b.bids] if b.state == "synced" else [],
                "asks": [[lv.price, lv.qty] for lv in b.asks] if b.state == "synced" else [],
            }
            for b in snapshot.books
        },
        "counters": dict(snapshot.counters),
        "fatal": snapshot.fatal,
        "state_hash": snapshot.state_hash,
        "orders": orders_from_views(snapshot.orders),
        "trading": _trading(snapshot),
    }


def orders_report(trader) -> list[dict]:
    """The trader's orders (``OrderManager.views()``, oldest first) as decimal strings: the
    same list in the live report, ``/status`` and the replay report."""
    if trader is None:
        return []
    return [
        {
            "client_order_id": o.client_order_id,
            "symbol": o.symbol,
            "side": o.side,
            "price": o.price,
            "qty": o.qty,
            "status": o.status,
        }
        for o in trader.orders.views()
    ]


def orders_from_views(views) -> list[dict]:
    return [
        {
            "client_order_id": o.client_order_id,
            "symbol": o.symbol,
            "side": o.side,
            "price": o.price,
            "qty": o.qty,
            "status": o.status,
        }
        for o in views
    ]


def _trading(snapshot) -> dict:

    return trading_report(snapshot)
