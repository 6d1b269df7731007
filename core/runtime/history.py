"""Kline history at start: closed candles of the last ``history_lookback_min`` minutes per symbol,
fetched through the weight scheduler, checked for gaps, handed to the engine's market history,
stored and used to warm the strategy up.

`HistoryBackfill.backfill` fetches (before trading starts); `HistoryBackfill.use` stores the
candles, journals them and returns the strategy's warm-up commands (after trading started).
`backfill_klines` is the fetch itself, on anything with a ``klines`` coroutine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from epochbot.engine.engine import Engine
from epochbot.runtime.budget import klines_weight
from epochbot.runtime.config import RuntimeConfig
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.publish import RuntimeLog
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.streams import StreamPlan
from epochbot.runtime.venue_rest import VenueRest
from epochbot.runtime.weight import WeightScheduler
from epochbot.trading.bars import GapRange, backfill_requests, find_gaps, interval_ms
from epochbot.venues.binance.rest import RestError

if TYPE_CHECKING:
    from epochbot.trading.trader import Trader

__all__ = ["Backfill", "HistoryBackfill", "backfill_klines"]


class HistoryBackfill:
    def __init__(
        self,
        config: RuntimeConfig,
        *,
        engine: Engine,
        rest: VenueRest,
        scheduler: WeightScheduler,
        plan: StreamPlan,
        durable: DurableSink,
        recorder: InputRecorder,
        clock: Callable[[], int],
        log: RuntimeLog,
    ) -> None:
        self.config = config
        self.engine = engine
        self.rest = rest
        self.scheduler = scheduler
        self.plan = plan
        self.durable = durable
        self.recorder = recorder
        self.clock = clock
        self.log = log

    async def backfill(self) -> dict[str, list]:
        """Closed candles of the last ``history_lookback_min`` minutes per symbol, into the
        engine's history. Gaps are fetched again once; what is still missing is logged and
        counted in ``candles_missing``. A venue that has less history than asked (the
        simulator only has candles since it started) is not a gap: the span starts at the
        first candle the venue returned. Returns the new candles per symbol."""
        cfg = self.config
        out: dict[str, list] = {}
        if cfg.history_lookback_min <= 0:
            return out
        try:
            step = interval_ms(cfg.history_interval)
        except ValueError as exc:
            self.log("warn", "kline backfill skipped", error=str(exc))
            return out
        now_ms = self.clock() // 1_000_000
        end_ms = now_ms // step * step - step  # the newest closed candle's open time
        start_ms = end_ms - (cfg.history_lookback_min * 60_000 // step - 1) * step
        # Ask for no more rows than the lookback needs: USD-M charges klines by `limit`.
        limit = max(1, min(1000, (end_ms - start_ms) // step + 2))
        rest = BudgetedKlines(self.rest, self.scheduler, klines_weight(cfg.venue.market, limit))
        for symbol in self.plan.full_symbols():
            try:
                result = await backfill_klines(
                    rest, symbol, cfg.history_interval, start_ms, end_ms, limit=limit, now_ms=now_ms
                )
            except (RestError, ValueError, KeyError, TypeError, IndexError) as exc:
                self.log("warn", "kline backfill failed", symbol=symbol, error=str(exc))
                continue
            if result.missing:
                self.engine.counters["candles_missing"] += result.missing
                self.log(
                    "warn",
                    "kline backfill: candles still missing after refetch",
                    symbol=symbol,
                    interval=cfg.history_interval,
                    missing=result.missing,
                    ranges=[(g.start_ms, g.end_ms) for g in result.gaps][:50],
                )
            self.engine.market.add_candles(symbol, result.candles)
            out[symbol] = result.candles
            self.log(
                "info",
                "kline backfill",
                symbol=symbol,
                interval=cfg.history_interval,
                candles=len(result.candles),
                first_ms=result.start_ms,
                refetched=result.refetched,
                missing=result.missing,
            )
        return out

    def use(self, history: dict[str, list]) -> list:
        """After backfill (and trading setup): persist the candles (from now on closed live
        klines are stored too), journal them, and return the strategy's warm-up commands."""
        self.durable.keep_candles(history.values())
        if history:
            from epochbot.runtime.journal_inputs import history_row

            self.recorder.row(history_row(history))
        trader = cast("Trader | None", self.engine.trader)  # the trading session installs a Trader
        commands: list = []
        if trader is not None:
            for symbol, candles in history.items():
                commands += trader.warm_up(symbol, candles)
        return commands


class BudgetedKlines:
    """The REST client's klines, each request waiting for its weight from the scheduler."""

    def __init__(self, rest: VenueRest, scheduler: WeightScheduler, weight: int) -> None:
        self._rest = rest
        self._scheduler = scheduler
        self._weight = weight
        self._seq = 0

    async def klines(self, *args, **kwargs):
        self._seq += 1
        grant = await self._scheduler.acquire(("klines", self._seq), self._weight)
        status = 0
        try:
            rows = await self._rest.client.klines(*args, **kwargs)
            status = 200
            return rows
        except RestError as exc:
            status = exc.status
            raise
        finally:
            self._scheduler.answered(grant, status)


@dataclass(frozen=True, slots=True)
class Backfill:
    candles: list  # closed Candles in [start_ms, end_ms], oldest first, one per open time
    start_ms: int  # where the span checked for gaps begins (>= the requested start)
    gaps: tuple[GapRange, ...]  # still missing after the refetch
    refetched: int  # candles the refetch recovered

    @property
    def missing(self) -> int:
        return sum(g.count for g in self.gaps)


async def backfill_klines(
    rest, symbol: str, interval: str, start_ms: int, end_ms: int, *, limit: int = 1000, now_ms: int | None = None
) -> Backfill:
    """Closed candles with open times in ``[start_ms, end_ms]`` through ``rest.klines``.

    Paged (``limit`` per request, each page starting after the last open time returned; a
    page that makes no progress ends it). Gaps are found with `find_gaps` from the first open
    time the venue returned (history shorter than asked is not a gap), refetched once with
    `backfill_requests`, and whatever is still missing is returned in ``gaps``. A row whose
    close time is not before ``now_ms`` is the forming candle and is left out.
    """
    from epochbot.model.records import Candle

    step = interval_ms(interval)
    have: dict[int, Candle] = {}

    def take(rows) -> int:
        added = 0
        for row in rows:
            open_ts, close_ts = int(row[0]), int(row[6])
            if open_ts < start_ms or open_ts > end_ms or (now_ms is not None and close_ts >= now_ms):
                continue
            if open_ts not in have:
                added += 1
            have[open_ts] = Candle(
                symbol, interval, open_ts, str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), True
            )
        return added

    t = start_ms
    while t <= end_ms:
        rows = await rest.klines(symbol, interval, t, end_ms, limit)
        take(rows)
        last = max((int(r[0]) for r in rows), default=None)
        if last is None or last < t or len(rows) < limit:
            break
        t = last + step
    if not have:
        return Backfill([], start_ms, (), 0)
    first = min(have)
    gaps = find_gaps(have, step, first, end_ms)
    refetched = 0
    if gaps.gaps:
        for lo, hi in backfill_requests(gaps.gaps, limit):
            refetched += take(await rest.klines(symbol, interval, lo, hi, limit))
        gaps = find_gaps(have, step, first, end_ms)
    return Backfill([have[k] for k in sorted(have)], first, gaps.gaps, refetched)
