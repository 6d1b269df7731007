"""Kline history at start: fetched through the weight scheduler, into the engine, then stored,
journaled and handed to the strategy's warm-up."""

from __future__ import annotations

from epochbot.model.records import Candle
from epochbot.runtime.budget import BudgetConfig, WeightBudget
from epochbot.runtime.config import JournalConfig
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.history import HistoryBackfill
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.streams import StreamPlan
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.weight import WeightScheduler
from tests.runtime.fakes import SYMBOL, VENUE, Clock, LogSpy, config, engine, venue_rest

M = 60_000


def kline(open_ms: int) -> list:
    return [open_ms, "1.0", "2.0", "0.5", "1.5", "10", open_ms + M - 1]


class Parts:
    def __init__(self, tmp_path, lookback_min: int = 10) -> None:
        self.clock = Clock(start=1_700_000_040_000 * 1_000_000)  # 40 s into a minute
        self.engine = engine(self.clock)
        inbox = Inbox(100)
        self.log = LogSpy()
        self.rest, self.fake = venue_rest(log=self.log)
        self.scheduler = WeightScheduler(
            WeightBudget(BudgetConfig.for_market("usdm")),
            inbox=inbox,
            rest=self.rest,
            clock=self.clock,
            clock_offset_ns=lambda: 0,
        )
        self.durable = DurableSink(self.engine, self.log)
        self.recorder = InputRecorder(
            JournalConfig(str(tmp_path / "journal")), engine=self.engine, inbox=inbox, venue=VENUE, symbols=(SYMBOL,)
        )
        cfg = config(history_lookback_min=lookback_min)
        self.history = HistoryBackfill(
            cfg,
            engine=self.engine,
            rest=self.rest,
            scheduler=self.scheduler,
            plan=StreamPlan(cfg),
            durable=self.durable,
            recorder=self.recorder,
            clock=self.clock,
            log=self.log,
        )
        self.tasks = TaskSupervisor(lambda name, exc: None)


async def test_closed_candles_of_the_lookback_go_into_the_engine_and_a_hole_is_counted(tmp_path):
    p = Parts(tmp_path)
    p.tasks.spawn(p.scheduler.run(), "weight-budget")
    newest = 1_700_000_040_000 // M * M - M  # the newest closed minute
    p.fake.klines_rows = [kline(newest - i * M) for i in range(10) if i != 4]  # one minute missing

    history = await p.history.backfill()
    await p.tasks.cancel_all()

    opens = [c.open_ts for c in p.engine.market.candles(SYMBOL)]
    assert [c.open_ts for c in history[SYMBOL]] == opens and len(opens) == 9 and opens == sorted(opens)
    assert p.engine.counters["candles_missing"] == 1
    assert p.log.find("kline backfill: candles still missing after refetch")["missing"] == 1
    assert p.scheduler.budget.stats["granted"] >= 2  # the first page and the refetch, each with its weight


async def test_the_history_is_stored_journaled_and_given_to_the_strategys_warm_up(tmp_path):
    p = Parts(tmp_path)
    p.durable.open(str(tmp_path / "db.sqlite3"))
    p.recorder.open()
    history = {SYMBOL: [Candle(SYMBOL, "1m", M, "1", "2", "0.5", "1.5", "3")]}

    commands = p.history.use(history)
    await p.durable.close()
    p.recorder.journal.close()

    assert commands == []  # no trader: nothing to warm up
    assert p.engine.market.pending_candles == []  # from now on closed live klines are stored too
    assert '"k":"history"' in next((tmp_path / "journal").glob("*.jsonl")).read_text()


async def test_no_lookback_no_request(tmp_path):
    p = Parts(tmp_path, lookback_min=0)

    assert await p.history.backfill() == {} and p.scheduler.budget.stats["granted"] == 0
