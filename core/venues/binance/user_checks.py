"""User-data messages -> trading events that passed `epochbot.model.trade_checks`, or a data error.

`checked_user_events` is what the account stream hands to the loop: the events of one message
when every field the core reads is sound; otherwise nothing of that message (a message is never
half applied) and, when it names one of our orders, a `VenueDataError` so the order manager
reconciles that order from the venue's records (its executions are fetched if the venue reports
more than we booked).
"""

from __future__ import annotations

from epochbot.model import trade_events as tev
from epochbot.model.trade_checks import check
from epochbot.model.trade_events import CLIENT_ID_PATTERN
from epochbot.venues.binance.user import user_message_events

__all__ = ["checked_user_events", "client_id_in", "sample_of"]


def checked_user_events(msg, codecs, now_ns: int, quotes=None) -> tuple[list, Exception | None]:
    """(events, None) for a usable message; ([VenueDataError] or [], the problem) otherwise."""
    try:
        events = user_message_events(msg, codecs, now_ns, quotes)
        check(events)
        return events, None
    except Exception as exc:  # noqa: BLE001 - decoding is pure: whatever it raises means a bad message
        coid = client_id_in(msg)
        if not coid:
            return [], exc
        return [
            tev.VenueDataError(
                ts_ns=now_ns, recv_ts=now_ns, client_order_id=coid, reason=str(exc)[:200], sample=sample_of(msg)
            )
        ], exc


def client_id_in(msg) -> str:
    """The client order id a (possibly broken) user-data message names, or ""."""
    if isinstance(msg, dict):
        for envelope in ("data", "event"):
            if isinstance(msg.get(envelope), dict):
                msg = msg[envelope]
                break
    if not isinstance(msg, dict):
        return ""
    inner = msg["o"] if isinstance(msg.get("o"), dict) else msg
    coid = inner.get("c")
    return coid if isinstance(coid, str) and CLIENT_ID_PATTERN.match(coid) else ""


def sample_of(body, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    return text if len(text) <= limit else text[:limit] + "..."
