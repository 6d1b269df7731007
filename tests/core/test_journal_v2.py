"""Journal version 2 (every engine input in consumption order) and its replay: files, .gz,
rotated parts, runs in a directory, --until, --timeline, and the CLI."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.capture import CaptureFormatError, decode_event, encode_dataclass
from epochbot.offline.replay import parse_until, replay_path
from epochbot.persistence.journal import EngineJournal
from epochbot.runtime.journal_inputs import encode_engine_config
from epochbot.venues.binance.wire import decode_frame
from tests.core._support import FakeClock

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000_000_000_000


def frame(U: int, u: int, pu: int, bid: str, ask: str, i: int) -> str:
    data = {
        "e": "depthUpdate",
        "E": T0 // 1_000_000 + i,
        "T": T0 // 1_000_000 + i,
        "s": "BTCUSDT",
        "U": U,
        "u": u,
        "pu": pu,
        "b": [[bid, "1.000"]],
        "a": [[ask, "2.000"]],
    }
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data}).decode()


def record_session(journal: EngineJournal, *, epochs: int = 2, diffs: int = 30) -> Engine:
    """Drive an engine the way the runtime does and journal each input as it is consumed;
    returns the engine (the state the replay must reach)."""
    clock = FakeClock(T0)
    engine = Engine(EngineConfig(venue=VenueRules.USDM, symbols=("BTCUSDT",)), clock)
    journal.header.update(engine=encode_engine_config(engine.config), created_ns=engine.started_ns)

    def feed(event):
        clock.advance_ms(1)
        commands = engine.handle(event)
        journal.event(event)
        return commands

    feed(ev.SymbolSpec(symbol="BTCUSDT", tick_size="0.01", step_size="0.001"))
    clock.advance_ms(1)
    engine.start()
    journal.obj({"k": "start", "p": clock.now})
    last = 5_000
    for epoch in range(1, epochs + 1):
        feed(ev.SessionOpened(epoch=epoch, recv_ts=clock.now, url="ws://x"))
        (fetch,) = feed(ev.SubscriptionConfirmed(epoch=epoch, recv_ts=clock.now))
        for i in range(diffs):
            U = last + 3  # ids jump between events, as on USD-M
            pu = last
            raw = frame(U, U + 2, pu, f"{100 - i % 5}.00", f"{101 + i % 7}.00", i)
            last = U + 2
            clock.advance_ms(10)
            recv = clock.now - 100_000
            event = decode_frame(raw, epoch, recv)
            engine.handle(event)
            journal.frame(epoch, recv, event.process_ts, raw)
            if i == 0:  # the snapshot answers after the first diff was buffered: bridged by its pu
                feed(
                    ev.SnapshotReady(
                        epoch=epoch,
                        recv_ts=clock.now,
                        symbol="BTCUSDT",
                        request_id=fetch.request_id,
                        last_update_id=pu,
                        bids=[["99.00", "5.000"]],
                        asks=[["102.00", "5.000"]],
                    )
                )
            if i % 10 == 0:
                feed(ev.TimerTick(recv_ts=clock.now))
        if epoch < epochs:
            feed(ev.Disconnected(epoch=epoch, recv_ts=clock.now, reason="test drop"))
    feed(ev.OperatorSetMode(mode="reduce-only", recv_ts=clock.now))
    return engine


def test_every_event_type_round_trips_through_the_row_codec():
    events = [
        ev.SnapshotReady(
            epoch=2,
            recv_ts=5,
            symbol="X",
            request_id=3,
            last_update_id=9,
            bids=[["1.0", "2"]],
            asks=[],
            exchange_ts=4,
            fetch_ms=1.5,
        ),
        ev.SubscriptionConfirmed(epoch=1, request_id=2, streams=("a", "b")),
        ev.MarketQueueOverflow(symbols=("A", "B"), dropped=7),
        ev.OperatorForceResync(symbol=None, replace_session=True),
        tev.Fill(
            client_order_id="eb1-0",
            symbol="X",
            side="BUY",
            qty=3,
            price=4,
            fee=__import__("decimal").Decimal("0.0012"),
            trade_id="9",
        ),
    ]
    for event in events:
        body = orjson.loads(orjson.dumps(encode_dataclass(event)))

        assert decode_event(body["t"], body["f"]) == event


def test_a_recorded_session_replays_from_its_file_its_gz_and_its_directory_to_the_same_state(tmp_path):
    journal = EngineJournal(tmp_path / "j", venue="binance-usdm", run="r1")
    live = record_session(journal)
    journal.close()
    (path,) = journal.files()
    gz = tmp_path / "copy.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))

    results = [replay_path(str(p)) for p in (path, gz, tmp_path / "j")]

    for result in results:
        assert result.malformed == []
        assert result.engine.state_hash() == live.state_hash()
        assert result.engine.epoch == live.epoch == 2
        assert result.engine.mode == live.mode
        assert result.engine.book("BTCUSDT").synced
        assert [e.phases_ms() for e in result.engine.epochs] == [e.phases_ms() for e in live.epochs]


def test_rotated_parts_replay_in_order_and_a_restart_adds_a_run_the_directory_replays_last(tmp_path):
    first = EngineJournal(tmp_path, venue="binance-usdm", run="r1", max_bytes=3_000, keep=100)
    live1 = record_session(first)
    first.close()
    second = EngineJournal(tmp_path, venue="binance-usdm", run="r2", max_bytes=3_000, keep=100)
    live2 = record_session(second, epochs=3)
    second.close()

    last = replay_path(str(tmp_path))
    by_index, by_id = replay_path(str(tmp_path), run="1"), replay_path(str(tmp_path), run="r1")

    assert first.rotations >= 2 and second.rotations >= 2
    assert [r["run"] for r in last.runs] == ["r1", "r2"]
    assert last.run == "r2" and last.engine.state_hash() == live2.state_hash() and last.engine.epoch == 3
    assert by_index.engine.state_hash() == by_id.engine.state_hash() == live1.state_hash()


def test_a_run_whose_first_part_was_pruned_is_refused_with_a_reason(tmp_path):
    journal = EngineJournal(tmp_path, venue="binance-usdm", run="r1", max_bytes=3_000, keep=2)
    record_session(journal)
    journal.close()

    with pytest.raises(CaptureFormatError, match="pruned"):
        replay_path(str(tmp_path))


def test_until_an_epoch_stops_before_the_input_that_ended_it_and_until_a_time_stops_there(tmp_path):
    journal = EngineJournal(tmp_path, venue="binance-usdm", run="r1")
    record_session(journal, epochs=3)
    journal.close()

    at_epoch = replay_path(str(tmp_path), until="e1")
    at_time = replay_path(str(tmp_path), until="+0.05")

    assert at_epoch.engine.epoch == 1 and at_epoch.engine.book("BTCUSDT").synced  # the books as epoch 1 ended
    assert at_epoch.stopped_at["reason"] == "end of epoch 1"
    assert at_time.engine.clock() <= T0 + 50_000_000 and at_time.engine.epoch == 1
    eight = int(datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()) * 10**9
    # A time includes all of its last written unit: the millisecond an order was placed on.
    assert parse_until("2027-01-15T08:00:00.250Z") == ("time", eight + 250_999_999)
    assert parse_until("08:00:00.250", start_ns=eight - 3_600 * 10**9) == ("time", eight + 250_999_999)
    assert parse_until("08:00:01", start_ns=eight) == ("time", eight + 1_999_999_999)
    assert parse_until("e3") == parse_until("3") == ("epoch", 3)


def test_the_cli_prints_a_timeline_and_the_state_at_a_moment(tmp_path):
    journal = EngineJournal(tmp_path / "j", venue="binance-usdm", run="r1")
    record_session(journal)
    journal.close()

    timeline = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "replay", str(tmp_path / "j"), "--timeline"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    until = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "replay", str(tmp_path / "j"), "--until", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    as_json = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "replay", str(tmp_path / "j"), "--json"],
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )

    assert timeline.returncode == 0, timeline.stderr
    text = timeline.stdout
    for expected in (
        "replace session",
        "cause=startup",
        "book synced",
        "disconnected",
        "resynchronized",
        "operator set mode",
        "epochs:",
        "e2",
    ):
        assert expected in text, expected
    assert until.returncode == 0 and "stopped: end of epoch 1" in until.stdout and "BTCUSDT: synced" in until.stdout
    assert "working orders: 0" in until.stdout
    report = json.loads(as_json.stdout)
    assert report["version"] == 2 and report["run"] == "r1" and report["epochs"] == 2 and report["orders"] == []


def test_until_and_timeline_on_a_version_1_capture_are_refused_with_a_reason(tmp_path):
    capture = tmp_path / "v1.jsonl"
    capture.write_text('{"capture": 1, "venue": "binance-spot", "source": "t"}\n')

    out = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "replay", str(capture), "--timeline"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )

    assert out.returncode == 2 and "version 2" in out.stderr


def test_a_directory_of_version_1_files_replays_its_newest_file(tmp_path):
    source = Path("/work/shared/captures/binance-spot-2021-10-12.jsonl")
    if not source.exists():
        pytest.skip("real capture not available")
    shutil.copy(source, tmp_path / "journal-000001.jsonl")

    result = replay_path(str(tmp_path))

    assert result.version == 1 and all(s.book.synced for s in result.engine.symbols.values())


def test_two_journals_writing_one_directory_at_once_never_overwrite_each_other(tmp_path):
    first = EngineJournal(tmp_path, venue="binance-usdm", run="a", max_bytes=500, keep=100)
    second = EngineJournal(tmp_path, venue="binance-usdm", run="b", max_bytes=500, keep=100)

    for i in range(40):
        first.obj({"k": "start", "p": i})
        second.obj({"k": "start", "p": 1000 + i})
        first.flush()
        second.flush()
    first.close()
    second.close()

    rows = {"a": [], "b": []}
    for path in sorted(tmp_path.iterdir()):
        lines = path.read_bytes().splitlines()
        header = json.loads(lines[0])
        rows[header["run"]] += [json.loads(line)["p"] for line in lines[1:]]
    assert rows == {"a": list(range(40)), "b": list(range(1000, 1040))}


def test_frames_that_are_not_one_line_json_objects_are_kept_as_strings_and_still_replay(tmp_path):
    journal = EngineJournal(tmp_path, venue="binance-usdm", run="r1")
    journal.frame(1, 10, 20, '{"a":\n1}')
    journal.frame(1, 10, 20, b'{"b":2}')
    journal.frame(1, 10, 20, None)
    journal.close()

    lines = journal.files()[0].read_text().splitlines()[1:]

    assert [json.loads(line).get("d", json.loads(line).get("f")) for line in lines] == ['{"a":\n1}', {"b": 2}, None]


def test_an_older_epochbot_journal_with_one_open_row_per_route_is_one_epoch_per_session():
    import io

    lines = [{"capture": 1, "venue": "binance-usdm", "source": "epochbot sim (before v2)"}]
    for epoch in (1, 2):
        for route in ("public", "market"):
            lines.append(
                {
                    "ts": epoch * 10.0,
                    "kind": "open",
                    "url": f"ws://x/{route}/stream?streams=btcusdt@depth@100ms",
                    "data": "",
                    "epoch": epoch,
                }
            )
    capture = io.BytesIO(b"".join(orjson.dumps(line) + b"\n" for line in lines))

    from epochbot.offline.replay import replay_stream

    assert replay_stream(capture).engine.epoch == 2


def test_an_input_the_journal_cannot_encode_is_counted_and_named_never_raised():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        journal = EngineJournal(tmp, venue="binance-usdm", run="r")
        event = ev.SnapshotReady(symbol="X", bids=[[b"1", b"2"]])  # bytes: not JSON

        ok = journal.event(event)
        journal.close()

    assert ok is False and journal.dropped == 1 and "SnapshotReady" in journal.last_error
