"""Binance websocket frames -> typed events (spot and USD-M), and stream names/URLs.

Frames are either the combined-stream wrapper ``{"stream": "...", "data": {...}}`` or bare
events. Decoding uses orjson; the depthUpdate path is kept short because it is most of the
traffic. Anything that is not a usable event raises `FrameError` with the reason; the reader
turns that into a `MalformedFrame` control event and carries on (a frame is never half-applied).

Subscription acks (``{"result": null, "id": N}``) and errors (``{"error": {...}, "id": N}``)
come back as `Ack` values so the reader can turn them into control events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal

import orjson

from epochbot.model import events as ev
from epochbot.model.errors import DataError

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


class FrameError(DataError):
    """The frame is not JSON, or not a Binance event this decoder understands.

    ``event`` is the frame's event type and ``symbol`` its symbol when they could be read (so
    the engine can route the data error: a bad depth event resyncs its book)."""

    def __init__(self, message: str, event: str = "", symbol: str = "") -> None:
        super().__init__(message)
        self.event = event
        self.symbol = symbol


# ------------------------------------------------------------------------------ field checks
# Every field the engine, telemetry, trader and portfolio read is checked here, at decode:
# integers are ints (never bool, never strings), within range; prices and quantities are plain
# decimal strings (finite by construction: no exponent, no NaN/Infinity, no sign) of bounded
# length. A frame that fails a check raises FrameError and never reaches the loop.

_MAX_INT = 2**63 - 1
_MAX_TS_MS = _MAX_INT  # range checks of plausibility are the telemetry's (stale timestamps)
_MAX_DEC_LEN = 40
_MAX_SYMBOL_LEN = 32


def _int(value, name: str, lo: int = 0, hi: int = _MAX_INT) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise FrameError(f"field {name} must be an integer in [{lo}, {hi}], got {_short(value)}")
    return value


def _ts(value, name: str) -> int:
    return _int(value, name, 0, _MAX_TS_MS)


def _dec(value, name: str, *, positive: bool = False, signed: bool = False, empty: bool = False) -> str:
    """A plain decimal string ("27123.40", "0.000"; "-0.0001" when ``signed``)."""
    if type(value) is not str or len(value) > _MAX_DEC_LEN:
        raise FrameError(f"field {name} must be a decimal string, got {_short(value)}")
    if not value:
        if empty:
            return value
        raise FrameError(f"field {name} is empty")
    body = value[1:] if signed and value[0] in "+-" else value
    whole, dot, frac = body.partition(".")
    if not (whole.isdigit() and whole.isascii()) or (dot and not (frac.isdigit() and frac.isascii())):
        raise FrameError(f"field {name} is not a plain decimal: {_short(value)}")
    if positive and not (whole + frac).strip("0"):
        raise FrameError(f"field {name} must be positive, got {value!r}")
    return value


def _symbol(value) -> str:
    if type(value) is not str or not 0 < len(value) <= _MAX_SYMBOL_LEN or not value.isascii() or not value.isalnum():
        raise FrameError(f"field s is not a symbol: {_short(value)}")
    return value


def _bool(value, name: str) -> bool:
    if type(value) is not bool:
        raise FrameError(f"field {name} must be true/false, got {_short(value)}")
    return value


def _str(value, name: str, max_len: int = 32) -> str:
    if type(value) is not str or len(value) > max_len:
        raise FrameError(f"field {name} must be a short string, got {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class Ack:
    request_id: int
    result: object = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    exchange_ts: int


_loads = orjson.loads

_fastbook: Any
try:  # optional C accelerator (core/book/_fastbook.c): depthUpdate frames straight to integer units
    _fastbook = import_module("epochbot.book._fastbook")
except ImportError:  # pragma: no cover - depends on whether the extension was built
    _fastbook = None
_decode_depth: Callable[..., Any] | None = getattr(_fastbook, "decode_depth", None)  # -> tuple | None
# -> DepthDiff | None, built by C from the slots (checked below)
_decode_depth_event: Callable[..., ev.DepthDiff | None] | None = None

# Tests flip this to compare both paths; decode_frame uses the C decoder only when it is True
# and the caller passes `scales`.
USE_FASTDECODE = _decode_depth is not None

_DEPTH_SLOTS = (
    "epoch",
    "symbol",
    "first_id",
    "final_id",
    "prev_final_id",
    "bids",
    "asks",
    "exchange_ts",
    "recv_ts",
    "process_ts",
    "scale",
)


def _bind_depth_event() -> None:
    """Let C build DepthDiff directly (saves the Python __init__) only if what it builds equals
    what DepthDiff(...) builds, slot for slot; any drift of DepthDiff keeps the tuple path."""
    global _decode_depth_event
    fast = getattr(_fastbook, "decode_depth_event", None)
    decode = _decode_depth
    if (
        fast is None
        or decode is None
        or ev._all_slots(ev.DepthDiff)
        != [
            "epoch",
            "symbol",
            "exchange_ts",
            "recv_ts",
            "process_ts",
            *_DEPTH_SLOTS[2:7],
            "scale",
        ]
    ):
        return
    try:
        _fastbook.bind_depth_type(ev.DepthDiff, _DEPTH_SLOTS)
        raw = b'{"stream":"x","data":{"e":"depthUpdate","E":7,"s":"S","U":2,"u":3,"pu":1,"b":[["1.5","2"]],"a":[]}}'
        scales = {"S": (1, 0)}
        got = fast(raw, scales, 4, 9)
        s, e, u0, u1, pu, b, a, scale = decode(raw, scales)
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
        elif _decode_depth is not None:
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
    etype = msg.get("e")
    try:
        if etype == "depthUpdate":
            first, final, prev, bids, asks = msg["U"], msg["u"], msg.get("pu"), msg["b"], msg["a"]
            if (
                type(first) is not int
                or type(final) is not int
                or first > final
                or (prev is not None and type(prev) is not int)
            ):
                raise FrameError(
                    f"depthUpdate with bad update ids U={_short(first)} u={_short(final)} pu={_short(prev)}"
                )
            _int(first, "U"), _int(final, "u")
            if prev is not None:
                _int(prev, "pu", -1)
            if type(bids) is not list or type(asks) is not list:
                raise FrameError("depthUpdate levels are not lists")
            return ev.DepthDiff(epoch, _symbol(msg["s"]), first, final, prev, bids, asks, _ts(msg["E"], "E"), recv_ts)
        if etype is None:
            if "id" in msg and ("result" in msg or "error" in msg):
                err = msg.get("error")
                return Ack(_int(msg["id"], "id"), msg.get("result"), None if err is None else _error_text(err))
            if "u" in msg and "b" in msg and "a" in msg and "B" in msg:  # spot bookTicker has no "e"
                return ev.BookTicker(
                    epoch,
                    _symbol(msg["s"]),
                    _int(msg["u"], "u"),
                    _dec(msg["b"], "b"),
                    _dec(msg["B"], "B"),
                    _dec(msg["a"], "a"),
                    _dec(msg["A"], "A"),
                    0,
                    recv_ts,
                )
            if "lastUpdateId" in msg:
                return None  # spot partial depth (@depth5/10/20): not used for the local book
            raise FrameError("frame has no event type")
        if etype == "trade":
            # Binance's raw @trade stream (one print per maker fill): the same fields as an
            # aggTrade of one fill, its trade id standing in for the aggregate id.
            return ev.AggTrade(
                epoch,
                _symbol(msg["s"]),
                _int(msg["t"], "t"),
                _dec(msg["p"], "p", positive=True),
                _dec(msg["q"], "q", positive=True),
                _bool(msg["m"], "m"),
                _ts(msg["T"], "T"),
                _ts(msg["E"], "E"),
                recv_ts,
            )
        if etype == "aggTrade":
            return ev.AggTrade(
                epoch,
                _symbol(msg["s"]),
                _int(msg["a"], "a"),
                _dec(msg["p"], "p", positive=True),
                _dec(msg["q"], "q", positive=True),
                _bool(msg["m"], "m"),
                _ts(msg["T"], "T"),
                _ts(msg["E"], "E"),
                recv_ts,
            )
        if etype == "bookTicker":
            return ev.BookTicker(
                epoch,
                _symbol(msg["s"]),
                _int(msg["u"], "u"),
                _dec(msg["b"], "b"),
                _dec(msg["B"], "B"),
                _dec(msg["a"], "a"),
                _dec(msg["A"], "A"),
                _ts(msg.get("E", 0), "E"),
                recv_ts,
            )
        if etype == "markPriceUpdate":
            return ev.MarkPrice(
                epoch,
                _symbol(msg["s"]),
                _dec(msg["p"], "p", positive=True),
                _dec(msg.get("i", ""), "i", empty=True),
                _dec(msg.get("r", ""), "r", signed=True, empty=True),
                _ts(msg.get("T", 0), "T"),
                _ts(msg["E"], "E"),
                recv_ts,
            )
        if etype == "kline":
            k = msg["k"]
            if type(k) is not dict:
                raise FrameError("kline field k is not an object")
            open_ts, close_ts = _ts(k["t"], "k.t"), _ts(k["T"], "k.T")
            if close_ts < open_ts:
                raise FrameError(f"kline closes before it opens: t={open_ts} T={close_ts}")
            return ev.Kline(
                epoch,
                _symbol(msg["s"]),
                _str(k["i"], "k.i", 8),
                open_ts,
                close_ts,
                _dec(k["o"], "k.o"),
                _dec(k["h"], "k.h"),
                _dec(k["l"], "k.l"),
                _dec(k["c"], "k.c"),
                _dec(k["v"], "k.v"),
                _bool(k["x"], "k.x"),
                _ts(msg["E"], "E"),
                recv_ts,
            )
        if etype == "forceOrder":
            o = msg["o"]
            if type(o) is not dict:
                raise FrameError("forceOrder field o is not an object")
            side = o["S"]
            if side not in ("BUY", "SELL"):
                raise FrameError(f"forceOrder side {_short(side)}")
            return ev.ForceOrder(
                epoch,
                _symbol(o["s"]),
                side,
                _dec(o["p"], "o.p"),
                _dec(o["q"], "o.q"),
                _str(o["X"], "o.X"),
                _ts(msg["E"], "E"),
                recv_ts,
            )
        if etype == "serverShutdown":
            return ServerShutdown(_ts(msg.get("E", 0), "E"))
        return None  # an event type we do not track (user data is handled elsewhere)
    except FrameError as exc:
        raise FrameError(str(exc), _etype(etype), _frame_symbol(msg)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FrameError(
            f"{_etype(etype) or 'event'} missing or bad field: {_short(exc)}", _etype(etype), _frame_symbol(msg)
        ) from None


def _etype(etype) -> str:
    return etype[:32] if type(etype) is str else ""


def _frame_symbol(msg: dict) -> str:
    symbol = msg.get("s")
    if type(symbol) is str and 0 < len(symbol) <= _MAX_SYMBOL_LEN and symbol.isascii() and symbol.isalnum():
        return symbol
    return ""


def check_kline_row(row) -> None:
    """A REST kline row ``[openTime, open, high, low, close, volume, closeTime, ...]``: raises
    FrameError unless the times are integers and the prices/volume plain decimals."""
    if type(row) is not list or len(row) < 7:
        raise FrameError("kline row is not a list of at least 7 fields")
    open_ts, close_ts = _ts(row[0], "openTime"), _ts(row[6], "closeTime")
    if close_ts < open_ts:
        raise FrameError("kline row closes before it opens")
    for value, name in zip(row[1:6], ("open", "high", "low", "close", "volume"), strict=True):
        _dec(value, name)


def check_filter_value(value: object, name: str, *, positive: bool = False) -> str:
    """An exchangeInfo filter value (tickSize, stepSize, minNotional...): a plain decimal string
    (Binance sends every one as a string), positive when ``positive``."""
    return _dec(value, name, positive=positive)


def _error_text(err) -> str:
    if isinstance(err, dict):
        return f"{err.get('code')}: {err.get('msg')}"
    return str(err)


def decode_snapshot(raw: str | bytes) -> tuple[int, list, list, int]:
    """A REST depth response -> (lastUpdateId, bids, asks, E or 0). Raises FrameError."""
    try:
        msg = _loads(raw)
        if type(msg) is not dict:
            raise FrameError("depth snapshot is not a JSON object")
        bids, asks = msg["bids"], msg["asks"]
        if type(bids) is not list or type(asks) is not list:
            raise FrameError("depth snapshot levels are not lists")
        return _int(msg["lastUpdateId"], "lastUpdateId"), bids, asks, _ts(msg.get("E", 0), "E")
    except FrameError as exc:
        raise FrameError(f"bad depth snapshot: {exc}") from None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"bad depth snapshot: {_short(exc)}") from None


# ------------------------------------------------------------------------------ streams / URLs

_USDM_PUBLIC = ("depth", "bookTicker")  # served under /public since 2026
_USDM_MARKET = ("aggTrade", "markPrice", "kline", "forceOrder")  # served under /market


def depth_stream(symbol: str, speed_ms: int = 100) -> str:
    return f"{symbol.lower()}@depth@{speed_ms}ms" if speed_ms != 1000 else f"{symbol.lower()}@depth"


def streams_for(
    symbols: list[str] | tuple[str, ...],
    market: Market,
    *,
    trades: bool = True,
    tickers: bool = True,
    kline_interval: str | None = None,
) -> dict[str, list[str]]:
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
