"""The account ledger: paper accounts, their balances, locks, margin and positions, exact to the unit.

Money is an integer at one venue-wide scale, ``money_decimals = max(price_decimals +
qty_decimals) + 4`` (never below Binance's 8): the ``+4`` holds basis-point fees exactly, so
nothing is ever rounded and ``wallet change == realized PnL - fees`` holds to the last unit.

Spot: a resting BUY locks ``remaining x price x (1 + max fee)`` of the quote asset, a SELL locks
the base quantity; locks are derived from open orders, never stored, so they cannot drift.
USD-M: one-way mode, cross margin, leverage `LEVERAGE`. Position cost is kept exactly; a partial
close releases cost pro rata (floor), so a full close realises exactly ``sum(sell notional) -
sum(buy notional)``. The part of an order that adds exposure needs ``notional / LEVERAGE`` of
available balance.

The ledger also keeps each account's orders (open, and closed ones up to a cap) and executions;
it decides nothing about matching and renders nothing.
"""

from __future__ import annotations

from epochbot.model.numeric import parse_units
from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.records import (
    LEVERAGE,
    MAX_CLOSED_ORDERS_PER_ACCOUNT,
    Account,
    Market,
    Order,
    Position,
    SymbolFilters,
    Trade,
    sign,
)

__all__ = ["BINANCE_MIN_DECIMALS", "Ledger"]

BINANCE_MIN_DECIMALS = 8


