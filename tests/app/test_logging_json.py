"""JSON-lines log writer."""

from __future__ import annotations

import io

import orjson

from epochbot.app.daemon.logging_json import JsonLogWriter
from epochbot.engine.engine import LogRecord


def lines_of(buffer: io.BytesIO) -> list[dict]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_record_becomes_one_json_object_with_ts_level_msg_epoch_first_and_all_fields():
    out = io.BytesIO()
    writer = JsonLogWriter(out, level="debug")

    writer.write_record(
        LogRecord(
            1_700_000_000_123_456_789,
            "warn",
            "book gap: resync",
            4,
            {"symbol": "BTCUSDT", "first_id": 10, "final_id": 12, "prev_final_id": 8},
        )
    )
    writer.close()

    (line,) = lines_of(out)
    assert list(line)[:4] == ["ts", "level", "msg", "epoch"]
    assert line["ts"] == "2023-11-14T22:13:20.123457Z"
    assert (line["level"], line["msg"], line["epoch"]) == ("warn", "book gap: resync", 4)
    assert (line["symbol"], line["first_id"], line["final_id"], line["prev_final_id"]) == ("BTCUSDT", 10, 12, 8)


def test_fields_that_would_shadow_the_leading_keys_are_prefixed():
    out = io.BytesIO()
    writer = JsonLogWriter(out)

    writer.emit("info", "x", epoch=1, ts_ns=1)
    writer.write_record(LogRecord(1, "info", "real", 2, {"msg": "shadow", "epoch": 99}))
    writer.close()

    second = lines_of(out)[1]
    assert second["msg"] == "real" and second["epoch"] == 2
    assert second["field_msg"] == "shadow" and second["field_epoch"] == 99


def test_records_below_the_configured_level_are_dropped():
    out = io.BytesIO()
    writer = JsonLogWriter(out, level="warn")

    writer.write_record(LogRecord(1, "debug", "noise", 0, {}))
    writer.write_record(LogRecord(1, "info", "chatter", 0, {}))
    writer.write_record(LogRecord(1, "error", "problem", 0, {}))
    writer.close()

    assert [line["msg"] for line in lines_of(out)] == ["problem"]


def test_configured_secrets_are_masked_wherever_they_appear():
    out = io.BytesIO()
    writer = JsonLogWriter(out, secrets=["sekrit-token-value-123"])

    writer.emit(
        "error",
        "request failed",
        url="https://x/?signature=sekrit-token-value-123&a=1",
        detail={"k": "sekrit-token-value-123"},
    )
    writer.close()

    text = out.getvalue().decode()
    assert "sekrit-token-value-123" not in text
    assert "signature=********" in text


def test_values_json_cannot_encode_natively_are_written_as_strings():
    out = io.BytesIO()
    writer = JsonLogWriter(out)

    writer.emit(
        "info", "odd values", obj=object.__new__(type("Thing", (), {"__str__": lambda self: "thing!"})), big=2**80
    )
    writer.close()

    (line,) = lines_of(out)
    assert line["obj"] == "thing!"
    assert line["big"] == 2**80


def test_a_full_queue_drops_lines_and_reports_how_many_instead_of_blocking():
    out = io.BytesIO()
    writer = JsonLogWriter(out, capacity=2)
    writer._started = True  # hold the consumer back: nothing drains until we start it

    for i in range(5):
        writer.emit("info", f"line {i}")
    writer._thread.start()
    writer.emit("info", "after")  # may still be dropped if the queue is full; then close reports it
    writer.close()

    lines = lines_of(out)
    assert [line["msg"] for line in lines][:2] == ["line 0", "line 1"]
    assert sum(line.get("log_dropped", 0) for line in lines) + len(lines) == 6
