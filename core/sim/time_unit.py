"""Spot's ``timeUnit``: time fields in microseconds for the clients that ask (pure functions).

What Binance documents (spot, "General API Information" of each API): "All time and timestamp
related fields in the JSON responses are in milliseconds by default. To receive the information
in microseconds, please add the header ``X-MBX-TIME-UNIT:MICROSECOND`` or
``X-MBX-TIME-UNIT:microsecond``" (REST); the WebSocket API and WebSocket Streams take
``timeUnit=MICROSECOND`` (or ``microsecond``) in the connection URL. ``MILLISECOND`` is the
default. Binance's SDKs send the header (REST) and the URL parameter (both websockets) when
``time_unit`` is configured. USD-M has no such option (its clients' settings are ignored).

The simulator keeps milliseconds and scales on the way out: every time field of an answer or an
event is multiplied by 1000. Which fields are times is fixed per answer and per event type here
(``t`` is a trade id in a trade event but the open time in a kline).
"""

from __future__ import annotations

from typing import Any

__all__ = ["answer_in_micros", "event_in_micros", "frame_in_micros", "klines_in_micros", "wants_micros"]

# Time fields of REST and WebSocket API answers (orders, trades, account, exchangeInfo, time, session).
_ANSWER_TIMES = frozenset(
    {
        "serverTime",
        "transactTime",
        "time",
        "updateTime",
        "workingTime",
        "authorizedSince",
        "connectedSince",
        "openTime",
        "closeTime",
    }
)
# Time fields of each event type (WebSocket Streams and user data).
_EVENT_TIMES: dict[str, frozenset[str]] = {
    "trade": frozenset({"E", "T"}),
    "aggTrade": frozenset({"E", "T"}),
    "depthUpdate": frozenset({"E"}),
    "kline": frozenset({"E"}),
    "executionReport": frozenset({"E", "T", "O", "W"}),
    "outboundAccountPosition": frozenset({"E", "u"}),
    "balanceUpdate": frozenset({"E", "T"}),
    "listStatus": frozenset({"E", "T"}),
    "eventStreamTerminated": frozenset({"E"}),
    "serverShutdown": frozenset({"E"}),
}
_KLINE_TIMES = frozenset({"t", "T"})


def wants_micros(value: str | None) -> bool:
    """Whether a ``timeUnit`` value (URL or header) asks for microseconds."""
    return value is not None and value.upper() == "MICROSECOND"


def _scaled(obj: dict[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v * 1000 if k in keys and isinstance(v, int) and not isinstance(v, bool) else v for k, v in obj.items()}


def answer_in_micros(result: Any) -> Any:
    """A REST body or a WebSocket API ``result`` with its time fields in microseconds."""
    if isinstance(result, list):
        return [answer_in_micros(item) for item in result]
    if isinstance(result, dict):
        scaled = _scaled(result, _ANSWER_TIMES)
        return {k: answer_in_micros(v) if isinstance(v, (dict, list)) else v for k, v in scaled.items()}
    return result


def klines_in_micros(rows: Any) -> Any:
    """Kline rows (``[openTime, o, h, l, c, v, closeTime, ...]``) with their times in microseconds."""
    if not isinstance(rows, list):
        return rows
    out = []
    for row in rows:
        if isinstance(row, list) and len(row) > 6:
            row = [row[0] * 1000, *row[1:6], row[6] * 1000, *row[7:]]
        out.append(row)
    return out


def event_in_micros(event: Any) -> Any:
    """A stream or user-data event with its time fields in microseconds."""
    if not isinstance(event, dict):
        return event
    keys = _EVENT_TIMES.get(str(event.get("e")))
    if keys is None:
        return event
    out = _scaled(event, keys)
    if event.get("e") == "kline" and isinstance(out.get("k"), dict):
        out["k"] = _scaled(out["k"], _KLINE_TIMES)
    return out


def frame_in_micros(frame: Any) -> Any:
    """A stream frame (raw event, or combined ``{"stream", "data"}``) in microseconds."""
    if isinstance(frame, dict) and "stream" in frame and "data" in frame:
        return {**frame, "data": event_in_micros(frame["data"])}
    return event_in_micros(frame)
