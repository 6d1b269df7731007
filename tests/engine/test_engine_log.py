"""EngineLog: every record carries the clock's time and the current epoch; pending is bounded."""

from __future__ import annotations

from dataclasses import dataclass

from epochbot.engine.log import EngineLog
from tests.core._support import FakeClock


@dataclass
class Epochs:
    epoch: int = 0


def test_a_record_carries_the_clock_the_current_epoch_and_its_fields():
    clock, epochs = FakeClock(), Epochs(epoch=4)
    log = EngineLog(clock, capacity=10, epochs=epochs)

    log.write("warn", "book gap: resync", symbol="BTCUSDT", expected=7)

    (record,) = log.records
    assert (record.ts_ns, record.level, record.msg, record.epoch) == (clock.now, "warn", "book gap: resync", 4)
    assert record.fields == {"symbol": "BTCUSDT", "expected": 7}


def test_drain_hands_out_each_record_once_and_keeps_the_bounded_history():
    log = EngineLog(FakeClock(), capacity=2, epochs=Epochs())
    for i in range(3):
        log.write("info", f"line {i}")

    first, second = log.drain(), log.drain()

    assert [r.msg for r in first] == ["line 0", "line 1", "line 2"]
    assert second == []
    assert [r.msg for r in log.records] == ["line 1", "line 2"]


def test_undrained_records_are_bounded_by_dropping_the_oldest_half():
    log = EngineLog(FakeClock(), capacity=5, epochs=Epochs())

    for i in range(10_001):
        log.write("debug", str(i))

    assert len(log.pending) == 5_001
    assert log.pending[0].msg == "5000"


def test_a_replaced_clock_stamps_the_next_records():
    log = EngineLog(FakeClock(), capacity=5, epochs=Epochs())

    log.clock = lambda: 42
    log.write("info", "pinned")

    assert log.records[-1].ts_ns == 42
