"""The one reader of Binance's ``exchangeInfo`` (spot ``/api/v3``, USD-M ``/fapi/v1``).

The live REST client, replay and backtest all read the same answer the same way: per symbol the
``PRICE_FILTER`` tick, the ``LOT_SIZE`` step and bounds, the minimum notional (spot ``NOTIONAL``
or ``MIN_NOTIONAL`` ``minNotional``, USD-M ``MIN_NOTIONAL`` ``notional``), the quote asset and the
trading status; and the venue's request-weight limit per minute from ``rateLimits``.

Values stay the venue's decimal strings, checked to be plain decimals (no exponent, no sign, no
float): the book and the trading layer turn them into exact integer units themselves. Anything
else is a data error: `ExchangeInfoError` (a `FrameError`), one line naming the symbol and the
field, never a crash. Symbols not asked for are checked only for their shape, so one odd listing
among Binance's thousands cannot spoil the ones we trade.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from epochbot.model import events as ev
from epochbot.venues.binance.wire import FrameError, check_filter_value

__all__ = ["ExchangeInfo", "ExchangeInfoError", "SymbolFilters", "parse_exchange_info"]

_MAX_SYMBOL_LEN = 32
_MAX_ASSET_LEN = 16
_MAX_STATUS_LEN = 32


class ExchangeInfoError(FrameError):
    """An ``exchangeInfo`` answer that is not what Binance documents; ``str()`` says where."""


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """One listed symbol's filters as the venue's strings (the trading layer parses them exactly)."""

    symbol: str
    tick_size: str
    step_size: str
    min_notional: str
    min_qty: str = "0"
    max_qty: str = "0"
    quote_asset: str = ""
    status: str = "TRADING"  # TRADING, HALT, BREAK, END_OF_DAY, CANCEL_ONLY...: new orders only in TRADING

    def spec(self, recv_ts: int = 0) -> ev.SymbolSpec:
        """The engine event that fixes this symbol's exact tick and lot scale."""
        return ev.SymbolSpec(
            symbol=self.symbol,
            tick_size=self.tick_size,
            step_size=self.step_size,
            min_notional=self.min_notional,
            recv_ts=recv_ts,
        )


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """What epochbot reads of one ``exchangeInfo`` answer."""

    # The symbols asked for (all when none were named) that list both PRICE_FILTER and LOT_SIZE.
    filters: dict[str, SymbolFilters] = field(default_factory=dict)
    # The status of every symbol asked for that the venue lists.
    statuses: dict[str, str] = field(default_factory=dict)
    # rateLimits REQUEST_WEIGHT per 1 MINUTE, when published.
    weight_limit_1m: int | None = None


def parse_exchange_info(raw: bytes | str | Mapping[str, Any], symbols: Collection[str] | None = None) -> ExchangeInfo:
    """Read an ``exchangeInfo`` body (JSON text, or already decoded).

    Args:
        raw: the response body.
        symbols: the symbols whose filters to read (None: every listed symbol).

    Raises:
        ExchangeInfoError: the body is not JSON, not an object, or a field is not as documented.
    """
    try:
        info = orjson.loads(raw) if isinstance(raw, (bytes, str)) else raw
    except orjson.JSONDecodeError as exc:
        raise ExchangeInfoError(f"bad exchangeInfo: not JSON: {str(exc)[:120]}") from None
    if not isinstance(info, Mapping):
        raise ExchangeInfoError("bad exchangeInfo: not a JSON object")
    listed = info.get("symbols")
    if type(listed) is not list:
        raise ExchangeInfoError("bad exchangeInfo: field symbols must be a list")
    wanted = None if symbols is None else frozenset(symbols)
    filters: dict[str, SymbolFilters] = {}
    statuses: dict[str, str] = {}
    for index, entry in enumerate(listed):
        if not isinstance(entry, Mapping):
            raise ExchangeInfoError(f"bad exchangeInfo: symbols[{index}] is not an object")
        name = entry.get("symbol")
        if type(name) is not str or not 0 < len(name) <= _MAX_SYMBOL_LEN:
            raise ExchangeInfoError(f"bad exchangeInfo: symbols[{index}]: field symbol must be a short string")
        if wanted is not None and name not in wanted:
            continue
        try:
            status = _text(entry.get("status", "TRADING"), "status", _MAX_STATUS_LEN)
            statuses[name] = status
            parsed = _symbol_filters(name, entry, status)
        except FrameError as exc:
            raise ExchangeInfoError(f"bad exchangeInfo: {name}: {exc}") from None
        if parsed is not None:
            filters[name] = parsed
    return ExchangeInfo(filters=filters, statuses=statuses, weight_limit_1m=_weight_limit(info.get("rateLimits")))


def _symbol_filters(name: str, entry: Mapping[str, Any], status: str) -> SymbolFilters | None:
    rows = entry.get("filters", [])
    if type(rows) is not list:
        raise FrameError("field filters must be a list")
    by_type: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if not isinstance(row, Mapping) or type(row.get("filterType")) is not str:
            raise FrameError("a filter is not an object with a filterType")
        by_type[row["filterType"]] = row
    price, lot = by_type.get("PRICE_FILTER"), by_type.get("LOT_SIZE")
    if price is None or lot is None:
        return None  # listed but not tradable by price and quantity: nothing to fix a scale with
    notional = by_type.get("MIN_NOTIONAL") or by_type.get("NOTIONAL") or {}
    min_notional = notional.get("minNotional", notional.get("notional", "0"))  # spot / USD-M names
    return SymbolFilters(
        symbol=name,
        tick_size=check_filter_value(price.get("tickSize"), "tickSize", positive=True),
        step_size=check_filter_value(lot.get("stepSize"), "stepSize", positive=True),
        min_notional=check_filter_value(min_notional, "minNotional"),
        min_qty=check_filter_value(lot.get("minQty", "0"), "minQty"),
        max_qty=check_filter_value(lot.get("maxQty", "0"), "maxQty"),
        quote_asset=_text(entry.get("quoteAsset", ""), "quoteAsset", _MAX_ASSET_LEN),
        status=status,
    )


def _text(value: Any, name: str, limit: int) -> str:
    if type(value) is not str or len(value) > limit:
        raise FrameError(f"field {name} must be a string of at most {limit} characters")
    return value


def _weight_limit(rules: Any) -> int | None:
    """The venue publishes its request-weight limit: the planner (core/runtime/budget.py) uses it."""
    if rules is None:
        return None
    if type(rules) is not list:
        raise ExchangeInfoError("bad exchangeInfo: field rateLimits must be a list")
    for rule in rules:
        if (
            isinstance(rule, Mapping)
            and rule.get("rateLimitType") == "REQUEST_WEIGHT"
            and rule.get("interval") == "MINUTE"
            and rule.get("intervalNum") == 1
        ):
            limit = rule.get("limit")
            if type(limit) is not int or limit <= 0:
                raise ExchangeInfoError("bad exchangeInfo: REQUEST_WEIGHT limit must be a positive integer")
            return limit
    return None
