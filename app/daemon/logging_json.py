"""JSON-lines logging for headless mode: one object per line on stderr.

Shape of a line::

    {"ts": "2026-11-21T17:44:44.123456Z", "level": "warn", "msg": "book gap: resync",
     "epoch": 3, "symbol": "BTCUSDT", "first_id": 1201, ...}

``ts``, ``level``, ``msg`` and ``epoch`` come first; every field of the engine's `LogRecord`
follows (exchange/recv/process timestamps, queue delay, transport latency, sequence and order
ids, reconnect cause, confidence reason: whatever the record carries). A field that would
shadow one of the four leading keys is written as ``field_<name>``.

Writing never blocks the strategy loop: `JsonLogWriter.write` formats the line and puts it on a
bounded queue; one daemon thread writes and flushes. If the consumer of stderr stops reading and
the queue fills, lines are dropped, counted, and the count is reported in the next line that
gets through (``"log_dropped": N``) - losing log lines is bad, stalling market processing
behind a full pipe is worse.

``fmt="text"`` writes one readable line per record instead (``--log-format text``)::

    2026-11-21T17:44:44.123Z INFO  e3 fill BUY 0.001 BTCUSDT @ 50000.10  symbol=BTCUSDT side=BUY ...

and a ``status`` record becomes its one-line ``summary`` field alone. `LogFanout` sends every
record to several writers (stderr plus ``--log-file``).

Secrets: every configured secret string is replaced by ``********`` in the serialised line
before it is queued, whatever field it hides in.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

import orjson

__all__ = ["JsonLogWriter", "LEVELS", "LogFanout", "iso_us"]

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "critical": 50}
_RESERVED = ("ts", "level", "msg", "epoch")
_MASK = b"********"
_STOP = object()


def iso_us(ts_ns: int) -> str:
    """Integer nanoseconds -> ISO-8601 UTC with microseconds and a Z."""
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _default(value: Any) -> Any:
    # SecretStr, enums, dataclasses-without-orjson-support, Paths...: str() is safe for SecretStr
    # (it prints its mask) and readable for the rest.
    return str(value)


class JsonLogWriter:
    """Thread-backed JSON-lines writer with level filtering and secret redaction."""

    def __init__(
        self,
        stream: IO[bytes] | IO[str] | None = None,
        *,
        level: str = "info",
        secrets: Iterable[str] = (),
        capacity: int = 10_000,
        fmt: str = "json",
    ) -> None:
        self._text = fmt == "text"
        self._stream = stream if stream is not None else sys.stderr
        self._min = LEVELS.get(level, 20)
        self._secrets = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name="epochbot-log-writer", daemon=True)
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ producers

    def enabled(self, level: str) -> bool:
        return LEVELS.get(level, 20) >= self._min

    def write_record(self, record) -> None:
        """Listener for `epochbot.engine.engine.LogRecord` (``ts_ns, level, msg, epoch, fields``)."""
        if not self.enabled(record.level):
            return
        self._emit(record.level, record.msg, record.epoch, record.ts_ns, record.fields)

    def emit(self, level: str, msg: str, *, epoch: int | None = None, ts_ns: int | None = None, **fields: Any) -> None:
        """Queue one line. Thread-safe; never blocks."""
        self._emit(level, msg, epoch, ts_ns, fields)

    def _emit(self, level: str, msg: str, epoch: int | None, ts_ns: int | None, fields: dict[str, Any]) -> None:
        if self._closed or not self.enabled(level):
            return
        if ts_ns is None:
            import time

            ts_ns = time.time_ns()
        line: dict[str, Any] = {"ts": iso_us(ts_ns), "level": level, "msg": msg, "epoch": epoch}
        for key, value in fields.items():
            line[f"field_{key}" if key in _RESERVED else key] = value
        with self._dropped_lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            line["log_dropped"] = dropped
        data = self.serialise_text(line) if self._text else self.serialise(line)
        if not self._put(data):
            with self._dropped_lock:
                self._dropped += dropped + 1

    def serialise(self, line: dict[str, Any]) -> bytes:
        try:
            data = orjson.dumps(line, default=_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # e.g. an int beyond 64 bits: the slow encoder copes, never lose the line
            import json

            data = json.dumps(line, default=str, separators=(",", ":")).encode()
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, _MASK)
        return data + b"\n"

    def serialise_text(self, line: dict[str, Any]) -> bytes:
        ts = line["ts"][:23] + "Z"
        level = str(line["level"]).upper()
        epoch = line.get("epoch")
        head = f"{ts} {level:<5} {'e' + str(epoch) if epoch is not None else '-':<4} {line['msg']}"
        if line["msg"] == "status" and "summary" in line:
            text = f"{ts} {level:<5} {'e' + str(epoch) if epoch is not None else '-':<4} status: {line['summary']}"
        else:
            rest = []
            for key, value in line.items():
                if key in _RESERVED:
                    continue
                if isinstance(value, (dict, list, tuple)):
                    value = orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
                rest.append(f"{key}={value}")
            text = head + ("  " + " ".join(rest) if rest else "")
        data = text.replace("\n", " ").encode(errors="replace")
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, _MASK)
        return data + b"\n"

    def _put(self, data: bytes) -> bool:
        if not self._started:
            self._started = True
            self._thread.start()
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            return False
        return True

    # ------------------------------------------------------------------ consumer

    def _drain(self) -> None:
        out: Any = self._stream  # text or binary: the first write says which
        binary = getattr(out, "buffer", None)
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            stop = False
            while len(batch) < 512:  # coalesce bursts into one write
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            data = b"".join(batch)
            try:
                if binary is not None:
                    binary.write(data)
                    binary.flush()
                else:
                    try:
                        out.write(data)
                    except TypeError:
                        out.write(data.decode())
                    out.flush()
            except (OSError, ValueError):
                pass  # stderr closed under us (daemon supervisor gone): nothing left to tell
            if stop:
                break

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued (bounded wait) and stop the writer thread."""
        if self._closed:
            return
        if self._dropped:  # say how many lines were lost since the last one that got through
            import time

            line = {
                "ts": iso_us(time.time_ns()),
                "level": "warn",
                "msg": "log lines dropped",
                "epoch": None,
                "log_dropped": self._dropped,
            }
            self._dropped = 0
            try:
                self._queue.put(self.serialise(line), timeout=timeout)
            except queue.Full:
                pass
        self._closed = True
        if not self._started:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


class LogFanout:
    """The `JsonLogWriter` producer interface over several writers (stderr + a log file)."""

    def __init__(self, *writers: JsonLogWriter) -> None:
        self.writers = writers

    def enabled(self, level: str) -> bool:
        return any(w.enabled(level) for w in self.writers)

    def write_record(self, record) -> None:
        for w in self.writers:
            w.write_record(record)

    def emit(self, level: str, msg: str, *, epoch: int | None = None, ts_ns: int | None = None, **fields: Any) -> None:
        if ts_ns is None:
            import time

            ts_ns = time.time_ns()
        for w in self.writers:
            w.emit(level, msg, epoch=epoch, ts_ns=ts_ns, **fields)

    def close(self, timeout: float = 5.0) -> None:
        for w in self.writers:
            w.close(timeout)
