"""Reconciliation with the venue at start: fills imported, positions compared, unknown orders adopted.

The trader restored from storage (`epochbot.runtime.trading_session.StartedTrading`) is compared
with what the venue says, before the first order:

* fills the venue made that never reached storage (the process died between the execution and
  the write) are imported from its trade history, booked and persisted;
* positions (USD-M ``positionAmt``) are compared; a fill racing the check shows up as a
  difference once, so the fills are imported again before a difference is reported;
* the previous run's open orders are adopted as UNKNOWN (queried before anything with the same
  intent is sent), with what storage and the venue's trade history say they filled; orders at
  the venue that the journal does not know are cancelled, adopted or left alone per
  `epochbot.trading.adoption` (each logged).

The same fill import runs again at the clean stop (`epochbot.runtime.shutdown`), for executions
the stream did not deliver.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, cast

from epochbot.engine.engine import Engine
from epochbot.model import trade_events as tev
from epochbot.runtime.config import RuntimeConfig
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.order_gateway import OrderGateway
from epochbot.runtime.publish import RuntimeLog
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.trading_session import Reconciled, StartedTrading
from epochbot.venues.binance.rest import RestError

if TYPE_CHECKING:
    from epochbot.trading.adoption import Adoption
    from epochbot.trading.filters import SymbolFilters
    from epochbot.trading.trader import Trader

__all__ = ["Reconciler"]

OUR_CLIENT_ID = re.compile(r"^eb[0-9a-f]+-[0-9a-f]+$")
Side = Literal["BUY", "SELL"]


class Reconciler:
    def __init__(
        self,
        config: RuntimeConfig,
        *,
        engine: Engine,
        durable: DurableSink,
        tasks: TaskSupervisor,
        clock: Callable[[], int],
        log: RuntimeLog,
    ) -> None:
        self.config = config
        self.engine = engine
        self.durable = durable
        self.tasks = tasks
        self.clock = clock
        self.log = log

    async def reconcile(self, started: StartedTrading) -> Reconciled:
        trader, gateway, filters = started.trader, started.gateway, started.filters
        stored_fills = started.stored_fills
        persisted = self.durable.storage is not None
        imported: list[tev.Fill] = []
        for attempt in range(2):
            if persisted:
                imported += await self.import_venue_fills(gateway, trader, filters, [*stored_fills, *imported])
                self.durable.persist()
            # A fill racing the check shows up as a difference once: import again, then judge.
            if await self.check_positions(gateway, trader, filters, final=attempt == 1 or not persisted):
                break
        # Orders of the killed run: adopted as UNKNOWN (queried before anything with the same
        # intent is sent), with what storage + the venue's trade history say they filled.
        filled: dict[str, int] = {}
        for fill in (*stored_fills, *imported):
            filled[fill.client_order_id] = filled.get(fill.client_order_id, 0) + fill.qty
        open_orders = [
            replace(row, filled_qty=max(row.filled_qty, min(row.qty, filled.get(row.client_order_id, 0))))
            for row in started.open_orders
        ]
        commands = trader.orders.adopt_open_orders(open_orders, started.now)
        adopted, more = await self.adopt_unknown_orders(gateway, trader, started.now)
        commands += more
        for fill in (*stored_fills, *imported):
            order = trader.orders.orders.get(fill.client_order_id)
            if order is not None and fill.trade_id and fill.trade_id not in order.fill_ids:
                order.fill_ids.add(fill.trade_id)
                order.booked_qty += fill.qty
        return Reconciled(commands=commands, imported=imported, open_orders=open_orders, adopted=adopted)

    async def adopt_unknown_orders(
        self, gateway: OrderGateway, trader: Trader, now: int
    ) -> tuple[list[Adoption], list]:
        """Every order at the venue the journal does not know is cancelled, adopted or recorded
        per `epochbot.trading.adoption` (and logged, each). Returns (the adoptions, commands)."""
        from epochbot.trading.adoption import plan

        cfg = self.config.trading
        assert cfg is not None
        counters = self.engine.counters
        storage = self.durable.storage
        known = storage.known_client_ids() if storage is not None else set()
        known |= set(trader.orders.orders)
        commands: list = []
        adopted: list[Adoption] = []
        for symbol in self.config.symbols:
            try:
                rows = await gateway.venue_orders(symbol)
                decisions = plan(rows, known, unknown=cfg.unknown_orders, foreign=cfg.foreign_orders)
            except (RestError, ValueError, KeyError, TypeError) as exc:
                counters["venue_orders_check_failed"] = counters.get("venue_orders_check_failed", 0) + 1
                self.log(
                    "error",
                    "venue order check failed: orders unknown to the journal may exist",
                    symbol=symbol,
                    error=str(exc),
                )
                continue
            for a in decisions:
                fields = dict(
                    symbol=a.symbol,
                    client_order_id=a.client_order_id,
                    order_id=a.venue_order_id,
                    status=a.status,
                    side=a.side,
                    qty=a.qty,
                    price=a.price,
                    executed=a.executed,
                    action=a.action,
                )
                if a.action == "cancel-foreign":
                    self.log("warn", "foreign open order cancelled (foreign_orders=cancel)", **fields)
                    self.tasks.spawn(gateway.cancel_all([(a.symbol, a.client_order_id)]), "cancel-foreign")
                    continue
                if a.action == "ignore":
                    self.log(
                        "warn", "open order of ours unknown to the journal left alone (unknown_orders=ignore)", **fields
                    )
                    continue
                try:
                    commands += trader.orders.adopt_venue_order(a, now)
                except (ValueError, KeyError, TypeError) as exc:
                    self.log(
                        "error", "venue order unknown to the journal could not be adopted", error=str(exc), **fields
                    )
                    continue
                adopted.append(a)  # journaled with the trading setup (epochbot.runtime.journal_inputs)
                counters["venue_orders_adopted"] = counters.get("venue_orders_adopted", 0) + 1
                self.log("warn", f"venue order unknown to the journal: {a.action}", **fields)
        trader.records.extend(trader.orders.drain_journal())
        self.durable.persist()
        return adopted, commands

    async def import_venue_fills(
        self, gateway: OrderGateway, trader: Trader, filters: dict[str, SymbolFilters], stored_fills: list
    ) -> list[tev.Fill]:
        """Fills the venue made that never reached storage (the process died between the
        execution and the write): fetched from the venue's trade history since the newest stored
        fill of each symbol, mapped to our client order ids, booked and persisted. Returns them."""
        storage = self.durable.storage
        assert storage is not None, "fills are imported into storage"
        counters = self.engine.counters
        known = {(f.symbol, f.trade_id) for f in stored_fills if f.trade_id}
        newest: dict[str, int] = {}
        for fill in stored_fills:
            newest[fill.symbol] = max(newest.get(fill.symbol, 0), fill.ts_ns)
        by_venue_id = storage.load_venue_order_ids()
        looked_up: dict[tuple[str, str], str | None] = {}
        imported: list[tev.Fill] = []
        for symbol in self.config.symbols:
            quote = gateway.quote_assets.get(symbol, "")
            since_ns = newest.get(symbol)
            if since_ns is None:
                since_ns = storage.first_order_ns(symbol)
                if since_ns is None:
                    continue  # no earlier run ever traded it: nothing of ours to import
                since_ns -= 60_000_000_000  # the journal's clock is ours, the venue's may lead
            try:
                trades = await gateway.user_trades(symbol, start_ms=since_ns // 1_000_000)
            except (RestError, ValueError, KeyError, TypeError) as exc:
                counters["fill_import_failed"] = counters.get("fill_import_failed", 0) + 1
                self.log(
                    "error",
                    "trade history unavailable: fills made while we were down may be missing",
                    symbol=symbol,
                    error=str(exc),
                )
                continue
            codec = filters[symbol].codec
            foreign = 0
            for t in trades:
                trade_id = str(t["id"])
                if (symbol, trade_id) in known:
                    continue
                venue_id = str(t["orderId"])
                coid = by_venue_id.get((symbol, venue_id))
                if coid is None:
                    if (symbol, venue_id) not in looked_up:
                        try:
                            body = await gateway.order_by_id(symbol, venue_id)
                        except (RestError, ValueError) as exc:  # unavailable or unreadable
                            self.log(
                                "warn",
                                "order lookup for an imported trade failed",
                                symbol=symbol,
                                order_id=venue_id,
                                error=str(exc),
                            )
                            body = None
                        looked_up[(symbol, venue_id)] = None if body is None else str(body.get("clientOrderId", ""))
                    coid = looked_up[(symbol, venue_id)]
                if not coid or not OUR_CLIENT_ID.match(coid):
                    foreign += 1
                    continue
                side = cast(Side, t.get("side") or ("BUY" if t.get("buyer", t.get("isBuyer")) else "SELL"))
                asset = str(t.get("commissionAsset") or "")
                fill = tev.Fill(
                    ts_ns=int(t["time"]) * 1_000_000,
                    recv_ts=self.clock(),
                    client_order_id=coid,
                    symbol=symbol,
                    side=side,
                    qty=codec.qty[str(t["qty"])],
                    price=codec.price[str(t["price"])],
                    fee=Decimal(str(t.get("commission", "0"))),
                    fee_asset="" if asset == quote else asset,
                    is_maker=bool(t.get("maker", t.get("isMaker", False))),
                    trade_id=trade_id,
                )
                if trader.import_fill(fill):
                    known.add((symbol, trade_id))
                    imported.append(fill)
            if foreign:
                self.log("warn", "trades of orders that are not ours were not imported", symbol=symbol, trades=foreign)
        counters["fills_imported"] = counters.get("fills_imported", 0) + len(imported)
        if imported:
            self.log(
                "warn",
                "imported fills the venue made while we were down",
                fills=len(imported),
                trade_ids=[f.trade_id for f in imported][:50],
            )
        return imported

    async def check_positions(
        self, gateway: OrderGateway, trader: Trader, filters: dict[str, SymbolFilters], *, final: bool = True
    ) -> bool:
        """Compare the rebuilt positions with the venue's account (USD-M positionAmt). True when
        they agree (or cannot be compared). A difference is logged as an error and counted in
        ``position_mismatch`` when ``final``; otherwise only reported by returning False."""
        counters = self.engine.counters
        counters.setdefault("position_mismatch", 0)
        if self.config.venue.market != "usdm":
            self.log("info", "position check skipped: spot balances include assets not traded by us")
            return True
        try:
            amounts = await gateway.position_amounts()
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self.log("warn", "position check impossible: positionRisk unavailable", error=str(exc))
            return True
        differ = []
        for symbol in self.config.symbols:
            text = amounts.get(symbol, "0")
            codec = filters[symbol].codec
            negative = text.startswith("-")
            try:
                venue_qty = codec.qty[text.lstrip("-+")]
            except (ValueError, KeyError, TypeError):
                self.log("warn", "position check: unreadable positionAmt", symbol=symbol, position_amt=text)
                continue
            venue_qty = -venue_qty if negative else venue_qty
            differ.append((symbol, trader.portfolio.qty(symbol), venue_qty, text))
        if not final and any(ours != venue for _, ours, venue, _ in differ):
            return False
        for symbol, ours, venue_qty, text in differ:
            if venue_qty != ours:
                counters["position_mismatch"] += 1
                self.log(
                    "error",
                    "position differs from the venue's after restore",
                    symbol=symbol,
                    ours=filters[symbol].qty_str(ours),
                    venue=text,
                )
            else:
                self.log("info", "position agrees with the venue", symbol=symbol, position=text)
        return True
