"""The account ledger: paper accounts, their balances, locks, margin and positions, exact to the unit.

Money is an integer at one venue-wide scale, ``money_decimals = max(price_decimals +
qty_decimals) + 4`` (never below Binance's 8): the ``+4`` holds basis-point fees exactly, so
nothing is ever rounded and ``wallet change == realized PnL - fees`` holds to the last unit.

Spot: a resting BUY locks ``remaining x price x (1 + max fee)`` of the quote asset, a SELL locks
the base quantity; locks are derived from open orders, never stored, so they cannot drift.
USD-M: positions per (symbol, positionSide): BOTH in one-way mode, LONG and SHORT in hedge mode
(``Account.dual_side``). Position cost is kept exactly; a partial close releases cost pro rata
(floor), so a full close realises exactly ``sum(sell notional) - sum(buy notional)``. The part of
an order that adds exposure needs ``notional / leverage`` (the account's leverage on the symbol,
`LEVERAGE` until changed) of available balance. Maintenance margin is ``MAINT_MARGIN_BPS`` of the
position's notional at the mark; the liquidation price is where the margin balance meets it
(`liquidation_price`, a sim choice documented in docs/binance.md). An ISOLATED position's wallet
is its entry notional over the leverage; cross and isolated positions draw on the same available
balance (sim choice).

The ledger also keeps each account's orders (open, and closed ones up to a cap) and executions;
it decides nothing about matching and renders nothing.
"""

from __future__ import annotations

