"""Binance websocket frames -> typed events (spot and USD-M), and stream names/URLs.

Frames are either the combined-stream wrapper ``{"stream": "...", "data": {...}}`` or bare
events. Decoding uses orjson; the depthUpdate path is kept short because it is most of the
traffic. Anything that is not a usable event raises `FrameError` with the reason; the reader
turns that into a `MalformedFrame` control event and carries on (a frame is never half-applied).

Subscription acks (``{"result": null, "id": N}``) and errors (``{"error": {...}, "id": N}``)
come back as `Ack` values so the reader can turn them into control events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from core import events as ev

__all__ = [
    "Ack",
    "FrameError",
    "ServerShutdown",
    "decode_frame",
    "decode_snapshot",
    "depth_stream",
    "market_stream_url",
    "streams_for",
]

Market = Literal["spot", "usdm"]


class FrameError(ValueError):
    """The frame is not JSON, or not a Binance event this decoder understands."""


@dataclass(frozen=True, slots=True)
class Ack:
    request_id: int
    result: object = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    exchange_ts: int


_loads = orjson.loads

try:  # optional C accelerator (core/_fastbook.c): depthUpdate frames straight to integer units
    from core import _fastbook
except ImportError:  # pragma: no cover - depends on whether the extension was built
    _fastbook = None
_decode_depth = getattr(_fastbook, "decode_depth", None)  # -> tuple | None
_decode_depth_event = None  # -> DepthDiff | None, built by C from the slots (checked below)

# Tests flip this to compare both paths; decode_frame uses the C decoder only when it is True
# and the caller passes `scales`.
USE_FASTDECODE = _decode_depth is not None

_DEPTH_SLOTS = ("epoch", "symbol", "first_id", "final_id", "prev_final_id", "bids", "asks", "exchange_ts", "recv_ts", "process_ts", "scale")


def _bind_depth_event() -> None:
    """Let C build DepthDiff directly (saves the Python __init__) only if what it builds equals
    what DepthDiff(...) builds, slot for slot; any drift of DepthDiff keeps the tuple path."""
    global _decode_depth_event
    fast = getattr(_fastbook, "decode_depth_event", None)
    if fast is None or ev._all_slots(ev.DepthDiff) != ["epoch", "symbol", "exchange_ts", "recv_ts", "process_ts", *_DEPTH_SLOTS[2:7], "scale"]:
        return
    try:
        _fastbook.bind_depth_type(ev.DepthDiff, _DEPTH_SLOTS)
        raw = b'{"stream":"x","data":{"e":"depthUpdate","E":7,"s":"S","U":2,"u":3,"pu":1,"b":[["1.5","2"]],"a":[]}}'
        scales = {"S": (1, 0)}
        got = fast(raw, scales, 4, 9)
        s, e, u0, u1, pu, b, a, scale = _decode_depth(raw, scales)
        if got == ev.DepthDiff(4, s, u0, u1, pu, b, a, e, 9, scale) and got.process_ts == 0:
            _decode_depth_event = fast
    except (TypeError, AttributeError, ValueError):  # pragma: no cover - a DepthDiff C cannot build
        pass


if _decode_depth is not None:
    _bind_depth_event()


def decode_frame(raw: str | bytes, epoch: int, recv_ts: int, scales: dict[str, tuple[int, int]] | None = None):
    """One frame -> a market event, an `Ack`, a `ServerShutdown`, or None (ignorable).

    Raises FrameError for anything malformed.

    ``scales`` maps a symbol to the ``(price_decimals, qty_decimals)`` of its book's codec. Pass
    it only for books whose codec is fixed at exactly that scale (exchangeInfo applied before the
    session): a plain depthUpdate of such a symbol is then decoded by C into integer units
    (``DepthDiff.scale`` set). Anything else, including every unusual frame, takes the orjson
    path below, which yields decimal strings or raises FrameError exactly as without ``scales``.
    """
    if scales and USE_FASTDECODE:
        if _decode_depth_event is not None:
            diff = _decode_depth_event(raw, scales, epoch, recv_ts)
            if diff is not None:
                return diff
        else:
            fast = _decode_depth(raw, scales)
            if fast is not None:
                symbol, exch_ts, first, final, prev, bids, asks, scale = fast
                return ev.DepthDiff(epoch, symbol, first, final, prev, bids, asks, exch_ts, recv_ts, scale)
    try:
        msg = _loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if type(msg) is not dict:
        raise FrameError("frame is not a JSON object")
    data = msg.get("data")
    if type(data) is dict:
        msg = data
    try:
        etype = msg.get("e")
        if etype == "depthUpdate":
            first, final, prev, bids, asks = msg["U"], msg["u"], msg.get("pu"), msg["b"], msg["a"]
            if type(first) is not int or type(final) is not int or first > final or (prev is not None and type(prev) is not int):
                raise FrameError(f"depthUpdate with bad update ids U={first!r} u={final!r} pu={prev!r}")
            if type(bids) is not list or type(asks) is not list:
                raise FrameError("depthUpdate levels are not lists")
            return ev.DepthDiff(epoch, msg["s"], first, final, prev, bids, asks, msg["E"], recv_ts)
        if etype is None:
            if "id" in msg and ("result" in msg or "error" in msg):
                err = msg.get("error")
                return Ack(int(msg["id"]), msg.get("result"), None if err is None else _error_text(err))
            if "u" in msg and "b" in msg and "a" in msg and "B" in msg:  # spot bookTicker has no "e"
                return ev.BookTicker(epoch, msg["s"], msg["u"], msg["b"], msg["B"], msg["a"], msg["A"], 0, recv_ts)
            if "lastUpdateId" in msg:
                return None  # spot partial depth (@depth5/10/20): not used for the local book
            raise FrameError("frame has no event type")
        if etype == "aggTrade":
            return ev.AggTrade(epoch, msg["s"], msg["a"], msg["p"], msg["q"], msg["m"], msg["T"], msg["E"], recv_ts)
        if etype == "bookTicker":
            return ev.BookTicker(epoch, msg["s"], msg["u"], msg["b"], msg["B"], msg["a"], msg["A"], msg.get("E", 0), recv_ts)
        if etype == "markPriceUpdate":
            return ev.MarkPrice(epoch, msg["s"], msg["p"], msg.get("i", ""), msg.get("r", ""), msg.get("T", 0), msg["E"], recv_ts)
        if etype == "kline":
            k = msg["k"]
            return ev.Kline(epoch, msg["s"], k["i"], k["t"], k["T"], k["o"], k["h"], k["l"], k["c"], k["v"], k["x"], msg["E"], recv_ts)
        if etype == "forceOrder":
            o = msg["o"]
            return ev.ForceOrder(epoch, o["s"], o["S"], o["p"], o["q"], o["X"], msg["E"], recv_ts)
        if etype == "serverShutdown":
            return ServerShutdown(int(msg.get("E", 0)))
        return None  # an event type we do not track (user data is handled elsewhere)
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{etype or 'event'} missing or bad field: {exc}") from None


def _error_text(err) -> str:
    if isinstance(err, dict):
        return f"{err.get('code')}: {err.get('msg')}"
    return str(err)


def decode_snapshot(raw: str | bytes) -> tuple[int, list, list, int]:
    """A REST depth response -> (lastUpdateId, bids, asks, E or 0). Raises FrameError."""
    try:
        msg = _loads(raw)
        return int(msg["lastUpdateId"]), msg["bids"], msg["asks"], int(msg.get("E", 0))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"bad depth snapshot: {exc}") from None


# ------------------------------------------------------------------------------ streams / URLs

_USDM_PUBLIC = ("depth", "bookTicker")  # served under /public since 2026
_USDM_MARKET = ("aggTrade", "markPrice", "kline", "forceOrder")  # served under /market


def depth_stream(symbol: str, speed_ms: int = 100) -> str:
    return f"{symbol.lower()}@depth@{speed_ms}ms" if speed_ms != 1000 else f"{symbol.lower()}@depth"


def streams_for(symbols: list[str] | tuple[str, ...], market: Market, *, trades: bool = True, tickers: bool = True, kline_interval: str | None = None) -> dict[str, list[str]]:
    """Stream names grouped by the route that serves them.

    Spot serves every stream on one route (``""``); USD-M splits ``/public`` (depth, bookTicker)
    from ``/market`` (aggTrade, markPrice, kline, forceOrder). ``kline_interval`` ("1m") adds
    ``<sym>@kline_<interval>`` (the runtime passes it; the default keeps klines off).
    """
    public: list[str] = []
    marketish: list[str] = []
    for s in symbols:
        low = s.lower()
        public.append(depth_stream(s))
        if tickers:
            public.append(f"{low}@bookTicker")
        if trades:
            marketish.append(f"{low}@aggTrade")
        if market == "usdm":
            marketish.append(f"{low}@markPrice@1s")
        if kline_interval:
            marketish.append(f"{low}@kline_{kline_interval}")
    if market == "spot":
        return {"": public + marketish}
    return {"/public": public, "/market": marketish}


def market_stream_url(ws_base: str, route: str) -> str:
    """The combined-stream endpoint that accepts live SUBSCRIBE on ``route``."""
    return f"{ws_base.rstrip('/')}{route}/stream"
