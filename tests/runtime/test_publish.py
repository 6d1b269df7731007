"""Publishing: a new immutable snapshot for every reader, the engine's log records to every
listener, and a broken reader never takes the core down."""

from __future__ import annotations

from epochbot.runtime.config import JournalConfig
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.publish import Publisher
from epochbot.runtime.recorder import InputRecorder
from epochbot.views.snapshot import SnapshotBuilder
from tests.runtime.fakes import SYMBOL, VENUE, engine


def publisher(journal=None):
    eng = engine()
    recorder = InputRecorder(journal, engine=eng, inbox=Inbox(10), venue=VENUE, symbols=(SYMBOL,))
    recorder.open()
    return Publisher(eng, SnapshotBuilder("test"), recorder), eng, recorder


def test_each_publish_replaces_latest_and_reaches_every_listener_even_after_one_that_raises():
    pub, _, _ = publisher()
    seen: list = []

    def broken(snapshot):
        raise RuntimeError("a reader's bug")

    pub.add_snapshot_listener(broken)
    pub.add_snapshot_listener(seen.append)
    pub.publish()
    first = pub.latest
    pub.publish(exact=True)

    assert seen == [first, pub.latest] and first is not pub.latest


def test_the_runtimes_records_are_marked_and_drained_to_log_listeners():
    pub, eng, _ = publisher()
    records: list = []
    pub.add_log_listener(records.append)
    pub.add_log_listener(lambda record: 1 / 0)  # a broken listener is logged, never raised

    pub.log("warn", "something happened", symbol=SYMBOL)
    pub.drain_logs()

    assert [(r.level, r.msg, r.fields) for r in records] == [
        ("warn", "something happened", {"source": "runtime", "symbol": SYMBOL})
    ]
    assert eng.pending_log == []


def test_rows_the_journal_lost_are_counted_and_said_once(tmp_path):
    pub, eng, recorder = publisher(JournalConfig(str(tmp_path)))
    records: list = []
    pub.add_log_listener(records.append)

    pub.publish()
    assert eng.counters["journal_dropped"] == 0
    recorder.journal.dropped = 3  # as the journal counts a failed write
    pub.publish()
    pub.publish()
    pub.drain_logs()
    recorder.journal.close()

    assert eng.counters["journal_dropped"] == 3
    assert [r.msg for r in records].count("journal lost rows: this run will not replay exactly") == 1


def test_without_a_journal_there_is_no_journal_counter():
    pub, eng, _ = publisher()

    pub.publish()

    assert "journal_dropped" not in eng.counters
