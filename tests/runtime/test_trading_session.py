"""Trading at start, against the real simulator: the trader built from the venue's filters, its
state restored from storage, the gateway and its user-data stream started; order commands to the
gateway; refusals when trading cannot start safely."""

from __future__ import annotations

import contextlib
import time

import pytest

from epochbot.model import events as ev
from epochbot.runtime.config import JournalConfig, RuntimeConfig, TradingConfig, VenueEndpoints
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.trading_session import Reconciled, TradingSession
from epochbot.runtime.venue_rest import VenueRest
from epochbot.sim.auth import DEFAULT_API_KEY, DEFAULT_SECRET
from epochbot.sim.server import SimConfig, SimExchange
from tests.runtime.fakes import SYMBOL, Clock, LogSpy, engine

KEYS = {"api_key": DEFAULT_API_KEY, "api_secret": DEFAULT_SECRET}


class Parts:
    """A TradingSession and what it is built with, on a simulator of its own."""

    def __init__(self, sim: SimExchange, trading: TradingConfig, journal=None) -> None:
        venue = VenueEndpoints("test", "usdm", sim.rest_url, sim.ws_url)
        self.config = RuntimeConfig(venue=venue, symbols=(SYMBOL,), trading=trading)
        self.engine = engine(Clock(start=time.time_ns()))
        self.inbox = Inbox(1000)
        self.log = LogSpy()
        self.failures: list = []
        self.tasks = TaskSupervisor(lambda name, exc: self.failures.append((name, exc)))
        self.rest = VenueRest(venue, timeout_s=5.0, retry_after_cap_s=60.0, log=self.log)
        self.durable = DurableSink(self.engine, self.log)
        self.recorder = InputRecorder(journal, engine=self.engine, inbox=self.inbox, venue=venue, symbols=(SYMBOL,))
        self.trading = TradingSession(
            self.config,
            engine=self.engine,
            rest=self.rest,
            inbox=self.inbox,
            durable=self.durable,
            recorder=self.recorder,
            tasks=self.tasks,
            clock=self.engine.clock,
            log=self.log,
        )

    async def close(self) -> None:
        if self.trading.gateway is not None:
            await self.trading.gateway.close()
        await self.tasks.cancel_all()
        await self.rest.close()
        await self.durable.close()


@contextlib.asynccontextmanager
async def parts(trading: TradingConfig, journal=None):
    async with SimExchange(SimConfig(market="usdm", symbols=[SYMBOL], seed=3, rate=20.0)) as sim:
        p = Parts(sim, trading, journal)
        p.rest.open()
        p.recorder.open()
        try:
            yield p
        finally:
            await p.close()


async def test_the_trader_is_built_restored_and_its_gateway_and_user_stream_started(tmp_path):
    trading = TradingConfig(strategy="quoter", storage_path=str(tmp_path / "db.sqlite3"), **KEYS)
    async with parts(trading) as p:
        filters = await p.rest.client.exchange_filters([SYMBOL])

        started = await p.trading.start(filters)

        assert p.engine.trader is started.trader and started.trader.strategy.name == "quoter"
        assert started.session == 1 and p.durable.enabled  # the storage's first session
        assert p.trading.gateway is started.gateway and started.gateway.user_stream_connected
        assert started.filters[SYMBOL].codec.price_decimals == 1
        assert p.log.find("strategy loaded")["strategy"] == "quoter" and p.failures == []


async def test_a_restart_on_the_same_storage_takes_the_next_session(tmp_path):
    trading = TradingConfig(strategy="quoter", storage_path=str(tmp_path / "db.sqlite3"), **KEYS)
    for expected in (1, 2):
        async with parts(trading) as p:
            started = await p.trading.start(await p.rest.client.exchange_filters([SYMBOL]))
            assert started.session == expected


async def test_enabling_journals_the_setup_and_says_what_was_restored(tmp_path):
    trading = TradingConfig(strategy="quoter", **KEYS)
    async with parts(trading, journal=JournalConfig(str(tmp_path))) as p:
        started = await p.trading.start(await p.rest.client.exchange_filters([SYMBOL]))

        commands = p.trading.enable(started, Reconciled(commands=[], imported=[], open_orders=[], adopted=[]))
        p.recorder.journal.close()

    assert commands == []
    assert p.log.find("trading enabled")["strategy"] == "quoter"
    assert '"k":"trading"' in next(tmp_path.glob("*.jsonl")).read_text()


async def test_trading_without_keys_or_filters_is_refused():
    async with parts(TradingConfig(strategy="quoter")) as p:
        filters = await p.rest.client.exchange_filters([SYMBOL])
        with pytest.raises(RuntimeError, match="API key and secret"):
            await p.trading.start(filters)
    async with parts(TradingConfig(strategy="quoter", **KEYS)) as p:
        with pytest.raises(RuntimeError, match="exchangeInfo filters for BTCUSDT"):
            await p.trading.start({})


async def test_an_order_command_without_trading_is_logged_not_sent():
    async with parts(TradingConfig(strategy="quoter", **KEYS)) as p:
        p.trading.execute(ev.CancelOrder(symbol=SYMBOL, client_order_id="eb1-1"))

    assert p.log.find("order command without trading configured") == {"command": "CancelOrder"}
