"""Order validation: Binance's string parameters to a checked `Order`, or the error Binance gives.

`validate_new` applies the checks in Binance's order (side, type, USD-M position side against the
account's position mode, timeInForce, quantity and price grids, reduce-only, notional, client
order id, response type, reduce-only against the position) and builds the order without recording
anything: a rejected request leaves no trace. USD-M conditional types (STOP, TAKE_PROFIT, ...) are
refused with -4120: they live in the Algo Service since 2025-12-09 (``algo.py``).
"""

from __future__ import annotations

import re

from epochbot.model.numeric import DecimalFormatError, parse_units
from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.records import CONDITIONAL_TYPES, Account, Market, Order, Position, SymbolFilters, sign

__all__ = [
    "check_client_id",
    "check_position_side",
    "filter_failure",
    "missing",
    "parse_param",
    "symbol_filters",
    "validate_new",
]

CLIENT_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_NUMBER = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")

# Accepted enumerations per market.
ORDER_TYPES = {"spot": ("LIMIT", "MARKET", "LIMIT_MAKER"), "usdm": ("LIMIT", "MARKET")}
TIME_IN_FORCE = {"spot": ("GTC", "IOC", "FOK"), "usdm": ("GTC", "IOC", "FOK", "GTX")}


def missing(name: str) -> SimApiError:
    return SimApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def filter_failure(name: str) -> SimApiError:
    return SimApiError(-1013, f"Filter failure: {name}")


USE_ALGO_SERVICE = "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
SIDE_MISMATCH = "Order's position side does not match user's setting."
REDUCE_ONLY_IN_HEDGE_MODE = "Parameter 'reduceonly' sent when not required."


def check_position_side(account: Account, text: str | None) -> str:
    """The order's ``positionSide`` against the account's mode: one-way takes BOTH (the default),
    hedge mode LONG or SHORT and nothing else (-4061, Binance's "Order's position side does not
    match user's setting."); a value that is no position side at all is -4060."""
    side = text or "BOTH"
    if side not in ("BOTH", "LONG", "SHORT"):
        raise SimApiError(-4060, "Invalid position side.")
    if (side == "BOTH") == account.dual_side:
        raise SimApiError(-4061, SIDE_MISMATCH)
    return side


def check_client_id(name: str, client_id: str) -> None:
    """Binance's client id pattern, ``^[.A-Z:/a-z0-9_-]{1,36}$`` (-1100)."""
    if not CLIENT_ID_PATTERN.match(client_id):
        raise SimApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'.",
        )


def symbol_filters(symbols: dict[str, SymbolFilters], params: dict[str, str]) -> SymbolFilters:
    """The filters of the request's ``symbol`` (-1102 when absent, -1121 when unknown)."""
    symbol = params.get("symbol")
    if not symbol:
        raise missing("symbol")
    filters = symbols.get(symbol)
    if filters is None:
        raise SimApiError(-1121, "Invalid symbol.")
    return filters


def parse_param(params: dict[str, str], name: str, decimals: int, filter_name: str) -> int:
    """A price or quantity in units: -1102 absent, -1013 off the grid, -1100 not a number."""
    text = params.get(name)
    if not text:
        raise missing(name)
    try:
        return parse_units(text, decimals)
    except DecimalFormatError:
        if _NUMBER.fullmatch(text):
            raise filter_failure(filter_name) from None  # finer than the grid
        raise SimApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
        ) from None


