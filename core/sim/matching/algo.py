"""The Algo Service's rules on their own: a conditional order's parameters, its trigger, its child order.

USD-M conditional orders (STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)
live in Binance's Algo Service since 2025-12-09 (``POST /fapi/v1/algoOrder``), outside the matching
engine, until their trigger. Pure functions, no state of their own:

* `validate_algo`: Binance's string parameters to a checked `AlgoOrder`, or the error Binance gives
  (the order of the checks is the order of the document's table; what no document fixes is a sim
  choice, listed in docs/binance.md "USD-M account and Algo Service");
* `watched_price`: the price the order watches (``workingType``: MARK_PRICE = the mark price,
  CONTRACT_PRICE = the last trade price);
* `fires`: whether a move to that price triggers it (Binance's conditions: STOP BUY at price >=
  trigger, SELL at <=; TAKE_PROFIT the other way round; TRAILING_STOP_MARKET once activated, at a
  ``callbackRate`` retreat from the best price since placement), updating a trailing order's state;
* `child_order_type`: what the trigger places into the matching engine (MARKET for the ``*_MARKET``
  and trailing types, LIMIT at ``price`` for STOP / TAKE_PROFIT).

``timeInForce=GTE_GTC`` (Binance's ALGO_UPDATE document: "a GTE_GTC Time-In-Force conditional
order [...] closes all positions on that symbol, resulting in system-led cancellation"): the venue
EXPIREs such an order when the position of its symbol and side becomes flat.
"""

from __future__ import annotations

from epochbot.model.numeric import DecimalFormatError, parse_units
from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.records import (
    ALGO_OPEN_STATUSES,
    CONDITIONAL_TYPES,
    MAX_OPEN_ALGO_ORDERS,
    Account,
    AlgoOrder,
    SymbolFilters,
)
from epochbot.sim.matching.validate import (
    REDUCE_ONLY_IN_HEDGE_MODE,
    check_client_id,
    check_position_side,
    filter_failure,
    missing,
    parse_param,
)

__all__ = [
    "TRIGGER_PROTECT_BPS",
    "child_order_type",
    "fires",
    "protected",
    "validate_algo",
    "watched_price",
]

# exchangeInfo ``triggerProtect`` (0.0500): with ``priceProtect``, the order does not trigger while
# the mark and the last price differ by more than this (basis points of the mark).
TRIGGER_PROTECT_BPS = 500
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
CALLBACK_MIN_BPS, CALLBACK_MAX_BPS = 10, 2000  # 0.1 % .. 20 % (max 20 since the 2026-10-23 change log)
_STOP_TYPES = ("STOP", "STOP_MARKET")
_LIMIT_TYPES = ("STOP", "TAKE_PROFIT")
_CLOSE_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")


def _flag(params: dict[str, str], name: str) -> bool:
    """A "true"/"false" parameter (any case, as Binance's "TRUE" / "FALSE" examples); -1130 otherwise."""
    text = params.get(name)
    if text is None or text == "":
        return False
    low = text.lower()
    if low not in ("true", "false"):
        raise SimApiError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return low == "true"


def watched_price(algo: AlgoOrder, mark: int, last: int) -> int:
    """The price the order's ``workingType`` reads (price units)."""
    return mark if algo.working_type == "MARK_PRICE" else last


def _reached(order_type: str, direction: int, trigger: int, price: int) -> bool:
    if order_type in _STOP_TYPES:
        return price >= trigger if direction > 0 else price <= trigger
    return price <= trigger if direction > 0 else price >= trigger


def protected(algo: AlgoOrder, mark: int, last: int) -> bool:
    """``priceProtect``: the trigger is held while mark and last price are too far apart."""
    return algo.price_protect and mark > 0 and abs(mark - last) * 10_000 > TRIGGER_PROTECT_BPS * mark


