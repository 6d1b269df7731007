"""Durable records: handed to the writer thread without blocking, and the write-ahead barrier an
order waits for; with no storage every call is a no-op."""

from __future__ import annotations

import asyncio

from epochbot.model.records import Candle
from epochbot.persistence.storage import SqliteStorage
from epochbot.runtime.durable import DurableSink
from tests.runtime.fakes import SYMBOL, LogSpy, engine


def candle(minute: int) -> Candle:
    return Candle(SYMBOL, "1m", minute * 60_000, "1", "2", "0.5", "1.5", "3")


async def test_without_storage_nothing_is_kept_and_an_order_is_never_taken_as_durable():
    log = LogSpy()
    sink = DurableSink(engine(), log)

    sink.persist()
    sink.keep_candles([[candle(1)]])
    durable = await sink.write_ahead(object())
    await sink.close()

    assert not sink.enabled and durable is False
    assert log.find("storage queue full or closed: order intent not durable") is not None


async def test_records_reach_storage_and_the_barrier_resolves_once_they_are_committed(tmp_path):
    eng = engine()
    sink = DurableSink(eng, LogSpy())
    path = str(tmp_path / "db.sqlite3")
    sink.open(path)

    sink.keep_candles([[candle(1), candle(2)]])  # the backfill; later closed klines follow
    eng.market.pending_candles.append(candle(3))
    sink.persist()
    durable = await asyncio.wait_for(sink.write_ahead(object()), 5)
    await sink.close()

    assert durable is True
    storage = SqliteStorage(path)
    try:
        assert [c.open_ts for c in storage.load_candles(SYMBOL, "1m")] == [60_000, 120_000, 180_000]
    finally:
        storage.close()


async def test_a_fresh_storage_starts_empty(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    first = DurableSink(engine(), LogSpy())
    first.open(path)
    first.keep_candles([[candle(1)]])
    await first.close()

    second = DurableSink(engine(), LogSpy())
    storage = second.open(path, fresh=True)
    try:
        assert storage.load_candles(SYMBOL, "1m") == []
    finally:
        await second.close()