from epochbot.model.numeric import parse_units
from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.records import (
    LEVERAGE,
    MAINT_MARGIN_BPS,
    MAX_CLOSED_ORDERS_PER_ACCOUNT,
    Account,
    Market,
    Order,
    Position,
    PositionKey,
    SymbolFilters,
    Trade,
    max_notional,
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
        hedge_mode: bool = False,
    ) -> None:
        self.market: Market = market
        self.hedge_mode = hedge_mode
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
        """The account, opened with the starting balances on first use (in hedge mode when the
        venue starts every account so)."""
        account = self._accounts.get(account_id)
        if account is None:
            account = Account(balances=dict(self._starting), dual_side=self.hedge_mode)
            self._accounts[account_id] = account
        return account

    def accounts(self) -> list[tuple[str, Account]]:
        """(account id, account) of every account opened so far, oldest first."""
        return list(self._accounts.items())

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
    def position(account: Account, symbol: str, side: str = "BOTH") -> Position:
        """The account's ``side`` position in ``symbol`` (a fresh flat one when it has none; not stored)."""
        return account.positions.get((symbol, side), Position())

    @staticmethod
    def position_sides(account: Account) -> tuple[str, ...]:
        """The position sides the account's mode keeps: BOTH, or LONG and SHORT in hedge mode."""
        return ("LONG", "SHORT") if account.dual_side else ("BOTH",)

    @staticmethod
    def leverage(account: Account, symbol: str) -> int:
        settings = account.settings.get(symbol)
        return settings.leverage if settings is not None else LEVERAGE

    @staticmethod
    def isolated(account: Account, symbol: str) -> bool:
        settings = account.settings.get(symbol)
        return settings is not None and settings.margin_type == "ISOLATED"

    @staticmethod
    def adds_exposure(order: Order) -> bool:
        """Whether the order can open or grow a position (reduce-only and hedge-mode closing orders
        cannot: a SELL on LONG, a BUY on SHORT)."""
        if order.reduce_only or order.close_position:
            return False
        if order.position_side == "LONG":
            return order.side == "BUY"
        if order.position_side == "SHORT":
            return order.side == "SELL"
        return True

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

    def margin(self, f: SymbolFilters, notional: int, leverage: int = 0) -> int:
        """Initial margin of a notional at ``leverage`` (default: the new-account leverage), notional
        units -> money units, exact (floor)."""
        return notional * self.shift_notional(f) // (leverage or LEVERAGE)

    def maint_margin(self, f: SymbolFilters, notional: int) -> int:
        """Maintenance margin of a notional (notional units -> money units, exact)."""
        return notional * MAINT_MARGIN_BPS * self.shift_fee(f)

    def position_mark(self, f: SymbolFilters, pos: Position) -> int:
        """The mark a position is valued at: the last mark seen, else its entry price."""
        return self._marks.get(f.symbol) or (pos.cost // abs(pos.size) if pos.size else 0)

    def isolated_wallet(self, account: Account, f: SymbolFilters, pos: Position) -> int:
        """An ISOLATED position's wallet: its entry notional over the leverage (money units; 0 when
        the symbol is CROSSED)."""
        if not self.isolated(account, f.symbol):
            return 0
        return self.margin(f, pos.cost, self.leverage(account, f.symbol))

    def liquidation_price(self, account: Account, key: PositionKey) -> tuple[int, int] | None:
        """The mark at which the position's margin balance meets its maintenance margin, as an
        exact ratio (numerator, denominator) in price units; None when it cannot be liquidated
        (flat, or the price would be at or below zero).

        Cross: the margin balance is the wallet plus every other position's unrealized PnL less
        its maintenance margin (at their marks); isolated: the position's isolated wallet. With
        ``q`` the signed size, ``C`` its cost, ``W`` that balance, ``u`` notional->money and
        ``m`` the maintenance rate in basis points: ``W + (q p - sign(q) C) u = |q| p m u / 10^4``.
        """
        symbol, _ = key
        pos = account.positions.get(key)
        if pos is None or pos.size == 0:
            return None
        f = self.symbols[symbol]
        unit = self.shift_notional(f)
        if self.isolated(account, symbol):
            balance = self.isolated_wallet(account, f, pos)
        else:
            balance = sum(account.balances.values())
            for other_key, other in account.positions.items():
                if other_key == key or other.size == 0 or self.isolated(account, other_key[0]):
                    continue
                of = self.symbols[other_key[0]]
                mark = self.position_mark(of, other)
                balance += self.unrealized(of, other, mark) - self.maint_margin(of, abs(other.size) * mark)
        q = pos.size
        numerator = 10_000 * (sign(q) * pos.cost * unit - balance)
        denominator = unit * (10_000 * q - abs(q) * MAINT_MARGIN_BPS)
        if numerator == 0 or (numerator > 0) != (denominator > 0):
            return None
        return abs(numerator), abs(denominator)

    def unrealized(self, f: SymbolFilters, pos: Position, mark: int) -> int:
        if pos.size == 0:
            return 0
        return (pos.size * mark - sign(pos.size) * pos.cost) * self.shift_notional(f)

    def open_order_margin(self, account: Account, symbol: str, side: str | None = None) -> int:
        """Initial margin held by the account's open, exposure-adding orders of one symbol (of one
        position side when ``side`` is given)."""
        f = self.symbols[symbol]
        leverage = self.leverage(account, symbol)
        return sum(
            self.margin(f, o.remaining * o.price, leverage)
            for o in account.orders.values()
            if o.symbol == symbol and o.is_open and self.adds_exposure(o) and (side is None or o.position_side == side)
        )

    def position_margin(self, account: Account, key: PositionKey) -> tuple[int, int, int]:
        """(unrealized PnL, initial margin, maintenance margin) of one position at its mark."""
        pos = account.positions.get(key)
        if pos is None or pos.size == 0:
            return 0, 0, 0
        f = self.symbols[key[0]]
        mark = self.position_mark(f, pos)
        notional = abs(pos.size) * mark
        return (
            self.unrealized(f, pos, mark),
            self.margin(f, notional, self.leverage(account, key[0])),
            self.maint_margin(f, notional),
        )

    def usdm_totals(self, account: Account) -> dict[str, int]:
        """Wallet, unrealized PnL, position and order initial margin, maintenance margin, and
        available balance."""
        unrealized = position_im = maint = order_im = 0
        for key in account.positions:
            upnl, im, mm = self.position_margin(account, key)
            unrealized += upnl
            position_im += im
            maint += mm
        for symbol in {o.symbol for o in account.orders.values() if o.is_open}:
            order_im += self.open_order_margin(account, symbol)
        wallet = sum(account.balances.values())
        return {
            "wallet": wallet,
            "unrealized": unrealized,
            "position_im": position_im,
            "order_im": order_im,
            "maint": maint,
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
        if not self.adds_exposure(order):
            return
        pos = self.position(account, f.symbol, order.position_side)
        adds = order.orig_qty
        if pos.size and sign(pos.size) != order.direction:
            adds = max(0, order.orig_qty - abs(pos.size))
        if adds == 0:
            return
        ref_price = order.price or self._marks.get(f.symbol, 0)
        leverage = self.leverage(account, f.symbol)
        need = self.margin(f, ref_price * adds, leverage)
        if need > self.usdm_totals(account)["available"]:
            raise SimApiError(-2019, "Margin is insufficient.")
        exposure = abs(pos.size + order.direction * order.orig_qty) * ref_price * self.shift_notional(f)
        if exposure > max_notional(leverage) * 10**self.money_decimals:
            raise SimApiError(-2027, "Exceeded the maximum allowable position at current leverage.")

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
            pos = account.positions.setdefault((f.symbol, order.position_side), Position())
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
