"""Trading at start: build the trader, restore durable state, start the order gateway and its
user-data stream, then reconcile with the venue: import fills made while we were down, compare
positions, and adopt, cancel or record open orders the journal does not know.

A mixin of `epochbot.runtime.runtime.Runtime` (the state it reads and writes is the runtime's; see its
theory of operation).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from epochbot.venues.binance.rest import RestError

__all__ = ["TradingStartup"]


class TradingStartup:
    """Part of `epochbot.runtime.runtime.Runtime` (a mixin: no state of its own)."""

    async def _start_trading(self, venue_filters: dict) -> list:
        """Build the trader (strategy, gates, orders, portfolio), restore durable state, and
        start the order gateway and its user-data stream. Returns reconciliation commands."""
        from epochbot.runtime.order_gateway import OrderGateway
        from epochbot.trading.filters import SymbolFilters
        from epochbot.trading.risk import RiskLimits, RiskState
        from epochbot.trading.strategy import get_strategy
        from epochbot.trading.trader import Trader

        cfg = self.config.trading
        missing = [s for s in self.config.symbols if s not in venue_filters]
        if missing:
            raise RuntimeError(f"cannot trade without exchangeInfo filters for {', '.join(missing)}")
        filters = {
            s: SymbolFilters.from_strings(
                s, f.tick_size, f.step_size, f.min_qty, f.max_qty, f.min_notional, self.config.venue.market
            )
            for s, f in venue_filters.items()
        }
        now = self.clock()
        limits = cfg.limits or RiskLimits()
        session = now // 1_000_000_000  # unique per start when nothing is persisted
        risk_state, open_orders = None, []
        restored_risk = None  # the restored state as it was before fills touched it (journal)
        if cfg.storage_path:
            from epochbot.persistence.storage import SqliteStorage
            from epochbot.persistence.writer import StorageWriter

            if cfg.storage_per_run:
                _remove_database(cfg.storage_path)
            self.storage = SqliteStorage(cfg.storage_path)
            session = self.storage.next_session()
            risk_state, warnings = RiskState.restore(self.storage.load_latest_risk(), now, limits)
            restored_risk = risk_state.to_dict()
            for warning in warnings:
                self._runtime_log("warn", "risk state restore", detail=warning)
            open_orders = self.storage.load_open_orders()
            self.writer = StorageWriter(self.storage)
        trader = Trader(
            get_strategy(cfg.strategy, cfg.params),
            filters,
            session=session,
            limits=limits,
            risk_state=risk_state,
            mode=self.engine.mode,
        )
        self._runtime_log("info", "strategy loaded", strategy=cfg.strategy, module=type(trader.strategy).__module__)
        trader.keep_fills = 1000
        self.engine.trader = trader
        trader.orders.unknown_window_ns = max(0, int(cfg.unknown_window_ms)) * 1_000_000
        trader.symbol_status = {s: f.status for s, f in venue_filters.items() if f.status != "TRADING"}
        stored_fills = self.storage.load_fills() if self.storage is not None else []
        restored = trader.restore_fills(stored_fills)
        api_key, api_secret = cfg.api_key, cfg.api_secret
        if not api_key and self.sim is not None:
            from epochbot.sim.auth import DEFAULT_API_KEY, DEFAULT_SECRET

            api_key, api_secret = DEFAULT_API_KEY, DEFAULT_SECRET
        if not api_key or not api_secret:
            raise RuntimeError(
                "trading needs an API key and secret (EPOCHBOT_API_KEY / EPOCHBOT_API_SECRET or a secrets file)"
            )
        self.gateway = OrderGateway(
            self.rest,
            ws_base=self.config.venue.ws_url,
            api_key=api_key,
            api_secret=api_secret,
            inbox=self.inbox,
            codecs={s: f.codec for s, f in filters.items()},
            quote_assets={s: f.quote_asset for s, f in venue_filters.items() if f.quote_asset},
            clock=self.clock,
            log=self._runtime_log,
            recv_window_ms=cfg.recv_window_ms,
            offset_ms=lambda: self.engine.telemetry.clock_offset_ns / 1e6,
            durable=self._durable if self.writer is not None else None,
            symbol_status={s: f.status for s, f in venue_filters.items()},
            ws_orders=cfg.ws_orders,
        )
        restored_session_pnl = str(trader.risk.state.session_pnl)
        restored_breakers = dict(sorted(trader.risk.state.breakers.items()))
        # The user-data stream first: an execution after the trade-history fetch below then
        # still arrives (queued until the loop runs; its trade id makes a second copy harmless).
        self._spawn(self.gateway.run_user_stream(), "user-stream")
        deadline = time.monotonic() + 3.0
        while not self.gateway.user_stream_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self.gateway.user_stream_connected:
            self._runtime_log("warn", "user data stream not connected yet: reconciling anyway")
        imported: list = []
        for attempt in range(2):
            if self.storage is not None:
                imported += await self._import_venue_fills(trader, filters, [*stored_fills, *imported])
                self._persist()
            # A fill racing the check shows up as a difference once: import again, then judge.
            if await self._check_venue_positions(trader, filters, final=attempt == 1 or self.storage is None):
                break
        # Orders of the killed run: adopted as UNKNOWN (queried before anything with the same
        # intent is sent), with what storage + the venue's trade history say they filled.
        filled: dict[str, int] = {}
        for fill in (*stored_fills, *imported):
            filled[fill.client_order_id] = filled.get(fill.client_order_id, 0) + fill.qty
        open_orders = [
            replace(row, filled_qty=max(row.filled_qty, min(row.qty, filled.get(row.client_order_id, 0))))
            for row in open_orders
        ]
        commands = trader.orders.adopt_open_orders(open_orders, now)
        commands += await self._adopt_unknown_venue_orders(trader, now)
        for fill in (*stored_fills, *imported):
            order = trader.orders.orders.get(fill.client_order_id)
            if order is not None and fill.trade_id and fill.trade_id not in order.fill_ids:
                order.fill_ids.add(fill.trade_id)
                order.booked_qty += fill.qty
        if self.journal is not None:
            from epochbot.runtime.journal_inputs import trading_row

            self.journal.obj(
                trading_row(
                    cfg.strategy,
                    cfg.params,
                    session,
                    limits,
                    venue_filters,
                    self.config.venue.market,
                    self.engine.mode,
                    restored_risk,
                    stored_fills,
                    imported,
                    open_orders,
                    now,
                    keep_fills=getattr(trader, "keep_fills", None),
                    adopted=getattr(self, "_adopted", ()),
                )
            )
        risk = trader.risk.state
        self._runtime_log(
            "info",
            "trading enabled",
            strategy=cfg.strategy,
            session=session,
            restored_open_orders=len(open_orders),
            storage=cfg.storage_path or "none",
            restored_fills=restored,
            imported_fills=len(imported),
            restored_session_pnl=restored_session_pnl,
            session_pnl=str(risk.session_pnl),
            restored_breakers=restored_breakers,
            daily_pnl=str(risk.daily_pnl),
            breakers={k: v for k, v in sorted(risk.breakers.items())},
            session_latched=risk.session_latched,
            positions={s: trader.portfolio.qty(s) for s in self.config.symbols},
        )
        from epochbot.trading.alerts import RiskAlerts
        from epochbot.trading.risk import format_utc_time as _utc

        for symbol, until in sorted(restored_breakers.items()):
            if until > now:
                self._runtime_log(
                    "warn",
                    "circuit breaker tripped",
                    symbol=symbol,
                    cause="restored from the previous run",
                    until=_utc(until),
                    effect="exits only",
                )
        # Restored trips were just logged; trips caused by the fills imported above are new.
        trader.risk_alerts = RiskAlerts(known_breakers=restored_breakers)
        self.engine.log_trader_alerts()
        return commands

    async def _adopt_unknown_venue_orders(self, trader, now: int) -> list:
        """Before trading: every order at the venue the journal does not know is cancelled,
        adopted or recorded per `epochbot.trading.adoption` (and logged, each). Returns commands."""
        from epochbot.trading.adoption import plan

        cfg = self.config.trading
        known = self.storage.known_client_ids() if self.storage is not None else set()
        known |= set(trader.orders.orders)
        commands: list = []
        self._adopted = []
        for symbol in self.config.symbols:
            try:
                rows = await self.gateway.venue_orders(symbol)
                decisions = plan(rows, known, unknown=cfg.unknown_orders, foreign=cfg.foreign_orders)
            except (RestError, ValueError, KeyError, TypeError) as exc:
                self.engine.counters["venue_orders_check_failed"] = (
                    self.engine.counters.get("venue_orders_check_failed", 0) + 1
                )
                self._runtime_log(
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
                    self._runtime_log("warn", "foreign open order cancelled (foreign_orders=cancel)", **fields)
                    self._spawn(self.gateway.cancel_all([(a.symbol, a.client_order_id)]), "cancel-foreign")
                    continue
                if a.action == "ignore":
                    self._runtime_log(
                        "warn", "open order of ours unknown to the journal left alone (unknown_orders=ignore)", **fields
                    )
                    continue
                try:
                    commands += trader.orders.adopt_venue_order(a, now)
                except (ValueError, KeyError, TypeError) as exc:
                    self._runtime_log(
                        "error", "venue order unknown to the journal could not be adopted", error=str(exc), **fields
                    )
                    continue
                self._adopted.append(a)  # journaled with the trading setup (epochbot.runtime.journal_inputs)
                self.engine.counters["venue_orders_adopted"] = self.engine.counters.get("venue_orders_adopted", 0) + 1
                self._runtime_log("warn", f"venue order unknown to the journal: {a.action}", **fields)
        trader.records.extend(trader.orders.drain_journal())
        if self.writer is not None:
            self._persist()
        return commands

    async def _import_venue_fills(self, trader, filters: dict, stored_fills: list) -> list:
        """Fills the venue made that never reached storage (the process died between the
        execution and the write): fetched from the venue's trade history since the newest stored
        fill of each symbol, mapped to our client order ids, booked and persisted. Returns them."""
        import re
        from decimal import Decimal

        from epochbot.model import trade_events as tev

        ours = re.compile(r"^eb[0-9a-f]+-[0-9a-f]+$")
        known = {(f.symbol, f.trade_id) for f in stored_fills if f.trade_id}
        newest: dict[str, int] = {}
        for fill in stored_fills:
            newest[fill.symbol] = max(newest.get(fill.symbol, 0), fill.ts_ns)
        by_venue_id = self.storage.load_venue_order_ids()
        looked_up: dict[tuple[str, str], str | None] = {}
        imported: list = []
        for symbol in self.config.symbols:
            quote = self.gateway.quote_assets.get(symbol, "")
            since_ns = newest.get(symbol)
            if since_ns is None:
                since_ns = self.storage.first_order_ns(symbol)
                if since_ns is None:
                    continue  # no earlier run ever traded it: nothing of ours to import
                since_ns -= 60_000_000_000  # the journal's clock is ours, the venue's may lead
            try:
                trades = await self.gateway.user_trades(symbol, start_ms=since_ns // 1_000_000)
            except (RestError, ValueError, KeyError, TypeError) as exc:
                self.engine.counters["fill_import_failed"] = self.engine.counters.get("fill_import_failed", 0) + 1
                self._runtime_log(
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
                            body = await self.gateway.order_by_id(symbol, venue_id)
                        except RestError as exc:
                            self._runtime_log(
                                "warn",
                                "order lookup for an imported trade failed",
                                symbol=symbol,
                                order_id=venue_id,
                                error=str(exc),
                            )
                            body = None
                        looked_up[(symbol, venue_id)] = None if body is None else str(body.get("clientOrderId", ""))
                    coid = looked_up[(symbol, venue_id)]
                if not coid or not ours.match(coid):
                    foreign += 1
                    continue
                side = t.get("side") or ("BUY" if t.get("buyer", t.get("isBuyer")) else "SELL")
                fill = tev.Fill(
                    ts_ns=int(t["time"]) * 1_000_000,
                    recv_ts=self.clock(),
                    client_order_id=coid,
                    symbol=symbol,
                    side=side,
                    qty=codec.qty[str(t["qty"])],
                    price=codec.price[str(t["price"])],
                    fee=Decimal(str(t.get("commission", "0"))),
                    fee_asset=""
                    if str(t.get("commissionAsset") or "") == quote
                    else str(t.get("commissionAsset") or ""),
                    is_maker=bool(t.get("maker", t.get("isMaker", False))),
                    trade_id=trade_id,
                )
                if trader.import_fill(fill):
                    known.add((symbol, trade_id))
                    imported.append(fill)
            if foreign:
                self._runtime_log(
                    "warn", "trades of orders that are not ours were not imported", symbol=symbol, trades=foreign
                )
        self.engine.counters["fills_imported"] = self.engine.counters.get("fills_imported", 0) + len(imported)
        if imported:
            self._runtime_log(
                "warn",
                "imported fills the venue made while we were down",
                fills=len(imported),
                trade_ids=[f.trade_id for f in imported][:50],
            )
        return imported

    async def _check_venue_positions(self, trader, filters: dict, *, final: bool = True) -> bool:
        """Compare the rebuilt positions with the venue's account (USD-M positionAmt). True when
        they agree (or cannot be compared). A difference is logged as an error and counted in
        ``position_mismatch`` when ``final``; otherwise only reported by returning False."""
        self.engine.counters.setdefault("position_mismatch", 0)
        if self.config.venue.market != "usdm":
            self._runtime_log("info", "position check skipped: spot balances include assets not traded by us")
            return True
        try:
            amounts = await self.gateway.position_amounts()
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self._runtime_log("warn", "position check impossible: positionRisk unavailable", error=str(exc))
            return True
        differ = []
        for symbol in self.config.symbols:
            text = amounts.get(symbol, "0")
            codec = filters[symbol].codec
            negative = text.startswith("-")
            try:
                venue_qty = codec.qty[text.lstrip("-+")]
            except (ValueError, KeyError, TypeError):
                self._runtime_log("warn", "position check: unreadable positionAmt", symbol=symbol, position_amt=text)
                continue
            venue_qty = -venue_qty if negative else venue_qty
            differ.append((symbol, trader.portfolio.qty(symbol), venue_qty, text))
        if not final and any(ours != venue for _, ours, venue, _ in differ):
            return False
        for symbol, ours, venue_qty, text in differ:
            if venue_qty != ours:
                self.engine.counters["position_mismatch"] += 1
                self._runtime_log(
                    "error",
                    "position differs from the venue's after restore",
                    symbol=symbol,
                    ours=filters[symbol].qty_str(ours),
                    venue=text,
                )
            else:
                self._runtime_log("info", "position agrees with the venue", symbol=symbol, position=text)
        return True


def _remove_database(path: str) -> None:
    """Delete a SQLite database with its WAL and shared-memory files (missing ones are fine)."""
    import os

    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
