"""Journals: `EngineJournal` (version 2, what the runtime records: every engine input in the
order the engine consumed it) and `CaptureJournal` (version 1: frames and REST answers in
receive order, for tools that record a venue without an engine).

`CaptureJournal`: an optional recorder of every inbound frame and REST response.

Rows use the capture format (``../shared/captures/FORMAT.md``, via `epochbot.model.capture.write_header`
and `write_row`) plus an ``epoch`` field, so any journal file replays with ``epochbot.offline.replay``.

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
import time
from pathlib import Path
from typing import BinaryIO

import orjson

from epochbot.model.capture import encode_dataclass, write_header, write_row
from epochbot.persistence.writer import STOP, Flush, QueueThread

__all__ = ["CaptureJournal", "EngineJournal"]


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
        self._file: BinaryIO | None = None
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
            if item is STOP:
                self._flush_file()
                self._close_file()
                return
            if type(item) is Flush:
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
        file = self._file
        if file is None or self._size >= self.max_bytes:
            file = self._rotate(carry_open=kind != "open")
        before = file.tell()
        write_row(file, ts, kind, data, url, epoch)
        self._size += file.tell() - before
        self.rows += 1

    def _rotate(self, carry_open: bool) -> BinaryIO:
        if self._file is not None:
            self._close_file()
            self.rotations += 1
        self._index += 1
        path = self.directory / f"{self.prefix}-{self._index:06d}.jsonl"
        file = self._file = open(path, "wb", buffering=1 << 16)
        write_header(file, self.venue, self.source)
        if carry_open and self._last_open is not None:
            ts, url, epoch = self._last_open
            write_row(file, ts, "open", "", url, epoch)
        self._size = file.tell()
        self._prune()
        return file

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
    ``trading``, ``history``). Each encodes its row right there (a market row is a few byte
    concatenations: the frame is embedded verbatim) and appends it to a batch; once the batch
    holds ``batch_bytes`` (64 kB) or is ``flush_interval_s`` old it is written with one ``os.write``
    to the page cache (~0.1-0.2 ms for 64 kB). There is deliberately no writer thread: on a busy
    machine a second thread taking the GIL is what delays the loop (a descheduled GIL holder
    stalls it for a whole time slice); see bench/queue_delay.py --compare. The durable part
    (fsync) runs off the loop, in a short-lived thread, when a file is complete; ``close()``
    writes the rest and fsyncs. A write error never reaches the loop: the rows are counted in
    ``dropped`` (that run then does not replay exactly) and ``last_error`` says why.

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
        batch_bytes: int = 64 * 1024,
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
        self.batch_bytes = batch_bytes
        self.flush_interval_s = flush_interval_s
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{6}})\.jsonl$")
        self.rows = 0
        self.dropped = 0
        self.rotations = 0
        self.part = 0
        self.last_error = ""
        self._index = max(self._existing(), default=0)
        self._fd: int | None = None
        self._size = 0
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._batch_since = time.monotonic()
        self._closed = False
        self._syncers: list[threading.Thread] = []

    # ----------------------------------------------------------------------------- producers (loop)

    def frame(self, epoch: int, recv_ts: int, process_ts: int, raw) -> bool:
        """A market event's frame, embedded verbatim as the row's ``f`` (or, for a frame that is
        not a one-line JSON object, as the string ``d``)."""
        if type(raw) is str:
            if raw[:1] == "{" and raw[-1:] == "}" and "\n" not in raw and "\r" not in raw:
                return self._put(b'{"k":"ws","e":%d,"r":%d,"p":%d,"f":%b}' % (epoch, recv_ts, process_ts, raw.encode()))
            text = raw
        elif raw is None:
            return self._put(b'{"k":"ws","e":%d,"r":%d,"p":%d,"d":null}' % (epoch, recv_ts, process_ts))
        else:
            body = bytes(raw)
            if body[:1] == b"{" and body[-1:] == b"}" and b"\n" not in body and b"\r" not in body:
                return self._put(b'{"k":"ws","e":%d,"r":%d,"p":%d,"f":%b}' % (epoch, recv_ts, process_ts, body))
            text = body.decode("utf-8", "replace")
        return self._put(orjson.dumps({"k": "ws", "e": epoch, "r": recv_ts, "p": process_ts, "d": text}))

    def event(self, event, extra: dict | None = None) -> bool:
        """A control/trading event after the engine handled it; ``extra`` (optional) is
        written as the row's ``x``: measurements the replay cannot re-create (see the format)."""
        try:
            body = encode_dataclass(event)
            row = {"k": "ev", "p": event.process_ts, **body}
            if extra:
                row["x"] = extra
            return self._put(orjson.dumps(row))
        except (TypeError, ValueError) as exc:
            self.last_error = f"{type(event).__name__}: {type(exc).__name__}: {exc}"
            self.dropped += 1
            return False

    def obj(self, row: dict) -> bool:
        try:
            return self._put(orjson.dumps(row))
        except (TypeError, ValueError) as exc:
            self.last_error = f"{row.get('k')}: {type(exc).__name__}: {exc}"
            self.dropped += 1
            return False

    def _put(self, line: bytes) -> bool:
        if self._closed:
            self.dropped += 1
            return False
        self._batch.append(line)
        self._batch_size += len(line) + 1
        if self._batch_size >= self.batch_bytes or time.monotonic() - self._batch_since >= self.flush_interval_s:
            self._write_batch()
        return True

    @property
    def pending(self) -> int:
        return len(self._batch)

    def files(self) -> list[Path]:
        return [self.directory / f"{self.prefix}-{i:06d}.jsonl" for i in sorted(self._existing())]

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything recorded so far (to the page cache); True unless a write failed."""
        before = self.dropped
        self._write_batch()
        return self.dropped == before

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is batched, fsync and close the file; True when all of it is durable."""
        if self._closed:
            return True
        self._write_batch()
        self._closed = True
        ok = self._sync_close(self._fd)
        self._fd = None
        for thread in self._syncers:
            thread.join(timeout)
        return ok and not any(t.is_alive() for t in self._syncers)

    # ----------------------------------------------------------------------------- files

    def _existing(self) -> list[int]:
        out = []
        for name in os.listdir(self.directory):
            m = self._pattern.match(name)
            if m:
                out.append(int(m.group(1)))
        return out

    def _write_batch(self) -> None:
        batch = self._batch
        self._batch_since = time.monotonic()
        if not batch:
            return
        self._batch = []
        self._batch_size = 0
        try:
            start = 0
            while start < len(batch):
                # Rotation happens between rows: fill the file up to max_bytes, then the next.
                fd = self._fd
                if fd is None or self._size >= self.max_bytes:
                    fd = self._rotate()
                room = self.max_bytes - self._size
                end, taken = start, 0
                while end < len(batch) and (taken < room or end == start):
                    taken += len(batch[end]) + 1
                    end += 1
                data = b"\n".join(batch[start:end]) + b"\n"
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self._size += taken
                self.rows += end - start
                start = end
        except OSError as exc:  # disk full etc.: counted, visible, the loop is unaffected
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.dropped += len(batch) - start

    def _rotate(self) -> int:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            thread = threading.Thread(target=self._sync_close, args=(fd,), name="journal-fsync", daemon=True)
            thread.start()
            self._syncers = [t for t in self._syncers if t.is_alive()] + [thread]
            self.rotations += 1
        self.part += 1
        while True:  # never truncate a file: another process may be writing this directory too
            self._index += 1
            path = self.directory / f"{self.prefix}-{self._index:06d}.jsonl"
            try:
                fd = self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                continue
        header = (
            orjson.dumps(
                {
                    "capture": 2,
                    "venue": self.venue,
                    "source": self.source,
                    "run": self.run,
                    "part": self.part,
                    **self.header,
                }
            )
            + b"\n"
        )
        os.write(fd, header)
        self._size = len(header)
        self._prune()
        return fd

    def _prune(self) -> None:
        indexes = sorted(self._existing())
        for index in indexes[: max(0, len(indexes) - self.keep)]:
            try:
                os.remove(self.directory / f"{self.prefix}-{index:06d}.jsonl")
            except FileNotFoundError:
                pass

    def _sync_close(self, fd: int | None) -> bool:
        if fd is None:
            return True
        try:
            os.fsync(fd)
            return True
        except OSError as exc:
            self.last_error = f"fsync: {type(exc).__name__}: {exc}"
            return False
        finally:
            os.close(fd)
