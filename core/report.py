"""JSON-ready reports of the engine's state (replay report, headless report, /status)."""

from __future__ import annotations

from datetime import datetime, timezone

from core.engine import Engine

__all__ = ["iso", "symbols_report"]


def iso(ns: int) -> str | None:
    """Integer nanoseconds since the epoch -> ISO-8601 UTC with milliseconds."""
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
