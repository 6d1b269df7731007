"""USD-M account settings and their refusals: leverage, margin type, position mode, Multi-Assets mode.

Each function checks one request the way Binance does and changes the account only when every
check passed (a refused request changes nothing). Codes and messages are Binance's error-code
page's; where the document names no code for a case the simulator answers a sim choice, listed in
docs/binance.md "USD-M account and Algo Service".

* ``POST /fapi/v1/leverage``: an integer 1..125 (-4028 "Leverage N is not valid"); refused when the
  position (at the mark) would exceed the new bracket's notional (-2027), when an ISOLATED
  position's leverage would be reduced (-4161) or when the account could no longer hold its margin
  (-2028). The answer names the new leverage and its bracket's ``maxNotionalValue``.
* ``POST /fapi/v1/marginType``: ISOLATED or CROSSED; -4046 when it already is, -4047 with open
  orders on the symbol, -4048 with a position, -4168 ISOLATED under Multi-Assets mode.
* ``POST /fapi/v1/positionSide/dual``: -4059 when the mode already is that, -4067 with open orders
  (regular or conditional, on any symbol), -4068 with any position.
* ``POST /fapi/v1/multiAssetsMargin``: -4171 when the mode already is that (sim choice), -4167 with
  an ISOLATED symbol.
"""

from __future__ import annotations

from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.ledger import Ledger
from epochbot.sim.matching.records import MAX_LEVERAGE, Account, SymbolFilters, max_notional
from epochbot.sim.matching.validate import missing

__all__ = ["change_leverage", "change_margin_type", "change_multi_assets", "change_position_mode", "flag_param"]

SUCCESS = {"code": 200, "msg": "success"}


def flag_param(params: dict[str, str], name: str) -> bool:
    """A mandatory "true"/"false" parameter (-1102 absent, -1130 anything else)."""
    text = params.get(name)
    if not text:
        raise missing(name)
    if text not in ("true", "false"):
        raise SimApiError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return text == "true"


def _has_position(account: Account, symbol: str | None = None) -> bool:
    return any(p.size and (symbol is None or key[0] == symbol) for key, p in account.positions.items())


def _has_open_orders(account: Account, symbol: str | None = None, *, algo: bool) -> bool:
    if any(o.is_open and (symbol is None or o.symbol == symbol) for o in account.orders.values()):
        return True
    return algo and any(a.is_open and (symbol is None or a.symbol == symbol) for a in account.algo_orders.values())


def change_leverage(ledger: Ledger, account: Account, f: SymbolFilters, params: dict[str, str]) -> dict:
    """POST /fapi/v1/leverage."""
    text = params.get("leverage")
    if not text:
        raise missing("leverage")
    if not text.isdigit() or not 1 <= int(text) <= MAX_LEVERAGE:
        raise SimApiError(-4028, f"Leverage {text} is not valid")
    leverage = int(text)
    settings = account.symbol_settings(f.symbol)
    before = settings.leverage
    for side in ledger.position_sides(account):
        pos = ledger.position(account, f.symbol, side)
        if not pos.size:
            continue
        if settings.margin_type == "ISOLATED" and leverage < before:
            raise SimApiError(-4161, "Leverage reduction is not supported in Isolated Margin Mode with open positions.")
        notional = abs(pos.size) * ledger.position_mark(f, pos) * ledger.shift_notional(f)
        if notional > max_notional(leverage) * 10**ledger.money_decimals:
            raise SimApiError(-2027, "Exceeded the maximum allowable position at current leverage.")
    settings.leverage = leverage
    if leverage < before and ledger.usdm_totals(account)["available"] < 0:
        settings.leverage = before
        raise SimApiError(-2028, "Leverage is smaller than permitted: insufficient margin balance.")
    return {"leverage": leverage, "maxNotionalValue": str(max_notional(leverage)), "symbol": f.symbol}


def change_margin_type(account: Account, f: SymbolFilters, params: dict[str, str]) -> dict:
    """POST /fapi/v1/marginType."""
    margin_type = params.get("marginType")
    if not margin_type:
        raise missing("marginType")
    if margin_type not in ("ISOLATED", "CROSSED"):
        raise SimApiError(-1130, "Data sent for parameter 'marginType' is not valid.")
    settings = account.symbol_settings(f.symbol)
    if settings.margin_type == margin_type:
        raise SimApiError(-4046, "No need to change margin type.")
    if margin_type == "ISOLATED" and account.multi_assets:
        raise SimApiError(-4168, "Unable to adjust to isolated-margin mode under the Multi-Assets mode.")
    if _has_open_orders(account, f.symbol, algo=False):
        raise SimApiError(-4047, "Margin type cannot be changed if there exists open orders.")
    if _has_position(account, f.symbol):
        raise SimApiError(-4048, "Margin type cannot be changed if there exists position.")
    settings.margin_type = margin_type
    return dict(SUCCESS)


def change_position_mode(account: Account, params: dict[str, str]) -> dict:
    """POST /fapi/v1/positionSide/dual: hedge mode on ("true") or off, on every symbol."""
    dual = flag_param(params, "dualSidePosition")
    if dual == account.dual_side:
        raise SimApiError(-4059, "No need to change position side.")
    if _has_open_orders(account, algo=True):
        raise SimApiError(-4067, "Position side cannot be changed if there exists open orders.")
    if _has_position(account):
        raise SimApiError(-4068, "Position side cannot be changed if there exists position.")
    account.dual_side = dual
    account.positions = {key: p for key, p in account.positions.items() if p.size}  # flat rows of the old mode
    return dict(SUCCESS)


def change_multi_assets(account: Account, params: dict[str, str]) -> dict:
    """POST /fapi/v1/multiAssetsMargin (the simulator's wallet is USDT only: nothing else changes)."""
    on = flag_param(params, "multiAssetsMargin")
    if on == account.multi_assets:
        raise SimApiError(-4171, "Adjusted Multi-Assets mode is same as current one.")
    if on and any(s.margin_type == "ISOLATED" for s in account.settings.values()):
        raise SimApiError(
            -4167, "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures under isolated-margin mode."
        )
    account.multi_assets = on
    return dict(SUCCESS)