def fires(algo: AlgoOrder, price: int) -> bool:
    """Whether ``price`` (what the order watches) triggers it; a trailing order's activation and
    best price are updated on the way."""
    if price <= 0:
        return False
    if algo.order_type != "TRAILING_STOP_MARKET":
        return _reached(algo.order_type, algo.direction, algo.trigger_price, price)
    buy = algo.direction > 0
    algo.extreme = price if algo.extreme == 0 else (min(algo.extreme, price) if buy else max(algo.extreme, price))
    if not algo.activated:
        activate = algo.activate_price
        algo.activated = activate == 0 or (algo.extreme <= activate if buy else algo.extreme >= activate)
        if not algo.activated:
            return False
    if buy:  # the lowest price since placement, then the latest price >= lowest x (1 + callbackRate)
        return price * 10_000 >= algo.extreme * (10_000 + algo.callback_bps)
    return price * 10_000 <= algo.extreme * (10_000 - algo.callback_bps)


def child_order_type(order_type: str) -> str:
    """The type of the order a trigger places into the matching engine."""
    return "LIMIT" if order_type in _LIMIT_TYPES else "MARKET"


def validate_algo(
    account: Account,
    account_id: str,
    f: SymbolFilters,
    params: dict[str, str],
    *,
    algo_id: int,
    mark: int,
    last: int,
    now_ms: int,
) -> AlgoOrder:
    """The conditional order a ``POST /fapi/v1/algoOrder`` describes, or SimApiError; nothing is
    recorded. ``mark``/``last``: the symbol's mark and last trade price now (price units; 0 when
    unknown, then the immediate-trigger check is skipped)."""
    algo_type = params.get("algoType")
    if not algo_type:
        raise missing("algoType")
    if algo_type != "CONDITIONAL":  # "Only support CONDITIONAL"
        raise SimApiError(-1130, "Data sent for parameter 'algoType' is not valid.")
    side = params.get("side")
    if not side:
        raise missing("side")
    if side not in ("BUY", "SELL"):
        raise SimApiError(-1117, "Invalid side.")
    order_type = params.get("type")
    if not order_type:
        raise missing("type")
    if order_type not in CONDITIONAL_TYPES:
        raise SimApiError(-1116, "Invalid orderType.")
    position_side = check_position_side(account, params.get("positionSide"))
    close_position = _flag(params, "closePosition")
    if "reduceOnly" in params and (account.dual_side or close_position):
        # "Cannot be sent in Hedge Mode; cannot be sent with closePosition=true"
        raise SimApiError(-1106, REDUCE_ONLY_IN_HEDGE_MODE)
    reduce_only = _flag(params, "reduceOnly")
    if close_position:
        closes_own_side = (position_side, side) not in (("LONG", "BUY"), ("SHORT", "SELL"))
        if order_type not in _CLOSE_TYPES or not closes_own_side:
            raise SimApiError(-4136, f"Target strategy invalid for orderType {order_type},closePosition true")
        if params.get("quantity"):
            raise SimApiError(-4137, "Quantity must be zero with closePosition equals true.")
        qty = 0
    else:
        qty = parse_param(params, "quantity", f.qty_decimals, "LOT_SIZE")
        if qty <= 0 or qty % f.step_units or qty < f.min_qty_units or qty > f.max_qty_units:
            raise filter_failure("LOT_SIZE")

    trailing = order_type == "TRAILING_STOP_MARKET"
    trigger = activate = callback_bps = 0
    if trailing:
        callback_text = params.get("callbackRate")
        if not callback_text:
            raise missing("callbackRate")
        try:
            callback_bps = parse_units(callback_text, 2)
        except DecimalFormatError:
            callback_bps = -1
        if not CALLBACK_MIN_BPS <= callback_bps <= CALLBACK_MAX_BPS or callback_bps % 10:
            raise SimApiError(-1130, "Data sent for parameter 'callbackRate' is not valid.")
        if params.get("activatePrice") or params.get("activationPrice"):
            name = "activatePrice" if params.get("activatePrice") else "activationPrice"
            activate = parse_param(params, name, f.price_decimals, "PRICE_FILTER")
            if activate <= 0 or activate % f.tick_units:
                raise filter_failure("PRICE_FILTER")
    else:
        trigger = parse_param(params, "triggerPrice", f.price_decimals, "PRICE_FILTER")
        if trigger <= 0 or trigger % f.tick_units:
            raise filter_failure("PRICE_FILTER")

    price = 0
    tif = params.get("timeInForce") or "GTC"
    if tif not in ("GTC", "IOC", "FOK", "GTX", "GTE_GTC"):
        raise SimApiError(-1115, "Invalid timeInForce.")
    if order_type in _LIMIT_TYPES:
        price = parse_param(params, "price", f.price_decimals, "PRICE_FILTER")
        if price <= 0 or price % f.tick_units:
            raise filter_failure("PRICE_FILTER")
    elif tif != "GTE_GTC":
        tif = "GTC"  # a market trigger has no time in force of its own
    if params.get("priceMatch", "NONE") != "NONE":  # not simulated: refused rather than ignored
        raise SimApiError(-1130, "Data sent for parameter 'priceMatch' is not valid.")

    working_type = params.get("workingType") or "CONTRACT_PRICE"
    if working_type not in ("MARK_PRICE", "CONTRACT_PRICE"):
        raise SimApiError(-4031, f"Invalid parameter working type: {working_type}")
    price_protect = _flag(params, "priceProtect")
    stp = params.get("selfTradePreventionMode") or "EXPIRE_MAKER"
    if stp not in STP_MODES:
        raise SimApiError(-1130, "Data sent for parameter 'selfTradePreventionMode' is not valid.")
    resp_type = params.get("newOrderRespType") or "ACK"
    if resp_type not in ("ACK", "RESULT"):
        raise SimApiError(-1136, "Invalid newOrderRespType.")

    reduces = reduce_only or close_position or (position_side, side) in (("LONG", "SELL"), ("SHORT", "BUY"))
    if not reduces:
        ref = price or trigger or activate or mark
        min_notional = parse_units(f.min_notional, f.price_decimals + f.qty_decimals)
        if ref * qty < min_notional:
            raise SimApiError(
                -4164, f"Order's notional must be no smaller than {f.min_notional} (unless you choose reduce only)."
            )

    client_id = params.get("clientAlgoId") or ""
    if client_id:
        check_client_id("clientAlgoId", client_id)
    open_algos = [a for a in account.algo_orders.values() if a.status in ALGO_OPEN_STATUSES]
    if client_id and any(a.client_algo_id == client_id for a in open_algos):
        raise SimApiError(-4116, "ClientOrderId is duplicated.")
    if len(open_algos) >= MAX_OPEN_ALGO_ORDERS:
        raise SimApiError(-4045, "Reach max stop order limit.")

    algo = AlgoOrder(
        account_id=account_id,
        symbol=f.symbol,
        algo_id=algo_id,
        client_algo_id=client_id or f"sim-algo-{algo_id}",
        order_type=order_type,
        side=side,
        position_side=position_side,
        time_in_force=tif,
        quantity=qty,
        price=price,
        trigger_price=trigger,
        working_type=working_type,
        price_protect=price_protect,
        reduce_only=reduce_only,
        close_position=close_position,
        self_trade_prevention=stp,
        create_time=now_ms,
        update_time=now_ms,
        activate_price=activate,
        callback_bps=callback_bps,
    )
    watched = watched_price(algo, mark, last)
    if watched > 0:
        if trailing:
            if activate and (activate >= watched if algo.direction > 0 else activate <= watched):
                raise SimApiError(-2021, "Order would immediately trigger.")
        elif _reached(order_type, algo.direction, trigger, watched):
            raise SimApiError(-2021, "Order would immediately trigger.")
    return algo
