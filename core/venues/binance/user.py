"""Binance order answers and user-data frames -> trading events (`epochbot.model.trade_events`).

REST answers (spot ``/api/v3/order``, USD-M ``/fapi/v1/order``) and user-data stream events
(spot ``executionReport``, USD-M ``ORDER_TRADE_UPDATE``) are mapped to the lifecycle events the
order manager understands. Quantities and prices are converted with the symbol's codec into lots
and price units; a string the codec cannot represent exactly raises a data error
(`epochbot.model.errors.DataError`: `UserFrameError` here, `DecimalFormatError` from the codec);
the caller logs and skips the frame rather than guess.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import orjson

from epochbot.model import trade_events as tev
from epochbot.model.errors import DataError
from epochbot.model.numeric import UnitCodec

__all__ = [
    "UserFrameError",
    "order_response_events",
    "query_response_event",
    "user_frame_events",
    "user_message_events",
]


class UserFrameError(DataError):
    """A user-data frame or order answer the decoder cannot map to trading events."""


_MS = 1_000_000


def _fee_asset(asset: str, symbol: str, quotes: dict[str, str] | None) -> str:
    """ "" means the quote asset (what PnL is counted in); anything else is kept by name."""
    asset = asset or ""
    return "" if quotes and asset == quotes.get(symbol) else asset


def order_response_events(
    body: dict, codecs: dict[str, UnitCodec], client_order_id: str, now_ns: int, quotes: dict[str, str] | None = None
) -> list:
    """A 200 answer to POST order -> OrderAccepted (+ Fills listed in a spot FULL response)."""
    events: list = []
    status = str(body.get("status", "NEW"))
    ts = int(body.get("transactTime") or body.get("updateTime") or 0) * _MS or now_ns
    events.append(
        tev.OrderAccepted(
            ts_ns=ts,
            recv_ts=now_ns,
            client_order_id=client_order_id,
            venue_order_id=str(body.get("orderId", "")),
            status=status,
        )
    )
    symbol = body.get("symbol", "")
    codec = codecs.get(symbol)
    for fill in body.get("fills", []) or []:
        if codec is None:
            break
        events.append(
            tev.Fill(
                ts_ns=ts,
                recv_ts=now_ns,
                client_order_id=client_order_id,
                symbol=symbol,
                side=body.get("side", "BUY"),
                qty=codec.qty[fill["qty"]],
                price=codec.price[fill["price"]],
                fee=_decimal(fill.get("commission", "0")),
                fee_asset=_fee_asset(fill.get("commissionAsset", ""), symbol, quotes),
                is_maker=False,
                trade_id=str(fill.get("tradeId", "")),
                via="order_response",
            )
        )
    return events


def query_response_event(
    body: dict, codecs: dict[str, UnitCodec], client_order_id: str, now_ns: int
) -> tev.OrderQueryResult:
    codec = codecs.get(body.get("symbol", ""))
    executed = codec.qty[body.get("executedQty", "0")] if codec else 0
    return tev.OrderQueryResult(
        ts_ns=now_ns,
        recv_ts=now_ns,
        client_order_id=client_order_id,
        found=True,
        status=str(body.get("status", "")),
        filled_qty=executed,
        venue_order_id=str(body.get("orderId", "")),
    )


def user_frame_events(
    raw: str | bytes, codecs: dict[str, UnitCodec], now_ns: int, quotes: dict[str, str] | None = None
) -> list:
    """One user-data frame -> trading events (empty for account-only updates).

    Accepts the three envelopes Binance uses: a bare event (USD-M ``/private/ws``), a combined
    stream ``{"stream", "data"}`` (``/private/stream``) and a WebSocket API subscription event
    ``{"subscriptionId", "event"}`` (spot ``userDataStream.subscribe``).
    """
    return user_message_events(orjson.loads(raw), codecs, now_ns, quotes)


def user_message_events(msg, codecs: dict[str, UnitCodec], now_ns: int, quotes: dict[str, str] | None = None) -> list:
    """An already-parsed user-data message -> trading events (see `user_frame_events`)."""
    if isinstance(msg, dict) and isinstance(msg.get("data"), dict):
        msg = msg["data"]
    elif isinstance(msg, dict) and isinstance(msg.get("event"), dict):
        msg = msg["event"]
    if not isinstance(msg, dict):
        raise UserFrameError("user frame is not an object")
    etype = msg.get("e")
    if etype == "executionReport":  # spot
        return _order_update(
            symbol=msg["s"],
            client_order_id=msg["C"] if msg.get("X") == "CANCELED" and msg.get("C") else msg["c"],
            side=msg["S"],
            exec_type=msg["x"],
            status=msg["X"],
            cum_qty=msg["z"],
            last_qty=msg["l"],
            last_price=msg["L"],
            fee=msg.get("n") or "0",
            fee_asset=msg.get("N") or "",
            maker=bool(msg.get("m")),
            trade_id=msg.get("t", -1),
            order_id=msg.get("i", ""),
            ts_ms=msg.get("T") or msg.get("E") or 0,
            reason=msg.get("r", ""),
            codecs=codecs,
            now_ns=now_ns,
            quotes=quotes,
        )
    if etype == "ORDER_TRADE_UPDATE":  # USD-M
        o = msg["o"]
        return _order_update(
            symbol=o["s"],
            client_order_id=o["c"],
            side=o["S"],
            exec_type=o["x"],
            status=o["X"],
            cum_qty=o["z"],
            last_qty=o["l"],
            last_price=o["L"],
            fee=o.get("n") or "0",
            fee_asset=o.get("N") or "",
            maker=bool(o.get("m")),
            trade_id=o.get("t", -1),
            order_id=o.get("i", ""),
            ts_ms=o.get("T") or msg.get("E") or 0,
            reason="",
            codecs=codecs,
            now_ns=now_ns,
            quotes=quotes,
        )
    return []


def _order_update(
    *,
    symbol,
    client_order_id,
    side,
    exec_type,
    status,
    cum_qty,
    last_qty,
    last_price,
    fee,
    fee_asset,
    maker,
    trade_id,
    order_id,
    ts_ms,
    reason,
    codecs,
    now_ns,
    quotes=None,
) -> list:
    codec = codecs.get(symbol)
    if codec is None:
        return []
    ts = int(ts_ms) * _MS or now_ns
    events: list = []
    if exec_type == "TRADE":
        events.append(
            tev.Fill(
                ts_ns=ts,
                recv_ts=now_ns,
                client_order_id=client_order_id,
                symbol=symbol,
                side=side,
                qty=codec.qty[last_qty],
                price=codec.price[last_price],
                fee=_decimal(fee),
                fee_asset=_fee_asset(fee_asset, symbol, quotes),
                is_maker=maker,
                trade_id=str(trade_id),
                via="account_stream",
            )
        )
    events.append(
        tev.OrderUpdate(
            ts_ns=ts,
            recv_ts=now_ns,
            client_order_id=client_order_id,
            status=status,
            filled_qty=codec.qty[cum_qty],
            venue_order_id=str(order_id),
            reason=str(reason or ""),
        )
    )
    return events


def _decimal(text) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        raise UserFrameError(f"bad fee amount {text!r}") from None