def validate_new(
    market: Market,
    account: Account,
    account_id: str,
    f: SymbolFilters,
    params: dict[str, str],
    *,
    order_id: int,
    mark: int,
    now_ms: int,
) -> tuple[Order, str]:
    """The order a new-order request describes and its ``newOrderRespType``, or SimApiError.

    Args:
        order_id: the id the order gets if it is accepted.
        mark: the symbol's mark price (price units): MARKET orders' notional is valued at it.
    """
    side = params.get("side")
    if not side:
        raise missing("side")
    if side not in ("BUY", "SELL"):
        raise SimApiError(-1117, "Invalid side.")
    order_type = params.get("type")
    if not order_type:
        raise missing("type")
    if order_type not in ORDER_TYPES[market]:
        if market == "usdm" and order_type in CONDITIONAL_TYPES:
            raise SimApiError(-4120, USE_ALGO_SERVICE)
        raise SimApiError(-1116, "Invalid orderType.")
    position_side = "BOTH"
    if market == "usdm":
        position_side = check_position_side(account, params.get("positionSide"))
        if account.dual_side and "reduceOnly" in params:  # "Cannot be sent in Hedge Mode"
            raise SimApiError(-1106, REDUCE_ONLY_IN_HEDGE_MODE)

    tif = params.get("timeInForce")
    if order_type == "LIMIT":
        if not tif:
            raise missing("timeInForce")
        if tif not in TIME_IN_FORCE[market]:
            raise SimApiError(-1115, "Invalid timeInForce.")
    elif tif and market == "spot":
        raise SimApiError(-1106, "Parameter 'timeInForce' sent when not required.")
    else:
        tif = "GTC"

    qty = parse_param(params, "quantity", f.qty_decimals, "LOT_SIZE")
    if order_type == "MARKET":
        if params.get("price") and market == "spot":
            raise SimApiError(-1106, "Parameter 'price' sent when not required.")
        price = 0
    else:
        price = parse_param(params, "price", f.price_decimals, "PRICE_FILTER")
        if price <= 0 or price % f.tick_units:
            raise filter_failure("PRICE_FILTER")
    if qty <= 0 or qty % f.step_units or qty < f.min_qty_units or qty > f.max_qty_units:
        raise filter_failure("LOT_SIZE")

    reduce_text = params.get("reduceOnly", "false")
    if reduce_text not in ("true", "false"):
        raise SimApiError(-1130, "Data sent for parameter 'reduceOnly' is not valid.")
    reduce_only = reduce_text == "true"
    if reduce_only and market == "spot":
        raise SimApiError(-1104, "Not all sent parameters were read (reduceOnly is a futures parameter).")

    # Notional filter (MARKET orders are valued at the mark price).
    ref_price = price if price else mark
    notional = ref_price * qty
    min_notional = parse_units(f.min_notional, f.price_decimals + f.qty_decimals)
    if notional < min_notional and not reduce_only:
        if market == "spot":
            raise filter_failure("NOTIONAL")
        raise SimApiError(
            -4164, f"Order's notional must be no smaller than {f.min_notional} (unless you choose reduce only)."
        )

    client_id = params.get("newClientOrderId") or ""
    if client_id:
        check_client_id("newClientOrderId", client_id)
        for other in account.orders.values():
            if other.is_open and other.symbol == f.symbol and other.client_order_id == client_id:
                if market == "spot":
                    raise SimApiError(-2010, "Duplicate order sent.")
                raise SimApiError(-4116, "ClientOrderId is duplicated.")

    resp_type = params.get("newOrderRespType") or ("FULL" if order_type in ("LIMIT", "MARKET") else "ACK")
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise SimApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")

    closing = (position_side, side) in (("LONG", "SELL"), ("SHORT", "BUY"))  # hedge mode: reduces that side
    if reduce_only or closing:
        pos = account.positions.get((f.symbol, position_side), Position())
        direction = 1 if side == "BUY" else -1
        if pos.size == 0 or sign(pos.size) == direction or qty > abs(pos.size):
            raise SimApiError(-2022, "ReduceOnly Order is rejected.")

    order = Order(
        account_id=account_id,
        symbol=f.symbol,
        order_id=order_id,
        client_order_id=client_id or f"sim-{f.symbol}-{order_id}",
        side=side,
        type=order_type,
        time_in_force=tif,
        price=price,
        orig_qty=qty,
        reduce_only=reduce_only,
        time=now_ms,
        update_time=now_ms,
        position_side=position_side,
    )
    return order, resp_type
