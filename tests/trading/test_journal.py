"""The capture journal: capture format with epochs, size-bounded rotation, replayable files."""

from __future__ import annotations

from epochbot.model.capture import CaptureRow, read_capture
from epochbot.offline.replay import replay_file
from epochbot.persistence.journal import CaptureJournal

CAPTURE = "/work/shared/captures/binance-spot-2021-10-12.jsonl"


def rows_of(path):
    with open(path, "rb") as stream:
        header, rows = read_capture(stream)
        return header, [r for r in rows if isinstance(r, CaptureRow)]


def test_rows_are_written_in_capture_format_with_their_epoch(tmp_path):
    journal = CaptureJournal(tmp_path, venue="binance-usdm")

    journal.record_open(1.0, "wss://x/stream?streams=btcusdt@depth@100ms", 1)
    journal.record_ws(1.5, '{"e":"aggTrade"}', 1)
    journal.record_rest(2.0, "https://x/fapi/v1/depth?symbol=BTCUSDT", '{"lastUpdateId":1}', 1)
    journal.record_close(3.0, "silence", 1)
    assert journal.close()

    (path,) = journal.files()
    header, rows = rows_of(path)
    assert header.venue == "binance-usdm"
    assert [(r.kind, r.ts) for r in rows] == [("open", 1.0), ("ws", 1.5), ("rest", 2.0), ("close", 3.0)]
    assert '"epoch":1' in path.read_text().splitlines()[2]


def test_files_rotate_at_the_size_bound_and_only_the_newest_k_are_kept(tmp_path):
    journal = CaptureJournal(tmp_path, venue="binance-spot", max_bytes=2_000, keep=3)
    journal.record_open(0.0, "wss://x/stream", 1)

    for i in range(200):
        journal.record_ws(float(i), '{"e":"aggTrade","pad":"' + "x" * 50 + '"}', 1)
    journal.close()

    files = journal.files()
    assert len(files) == 3 and journal.rotations >= 5
    assert all(f.stat().st_size <= 2_000 + 200 for f in files)
    for f in files:
        header, rows = rows_of(f)
        assert rows[0].kind == "open"  # every file starts its session, so it replays alone


def test_numbering_continues_after_existing_files_so_a_restart_never_overwrites(tmp_path):
    first = CaptureJournal(tmp_path, venue="binance-spot")
    first.record_ws(1.0, "{}", 1)
    first.close()

    second = CaptureJournal(tmp_path, venue="binance-spot")
    second.record_ws(2.0, "{}", 1)
    second.close()

    assert [f.name for f in second.files()] == ["journal-000001.jsonl", "journal-000002.jsonl"]


def test_a_journal_of_a_capture_replays_to_the_same_state(tmp_path):
    journal = CaptureJournal(tmp_path, venue="binance-spot")
    header, rows = rows_of(CAPTURE)
    epoch = 0
    for row in rows:
        if row.kind == "open":
            epoch += 1
            journal.record_open(row.ts, row.url, epoch)
        elif row.kind == "ws":
            journal.record_ws(row.ts, row.data, epoch)
        elif row.kind == "rest":
            journal.record_rest(row.ts, row.url, row.data, epoch)
        else:
            journal.record_close(row.ts, row.data, epoch)
    journal.close()

    (path,) = journal.files()
    assert replay_file(str(path)).engine.state_hash() == replay_file(CAPTURE).engine.state_hash()


def test_recording_after_close_is_refused_and_counted(tmp_path):
    journal = CaptureJournal(tmp_path, venue="binance-spot")
    journal.close()

    assert journal.record_ws(1.0, "{}", 1) is False and journal.dropped == 1
