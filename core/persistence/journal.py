"""Journals: `EngineJournal` (version 2, what the runtime records: every engine input in the
order the engine consumed it) and `CaptureJournal` (version 1: frames and REST answers in
receive order, for tools that record a venue without an engine).

`CaptureJournal`: an optional recorder of every inbound frame and REST response.

Rows use the capture format (``../shared/captures/FORMAT.md``, via `core.capture.write_header`
and `write_row`) plus an ``epoch`` field, so any journal file replays with ``core.replay``.

The loop (or the reader task) calls ``record_open/record_ws/record_rest/record_close`` which only
enqueue (bounded; overflow is counted in ``dropped``, never blocks). A writer thread appends to a
buffered file and flushes it every ``flush_interval_s`` and on ``flush()``/``close()``.

Size bound and rotation: a file is closed once it holds ``max_bytes`` (the row that crosses the
bound is the last one), the next file ``{prefix}-{n+1:06d}.jsonl`` starts with a header and a
copy of the current session's ``open`` row (so each file replays on its own; its books sync at
their next snapshot), and only the newest ``keep`` files are kept. Numbering continues after the
highest existing file, so a restart never overwrites a journal.

Only what the venue sent is recorded: REST *responses* (never request headers or signatures),
so no secret can reach the journal.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections import deque
from pathlib import Path

import orjson

from core.capture import encode_dataclass, write_header, write_header_v2, write_row

__all__ = ["CaptureJournal", "EngineJournal"]

from core.persistence.writer import _STOP, QueueThread, _Flush


class CaptureJournal(QueueThread):
    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        venue: str,
        source: str = "epochbot journal",
        max_bytes: int = 64 * 1024 * 1024,
        keep: int = 8,
        maxsize: int = 100_000,
        flush_interval_s: float = 0.5,
        prefix: str = "journal",
    ) -> None:
        if keep < 1 or max_bytes < 1:
            raise ValueError("keep and max_bytes must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.venue = venue
        self.source = source
        self.max_bytes = max_bytes
        self.keep = keep
        self.prefix = prefix
        self.flush_interval_s = flush_interval_s
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{6}})\.jsonl$")
        self.rows = 0
        self.rotations = 0
        self.last_error = ""
        self._index = max(self._existing(), default=0)
        self._file = None
        self._size = 0
        self._last_open: tuple[float, str, int | None] | None = None
        super().__init__(maxsize=maxsize, name="capture-journal")

    # ----------------------------------------------------------------------------- producers

    def record_open(self, ts: float, url: str, epoch: int) -> bool:
        return self._enqueue((ts, "open", "", url, epoch))

    def record_ws(self, ts: float, data: str, epoch: int) -> bool:
        return self._enqueue((ts, "ws", data, None, epoch))

    def record_rest(self, ts: float, url: str, data: str, epoch: int) -> bool:
        return self._enqueue((ts, "rest", data, url, epoch))

    def record_close(self, ts: float, reason: str, epoch: int) -> bool:
        return self._enqueue((ts, "close", reason, None, epoch))

    def files(self) -> list[Path]:
        return [self.directory / f"{self.prefix}-{i:06d}.jsonl" for i in sorted(self._existing())]

    # ----------------------------------------------------------------------------- writer thread

    def _existing(self) -> list[int]:
        out = []
        for name in os.listdir(self.directory):
            m = self._pattern.match(name)
            if m:
                out.append(int(m.group(1)))
        return out

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.flush_interval_s)
            except queue.Empty:
                self._flush_file()
                continue
            if item is _STOP:
                self._flush_file()
                self._close_file()
                return
            if type(item) is _Flush:
                self._flush_file()
                item.done.set()
                continue
            try:
                self._write(item)
            except OSError as exc:  # disk full etc.: counted, visible, the loop is unaffected
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.dropped += 1

    def _write(self, row: tuple) -> None:
        ts, kind, data, url, epoch = row
        if kind == "open":
            self._last_open = (ts, url, epoch)
        if self._file is None or self._size >= self.max_bytes:
            self._rotate(carry_open=kind != "open")
        before = self._file.tell()
        write_row(self._file, ts, kind, data, url, epoch)
        self._size += self._file.tell() - before
        self.rows += 1

    def _rotate(self, carry_open: bool) -> None:
        if self._file is not None:
            self._close_file()
            self.rotations += 1
        self._index += 1
        path = self.directory / f"{self.prefix}-{self._index:06d}.jsonl"
        self._file = open(path, "wb", buffering=1 << 16)
        write_header(self._file, self.venue, self.source)
        if carry_open and self._last_open is not None:
            ts, url, epoch = self._last_open
            write_row(self._file, ts, "open", "", url, epoch)
        self._size = self._file.tell()
        self._prune()

    def _prune(self) -> None:
        indexes = sorted(self._existing())
        for index in indexes[: max(0, len(indexes) - self.keep)]:
            try:
                os.remove(self.directory / f"{self.prefix}-{index:06d}.jsonl")
            except FileNotFoundError:
                pass

    def _flush_file(self) -> None:
        if self._file is not None:
            self._file.flush()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


class EngineJournal:
    """Version 2 of the journal: every input of the engine, in the order it consumed it.

    The strategy loop calls ``frame`` (a market event's raw frame, with the epoch, receive and
    process timestamps the engine saw), ``event`` (any control or trading event, after the
    engine handled it, so its ``process_ts`` is set) and ``obj`` (driver rows: ``start``,
    ``trading``, ``history``). Each encodes its row on the loop (a market row is a few byte
    concatenations: the frame is embedded verbatim) and appends it to a deque; a writer thread
    wakes every ``flush_interval_s`` (or on ``flush``/``close``), takes everything queued and
    writes it in one call. The loop never blocks and the writer holds the GIL only briefly, so
    journaling costs the loop almost nothing (bench/queue_delay.py --compare). Beyond
    ``maxsize`` queued rows a row is dropped and counted in ``dropped`` (a replay of that run is
    then not exact; the runtime reports the count).

    One process run writes one *run* (``run`` id in every file header); its files are
    ``{prefix}-{n:06d}.jsonl`` with ``part`` 1, 2, ... (rotation once a file holds
    ``max_bytes``); numbering continues after existing files, so a restart adds a run and never
    overwrites one. Only the newest ``keep`` files are kept. See docs/capture-format.md.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        venue: str,
        run: str,
        header: dict | None = None,
        source: str = "epochbot journal",
        max_bytes: int = 64 * 1024 * 1024,
        keep: int = 8,
        maxsize: int = 500_000,
        flush_interval_s: float = 0.2,
        prefix: str = "journal",
    ) -> None:
        if keep < 1 or max_bytes < 1:
            raise ValueError("keep and max_bytes must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.venue = venue
        self.source = source
        self.run = run
        self.header = dict(header or {})
        self.max_bytes = max_bytes
        self.keep = keep
        self.prefix = prefix
        self.maxsize = maxsize
        self.flush_interval_s = flush_interval_s
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{6}})\.jsonl$")
        self.rows = 0
        self.dropped = 0
        self.rotations = 0
        self.part = 0
        self.last_error = ""
        self._index = max(self._existing(), default=0)
        self._file = None
        self._size = 0
        self._rows: deque = deque()
        self._closed = False
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._requested = 0  # flush requests made / served (writer side)
        self._served = 0
        self._thread = threading.Thread(target=self._run, name="engine-journal", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------------------- producers (loop)

    def frame(self, epoch: int, recv_ts: int, process_ts: int, raw) -> bool:
        """A market event's frame, embedded verbatim as the row's ``f`` (or, for a frame that is
        not a one-line JSON object, as the string ``d``)."""
        if type(raw) is str:
            body = raw.encode()
        elif raw is None:
            return self._put(b'{"k":"ws","e":%d,"r":%d,"p":%d,"d":null}' % (epoch, recv_ts, process_ts))
        else:
            body = bytes(raw)
        if body[:1] == b"{" and body[-1:] == b"}" and b"\n" not in body and b"\r" not in body:
            return self._put(b'{"k":"ws","e":%d,"r":%d,"p":%d,"f":%b}' % (epoch, recv_ts, process_ts, body))
        return self._put(orjson.dumps({"k": "ws", "e": epoch, "r": recv_ts, "p": process_ts, "d": body.decode("utf-8", "replace")}))

    def event(self, event, extra: dict | None = None) -> bool:
        """A control/trading event after the engine handled it; ``extra`` (optional) is
        written as the row's ``x``: measurements the replay cannot re-create (see the format)."""
        try:
            body = encode_dataclass(event)
            row = {"k": "ev", "p": event.process_ts, **body}
            if extra:
                row["x"] = extra
            return self._put(orjson.dumps(row, default=str))
        except (TypeError, ValueError) as exc:
            self.last_error = f"{type(event).__name__}: {type(exc).__name__}: {exc}"
            self.dropped += 1
            return False

    def obj(self, row: dict) -> bool:
        try:
            return self._put(orjson.dumps(row, default=str))
        except (TypeError, ValueError) as exc:
            self.last_error = f"{row.get('k')}: {type(exc).__name__}: {exc}"
            self.dropped += 1
            return False

    def _put(self, line: bytes) -> bool:
        rows = self._rows
        if self._closed or len(rows) >= self.maxsize:
            self.dropped += 1
            return False
        rows.append(line)
        return True

    @property
    def pending(self) -> int:
        return len(self._rows)

    def files(self) -> list[Path]:
        return [self.directory / f"{self.prefix}-{i:06d}.jsonl" for i in sorted(self._existing())]

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far is written (False on timeout)."""
        if not self._thread.is_alive():
            return not self._rows
        with self._flushed:
            self._requested += 1
            ticket = self._requested
            self._wake.set()
            return self._flushed.wait_for(lambda: self._served >= ticket, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued, close the file and stop the thread."""
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ----------------------------------------------------------------------------- writer thread

    def _existing(self) -> list[int]:
        out = []
        for name in os.listdir(self.directory):
            m = self._pattern.match(name)
            if m:
                out.append(int(m.group(1)))
        return out

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            closing = self._closed
            with self._flushed:
                ticket = self._requested
            self._drain()
            if closing:
                self._close_file()
            with self._flushed:
                self._served = max(self._served, ticket)
                self._flushed.notify_all()
            if closing:
                return

    def _drain(self) -> None:
        rows = self._rows
        while rows:
            batch = []
            size = 0
            pop = rows.popleft
            try:
                while size < (1 << 20):
                    line = pop()
                    batch.append(line)
                    size += len(line) + 1
            except IndexError:
                pass
            try:
                self._write(batch, size)
            except OSError as exc:  # disk full etc.: counted, visible, the loop is unaffected
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.dropped += len(batch)
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"

    def _write(self, batch: list[bytes], size: int) -> None:
        # Rotation happens between rows: fill the current file up to max_bytes, then the next.
        start = 0
        while start < len(batch):
            if self._file is None or self._size >= self.max_bytes:
                self._rotate()
            room = self.max_bytes - self._size
            end = start
            taken = 0
            while end < len(batch) and (taken < room or end == start):
                taken += len(batch[end]) + 1
                end += 1
            chunk = batch[start:end]
            self._file.write(b"\n".join(chunk) + b"\n")
            self._size += taken
            self.rows += len(chunk)
            start = end

    def _rotate(self) -> None:
        if self._file is not None:
            self._close_file()
            self.rotations += 1
        self._index += 1
        self.part += 1
        path = self.directory / f"{self.prefix}-{self._index:06d}.jsonl"
        self._file = open(path, "wb", buffering=1 << 16)
        write_header_v2(self._file, {"venue": self.venue, "source": self.source, "run": self.run, "part": self.part, **self.header})
        self._size = self._file.tell()
        self._prune()

    def _prune(self) -> None:
        indexes = sorted(self._existing())
        for index in indexes[: max(0, len(indexes) - self.keep)]:
            try:
                os.remove(self.directory / f"{self.prefix}-{index:06d}.jsonl")
            except FileNotFoundError:
                pass

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                self._file.close()
                self._file = None
