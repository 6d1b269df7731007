"""`MarketFeed`: the per-symbol generators that move the market and turn it into stream frames.

Theory of operation
-------------------
One generator task per symbol (`run`) wakes every ``tick_s`` and computes how many diff events
are due at the configured rate since it started (``int(elapsed * rate) - emitted``); it emits
exactly that many, so the rate is exact without per-message timers. A far-behind schedule (a
suspended loop) restarts instead of bursting a backlog; an error in one step is logged and
counted and the market goes on (a generator that died silently would look, to a client,
exactly like a quiet market).

Each wake-up is one `step`: every due event moves the `SymbolMarket` (a ``gap`` fault skips
update ids), lets the paper venue fill resting orders, updates the 1m candle and is rendered
once for every stream of the symbol that is subscribed (real-time diff depth, bookTicker on a
top-of-book change, aggTrade and spot trade, forceOrder now and then). Slower streams (``@depth`` 1000/250 ms,
``@500ms``) accumulate merged diffs and flush on their period; partial depth, markPrice and
kline streams are timed per symbol step. Then the venue's user events are pumped. While a
``stale`` fault is armed, event timestamps lag. A paused market (`pause`) emits no diffs,
trades or tickers while the timed streams keep coming, as on Binance.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from epochbot.sim.candles import Candles
from epochbot.sim.clock import now_ms as wall_ms
from epochbot.sim.delivery import FrameDelivery
from epochbot.sim.faults import FaultBoard, stale_time
from epochbot.sim.market import DepthEvent, SymbolMarket
from epochbot.sim.matching import PaperVenue
from epochbot.sim.streams import (
    KlineState,
    MarkAverage,
    agg_trade,
    book_ticker,
    depth_update,
    force_order,
    kline_event,
    mark_price_update,
    merge_into,
    partial_depth,
    trade,
)
from epochbot.sim.subscriptions import Subscriptions
from epochbot.sim.user_data import UserEvents

__all__ = ["MarketFeed"]

log = logging.getLogger("epochbot.sim")


class MarketFeed:
    """The market generators and the stream frames they produce (see module docstring)."""

    def __init__(
        self,
        *,
        market: str,
        rate: float,
        tick_s: float,
        speed: float = 1.0,
        markets: dict[str, SymbolMarket],
        subscriptions: Subscriptions,
        delivery: FrameDelivery,
        faults: FaultBoard,
        candles: Candles,
        venue: PaperVenue,
        user_events: UserEvents,
        rng: random.Random,
        stats: dict[str, Any],
    ) -> None:
        self._market = market
        self._rate = rate
        self._tick_s = tick_s
        self._speed = speed
        self._fast = rate > 200  # the per-event market is the same at any speed
        self._markets = markets
        self._subs = subscriptions
        self._delivery = delivery
        self._faults = faults
        self._candles = candles
        self._venue = venue
        self._user_events = user_events
        self._rng = rng
        self._stats = stats
        self.paused = False
        self._resume_handle: asyncio.TimerHandle | None = None
        # Per stream: merged diffs of a slow depth stream, the last flush of a timed stream,
        # the update id a partial-depth frame last reached, the last forceOrder sent.
        self._acc: dict[str, DepthEvent | None] = {}
        self._last_flush: dict[str, int] = {}
        self._last_prev: dict[str, int] = {}
        self._last_forced: dict[str, int] = {}
        # USD-M markPriceUpdate `ap`: each symbol's mark price moving average, sampled every step.
        self._mark_average = {s: MarkAverage(m.tick) for s, m in markets.items()} if market == "usdm" else {}
        subscriptions.on_stream_closed(self._forget)

    # ------------------------------------------------------------------ a quiet market

    def pause(self, duration_s: float | None = None) -> None:
        """Stop the books changing; ``duration_s``: resume by itself after that long."""
        self.paused = True
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        if duration_s is not None:
            self._resume_handle = asyncio.get_running_loop().call_later(duration_s, self.resume)

    def resume(self) -> None:
        self.paused = False
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None

    # ------------------------------------------------------------------ the generator

    async def run(self, sym: str) -> None:
        """The generator task of one symbol: runs until cancelled."""
        loop = asyncio.get_running_loop()
        rate = self._rate * self._speed  # events per wall second
        virtual = self._speed != 1.0  # market time on its own clock (SimConfig.speed)
        virtual_ms, step_ms = float(wall_ms()), 1000.0 / self._rate
        t0 = loop.time()
        emitted = 0
        was_paused = False
        errors = 0
        while True:
            await asyncio.sleep(self._tick_s)
            try:
                now = loop.time()
                due = 0
                if self.paused:
                    was_paused = True
                else:
                    if was_paused:
                        t0, emitted, was_paused = now - 1.0 / rate, 0, False
                    due = int((now - t0) * rate) - emitted
                    if due > rate:  # we fell far behind (suspended loop): do not burst a backlog
                        t0, emitted, due = now - 1.0 / rate, 0, 1
                    due = max(0, due)
                    emitted += due
                if virtual:
                    times = []
                    for _ in range(due):
                        virtual_ms += step_ms
                        times.append(int(virtual_ms))
                    self.step(sym, int(virtual_ms), due, times)
                else:
                    self.step(sym, wall_ms(), due)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - counted and logged below; the market goes on
                errors += 1
                self._stats["generator_errors"] += 1
                if errors <= 10 or errors % 1000 == 0:
                    log.exception(
                        "simulator market generator error for %s (%d so far); the market goes on", sym, errors
                    )
                t0, emitted = loop.time(), 0  # start the schedule afresh, never burst a backlog

    def step(self, sym: str, now_ms: int, due: int, times: list[int] | None = None) -> None:
        """One wake-up of ``sym``'s generator at market time ``now_ms``: ``due`` diff events (at
        ``times`` on the virtual clock, else all at ``now_ms``), the timed streams, the venue's
        clock (countdowns), the user events."""
        m = self._markets[sym]
        for t in times if times is not None else [now_ms] * due:
            self._emit_event(sym, m, t)
        average = self._mark_average.get(sym)
        if average is not None:
            average.sample(m.mark_price(), now_ms)
        self._timed_streams(sym, m, now_ms)
        self._venue.on_clock(sym, now_ms)
        self._user_events.pump()

    # ------------------------------------------------------------------ frames

    def _forget(self, name: str) -> None:
        self._acc.pop(name, None)
        self._last_flush.pop(name, None)

    def _emit_event(self, sym: str, m: SymbolMarket, now_ms: int) -> None:
        gap = self._faults.take("gap", sym)
        skip = int(gap.params.get("skip", 1)) if gap else 0
        top_before = (m.best_bid, m.best_ask, m.bid_levels.get(m.best_bid), m.ask_levels.get(m.best_ask))
        ev = m.next_depth_event(now_ms, updates=1 if self._fast else None, skip=skip)
        self._venue.on_market(m, now_ms)
        self._update_kline(sym, m, ev, now_ms)
        streams = self._subs.streams_of(sym)
        if not streams:
            return
        e_ms = stale_time(self._faults, sym, now_ms)
        market = self._market
        deliver = self._delivery.deliver
        pdec, qdec = m.price_decimals, m.qty_decimals
        diff_payload: bytes | None = None
        for name, spec in list(streams.items()):
            kind = spec.kind
            if kind == "depth":
                if spec.period_ms == 0:
                    if diff_payload is None:
                        diff_payload = depth_update(
                            market, sym, ev.first_id, ev.last_id, ev.prev_id, e_ms, e_ms, ev.bids, ev.asks, pdec, qdec
                        )
                    deliver(name, diff_payload, sym, is_diff=True)
                else:
                    self._acc[name] = merge_into(self._acc.get(name), ev)
            elif kind == "bookTicker":
                top = (m.best_bid, m.best_ask, m.bid_levels.get(m.best_bid), m.ask_levels.get(m.best_ask))
                if top != top_before:
                    deliver(name, book_ticker(market, m, e_ms, e_ms), sym)
            elif kind == "aggTrade":
                for t in ev.trades:
                    m.agg_id += 1
                    deliver(name, agg_trade(market, sym, m.agg_id, t, e_ms, pdec, qdec), sym)
            elif kind == "trade":  # spot: the same trades, one event each
                for t in ev.trades:
                    deliver(name, trade(sym, t, e_ms, pdec, qdec), sym)
            elif kind == "forceOrder" and ev.trades:
                last = self._last_forced.get(name, 0)
                if now_ms - last >= 1000 and self._rng.random() < 0.02:
                    self._last_forced[name] = now_ms
                    deliver(name, force_order(sym, ev.trades[-1], e_ms, pdec, qdec), sym)

    def _timed_streams(self, sym: str, m: SymbolMarket, now_ms: int) -> None:
        streams = self._subs.streams_of(sym)
        if not streams:
            return
        market = self._market
        deliver = self._delivery.deliver
        e_ms = stale_time(self._faults, sym, now_ms)
        pdec, qdec = m.price_decimals, m.qty_decimals
        for name, spec in list(streams.items()):
            if spec.period_ms == 0:
                continue
            last = self._last_flush.get(name)
            if last is None:
                self._last_flush[name] = now_ms
                self._last_prev[name] = m.update_id
                continue
            if now_ms - last < spec.period_ms:
                continue
            self._last_flush[name] = now_ms
            if spec.kind == "depth":
                acc = self._acc.pop(name, None)
                if acc is not None:
                    payload = depth_update(
                        market, sym, acc.first_id, acc.last_id, acc.prev_id, e_ms, e_ms, acc.bids, acc.asks, pdec, qdec
                    )
                    deliver(name, payload, sym, is_diff=True)
            elif spec.kind == "partial":
                prev = self._last_prev.get(name, m.update_id)
                deliver(name, partial_depth(market, m, spec.levels, e_ms, e_ms, prev), sym)
                self._last_prev[name] = m.update_id
            elif spec.kind == "markPrice":
                next_funding = (now_ms // 28_800_000 + 1) * 28_800_000
                mark = m.mark_price()
                average = self._mark_average[sym].value(mark) if sym in self._mark_average else mark
                deliver(name, mark_price_update(m, e_ms, "0.00010000", next_funding, average), sym)
            elif spec.kind == "kline":
                ks = self._candles.history(sym)
                k = ks[-1] if ks else None
                if k is not None:
                    deliver(name, kline_event(sym, k, e_ms, False, pdec, qdec), sym)

    def _update_kline(self, sym: str, m: SymbolMarket, ev: DepthEvent, now_ms: int) -> None:
        ks = self._candles.history(sym)
        minute = now_ms - now_ms % 60_000
        cur = ks[-1] if ks else None
        if cur is None or cur.open_ms != minute:
            streams = self._subs.streams_of(sym)
            if cur is not None and streams:
                for name, spec in streams.items():
                    if spec.kind == "kline":
                        self._delivery.deliver(
                            name, kline_event(sym, cur, now_ms, True, m.price_decimals, m.qty_decimals), sym
                        )
            p = m.last_trade_price
            cur = KlineState(minute, p, p, p, p)
            ks.append(cur)
        for t in ev.trades:
            cur.add(t)
