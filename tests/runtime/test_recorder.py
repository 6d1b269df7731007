"""The input recorder: every consumed input in consumption order (market frames as received),
and nothing at all when journaling is off."""

from __future__ import annotations

import json

import pytest

from epochbot.model import events as ev
from epochbot.runtime.config import JournalConfig
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.recorder import InputRecorder
from tests.runtime.fakes import SYMBOL, VENUE, engine


def rows(directory) -> list[dict]:
    (path,) = directory.glob("*.jsonl")
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_off_it_writes_nothing_and_keeps_no_raw_frames(tmp_path):
    inbox = Inbox(10)
    recorder = InputRecorder(None, engine=engine(), inbox=inbox, venue=VENUE, symbols=(SYMBOL,))

    recorder.open()
    recorder.event(ev.OperatorPause(paused=True))
    recorder.row({"k": "start", "p": 1})

    assert recorder.journal is None and inbox.raw is None and list(tmp_path.iterdir()) == []


def test_on_it_records_raw_market_frames_events_and_driver_rows_in_order(tmp_path):
    eng = engine()
    inbox = Inbox(10)
    recorder = InputRecorder(JournalConfig(str(tmp_path)), engine=eng, inbox=inbox, venue=VENUE, symbols=(SYMBOL,))
    recorder.open()
    frame = '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate"}}'
    inbox.put_market(ev.MarkPrice(0, SYMBOL, "1", "1", "0", 0, 0, 5), frame)

    market = inbox.next()
    market.process_ts = 6
    recorder.consumed(market)
    recorder.consumed(ev.OperatorPause(paused=True))
    recorder.row({"k": "start", "p": 7})
    recorder.journal.close()

    header, *body = rows(tmp_path)
    assert header["capture"] == 2 and header["venue"] == "binance-usdm" and header["symbols"] == [SYMBOL]
    assert [r["k"] for r in body] == ["ws", "ev", "start"]
    assert body[0]["f"] == json.loads(frame) and body[0]["p"] == 6
    assert body[1]["t"] == "OperatorPause"


def test_a_snapshot_whose_handler_raises_is_journaled_all_the_same(tmp_path):
    eng = engine()
    recorder = InputRecorder(JournalConfig(str(tmp_path)), engine=eng, inbox=Inbox(10), venue=VENUE, symbols=(SYMBOL,))
    recorder.open()

    def broken(event):
        raise KeyError("bug")

    eng.handle = broken
    with pytest.raises(KeyError):
        recorder.handle_timed(ev.SnapshotReady(symbol=SYMBOL, last_update_id=1))
    recorder.journal.close()

    assert [r.get("t") for r in rows(tmp_path)[1:]] == ["SnapshotReady"]