class Ledger:
    """Paper accounts of one market (created on first use with the starting balances)."""

    def __init__(
        self,
        market: Market,
        symbols: dict[str, SymbolFilters],
        *,
        maker_fee_bps: int,
        taker_fee_bps: int,
        starting_balances: dict[str, str],
    ) -> None:
        self.market: Market = market
        self.symbols = symbols
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        widest = max((f.price_decimals + f.qty_decimals for f in symbols.values()), default=0)
        self.money_decimals = max(widest + 4, BINANCE_MIN_DECIMALS)
        self._starting = {asset: parse_units(text, self.money_decimals) for asset, text in starting_balances.items()}
        self._accounts: dict[str, Account] = {}
        self._marks: dict[str, int] = {}

    # ------------------------------------------------------------------ accounts and orders

    def account(self, account_id: str) -> Account:
        """The account, opened with the starting balances on first use."""
        account = self._accounts.get(account_id)
        if account is None:
            account = Account(balances=dict(self._starting))
            self._accounts[account_id] = account
        return account

    def resting(self, symbol: str) -> list[tuple[str, Order]]:
        """(account id, order) of every open non-MARKET order of ``symbol``, account by account."""
        return [
            (account_id, order)
            for account_id, account in self._accounts.items()
            for order in account.orders.values()
            if order.symbol == symbol and order.is_open and order.type != "MARKET"
        ]

    def record(self, account: Account, order: Order) -> None:
        """Keep a newly accepted order."""
        account.orders[(order.symbol, order.order_id)] = order
        account.history.append((order.symbol, order.order_id, order.client_order_id))

    def close(self, account: Account, order: Order) -> None:
        """Remember a closed order for queries, forgetting the oldest beyond the cap."""
        account.closed.append((order.symbol, order.order_id))
        if len(account.closed) > MAX_CLOSED_ORDERS_PER_ACCOUNT:
            account.orders.pop(account.closed.pop(0), None)

    def lookup(self, account: Account, symbol: str, params: dict[str, str]) -> Order | None:
        """The order named by ``orderId`` and/or ``origClientOrderId`` (Binance's rules), or None."""
        order_id_text = params.get("orderId")
        client_id = params.get("origClientOrderId")
        if not order_id_text and not client_id:
            raise SimApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id_text:
            if not order_id_text.isdigit():
                raise SimApiError(
                    -1100, "Illegal characters found in parameter 'orderId'; legal range is '^[0-9]{1,20}$'."
                )
            order = account.orders.get((symbol, int(order_id_text)))
            if order is not None and client_id and order.client_order_id != client_id:
                return None
            return order
        # A client id may be reused once its order closed: prefer the open one, else the newest.
        found = None
        for order in account.orders.values():
            if order.symbol == symbol and order.client_order_id == client_id:
                if found is None or not found.is_open:
                    found = order
        return found

    @staticmethod
    def position(account: Account, symbol: str) -> Position:
        """The account's position in ``symbol`` (a fresh flat one when it has none; not stored)."""
        return account.positions.get(symbol, Position())

    # ------------------------------------------------------------------ marks

    def set_mark(self, symbol: str, price: int) -> None:
        self._marks[symbol] = price

    def mark(self, symbol: str, default: int = 0) -> int:
        """The last mark price seen for ``symbol`` (price units)."""
        return self._marks.get(symbol, default)

    # ------------------------------------------------------------------ scales

    def shift_notional(self, f: SymbolFilters) -> int:
        """Notional units -> money units."""
        return 10 ** (self.money_decimals - f.price_decimals - f.qty_decimals)

    def shift_fee(self, f: SymbolFilters) -> int:
        """Notional units x basis points -> money units."""
        return 10 ** (self.money_decimals - f.price_decimals - f.qty_decimals - 4)

    def shift_qty(self, f: SymbolFilters) -> int:
        """Quantity units -> money units (spot base-asset balances)."""
        return 10 ** (self.money_decimals - f.qty_decimals)

    # ------------------------------------------------------------------ funds

    def fee(self, f: SymbolFilters, notional: int, *, maker: bool) -> int:
        """The commission on a fill of ``notional`` (notional units), in money units."""
        return notional * (self.maker_fee_bps if maker else self.taker_fee_bps) * self.shift_fee(f)

    def buy_lock(self, f: SymbolFilters, price: int, qty: int) -> int:
        worst_bps = max(self.maker_fee_bps, self.taker_fee_bps)
        return price * qty * (10_000 + worst_bps) * self.shift_fee(f)

    def locked(self, account: Account) -> dict[str, int]:
        """Spot locks derived from open orders (never stored, so they cannot drift)."""
        locked: dict[str, int] = {}
        for order in account.orders.values():
            if not order.is_open:
                continue
            f = self.symbols[order.symbol]
            if order.side == "BUY":
                locked[f.quote_asset] = locked.get(f.quote_asset, 0) + self.buy_lock(f, order.price, order.remaining)
            else:
                locked[f.base_asset] = locked.get(f.base_asset, 0) + order.remaining * self.shift_qty(f)
        return locked

    def free(self, account: Account) -> dict[str, int]:
        locked = self.locked(account)
        return {a: total - locked.get(a, 0) for a, total in account.balances.items()}

    def margin(self, f: SymbolFilters, notional: int) -> int:
        """Initial margin at LEVERAGE for a notional (notional units -> money units, exact)."""
        return notional * self.shift_notional(f) // LEVERAGE

    def unrealized(self, f: SymbolFilters, pos: Position, mark: int) -> int:
        if pos.size == 0:
            return 0
        return (pos.size * mark - sign(pos.size) * pos.cost) * self.shift_notional(f)

    def open_order_margin(self, account: Account, symbol: str) -> int:
        """Initial margin held by the account's open, exposure-adding orders of one symbol."""
        f = self.symbols[symbol]
        return sum(
            self.margin(f, o.remaining * o.price)
            for o in account.orders.values()
            if o.symbol == symbol and o.is_open and not o.reduce_only
        )

    def usdm_totals(self, account: Account) -> dict[str, int]:
        """Wallet, unrealized PnL, position and order initial margin, and available balance."""
        unrealized = position_im = order_im = 0
        for name, pos in account.positions.items():
            f = self.symbols[name]
            mark = self._marks.get(name) or (pos.cost // abs(pos.size) if pos.size else 0)
            unrealized += self.unrealized(f, pos, mark)
            position_im += self.margin(f, abs(pos.size) * mark)
        for order in account.orders.values():
            if order.is_open and not order.reduce_only:
                order_im += self.margin(self.symbols[order.symbol], order.remaining * order.price)
        wallet = sum(account.balances.values())
        return {
            "wallet": wallet,
            "unrealized": unrealized,
            "position_im": position_im,
            "order_im": order_im,
            "available": wallet + unrealized - position_im - order_im,
        }

    def check_funds(self, account: Account, f: SymbolFilters, order: Order, takes: list[tuple[int, int]]) -> None:
        """Reject before recording if the account cannot pay for the order."""
        if self.market == "spot":
            free = self.free(account)
            if order.side == "BUY":
                if order.type == "MARKET":
                    need = sum(p * q for p, q in takes) * self.shift_notional(f)
                    need += sum(p * q for p, q in takes) * self.taker_fee_bps * self.shift_fee(f)
                else:
                    need = self.buy_lock(f, order.price, order.orig_qty)
                if need > free.get(f.quote_asset, 0):
                    raise SimApiError(-2010, "Account has insufficient balance for requested action.")
            elif order.orig_qty * self.shift_qty(f) > free.get(f.base_asset, 0):
                raise SimApiError(-2010, "Account has insufficient balance for requested action.")
            return
        # USD-M: the part that adds exposure needs initial margin.
        pos = self.position(account, f.symbol)
        adds = order.orig_qty
        if pos.size and sign(pos.size) != order.direction:
            adds = max(0, order.orig_qty - abs(pos.size))
        if adds == 0 or order.reduce_only:
            return
        ref_price = order.price or self._marks.get(f.symbol, 0)
        need = self.margin(f, ref_price * adds)
        if need > self.usdm_totals(account)["available"]:
            raise SimApiError(-2019, "Margin is insufficient.")

    # ------------------------------------------------------------------ fills

    def settle(
        self, account: Account, f: SymbolFilters, order: Order, price: int, qty: int, *, maker: bool, now_ms: int
    ) -> tuple[int, int]:
        """Book one fill into the balances and the position; returns (fee, realized PnL) in money units."""
        notional = price * qty
        fee = self.fee(f, notional, maker=maker)
        realized = 0
        if self.market == "spot":
            quote = notional * self.shift_notional(f)
            base = qty * self.shift_qty(f)
            bal = account.balances
            if order.side == "BUY":
                bal[f.quote_asset] = bal.get(f.quote_asset, 0) - quote - fee
                bal[f.base_asset] = bal.get(f.base_asset, 0) + base
            else:
                bal[f.base_asset] = bal.get(f.base_asset, 0) - base
                bal[f.quote_asset] = bal.get(f.quote_asset, 0) + quote - fee
        else:
            pos = account.positions.setdefault(f.symbol, Position())
            realized = apply_to_position(pos, order.direction, price, qty) * self.shift_notional(f)
            pos.update_time = now_ms
            account.balances[f.quote_asset] = account.balances.get(f.quote_asset, 0) + realized - fee
        account.update_time = now_ms
        return fee, realized

    @staticmethod
    def add_trade(account: Account, trade: Trade) -> None:
        account.trades.append(trade)


def apply_to_position(pos: Position, direction: int, price: int, qty: int) -> int:
    """One-way position update; returns realized PnL in notional units (exact)."""
    if pos.size == 0 or sign(pos.size) == direction:
        pos.size += direction * qty
        pos.cost += price * qty
        return 0
    held = abs(pos.size)
    closing = min(qty, held)
    released = pos.cost if closing == held else pos.cost * closing // held
    realized = sign(pos.size) * (price * closing - released)
    pos.cost -= released
    pos.size += direction * closing
    rest = qty - closing
    if rest:  # flip: the remainder opens a fresh position at this price
        pos.size = direction * rest
        pos.cost = price * rest
    return realized
