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


class EngineJournal(QueueThread):
    """Version 2 of the journal: every input of the engine, in the order it consumed it.

    The strategy loop calls ``frame`` (a market event's raw frame, with the epoch, receive and
    process timestamps the engine saw), ``event`` (any control or trading event, after the
    engine handled it, so its ``process_ts`` is set) and ``obj`` (driver rows: ``start``,
    ``trading``, ``history``). They only enqueue; encoding and writing happen on the writer
    thread. One process run writes one *run* (``run`` id in every file header); its files are
    ``{prefix}-{n:06d}.jsonl`` with ``part`` 1, 2, ... (rotation at ``max_bytes``); numbering
    continues after existing files, so a restart adds a run and never overwrites one. Only the
    newest ``keep`` files are kept. See docs/capture-format.md.
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
        maxsize: int = 200_000,
        flush_interval_s: float = 0.5,
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
        self.flush_interval_s = flush_interval_s
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{6}})\.jsonl$")
        self.rows = 0
        self.rotations = 0
        self.part = 0
        self.last_error = ""
        self._index = max(self._existing(), default=0)
        self._file = None
        self._size = 0
        super().__init__(maxsize=maxsize, name="engine-journal")

    # ----------------------------------------------------------------------------- producers

    def frame(self, epoch: int, recv_ts: int, process_ts: int, raw) -> bool:
        return self._enqueue((0, epoch, recv_ts, process_ts, raw))

    def event(self, event, extra: dict | None = None) -> bool:
        """A control/trading event after the engine handled it; ``extra`` (optional) is
        written as the row's ``x``: measurements the replay cannot re-create (see the format)."""
        return self._enqueue((1, event, extra))

    def obj(self, row: dict) -> bool:
        return self._enqueue((2, row))

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
                self._write(self._encode(item))
            except OSError as exc:  # disk full etc.: counted, visible, the loop is unaffected
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.dropped += 1
            except (TypeError, ValueError) as exc:  # an input we cannot encode: counted, named
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.dropped += 1

    @staticmethod
    def _encode(item: tuple) -> bytes:
        tag = item[0]
        if tag == 0:
            _, epoch, recv, proc, raw = item
            if type(raw) is not str:
                raw = bytes(raw).decode("utf-8", "replace")
            return orjson.dumps({"k": "ws", "e": epoch, "r": recv, "p": proc, "d": raw})
        if tag == 1:
            _, event, extra = item
            body = encode_dataclass(event)
            if extra:
                return orjson.dumps({"k": "ev", "p": event.process_ts, **body, "x": extra})
            return orjson.dumps({"k": "ev", "p": event.process_ts, **body})
        return orjson.dumps(item[1])

    def _write(self, line: bytes) -> None:
        if self._file is None or self._size >= self.max_bytes:
            self._rotate()
        self._file.write(line)
        self._file.write(b"\n")
        self._size += len(line) + 1
        self.rows += 1

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

    def _flush_file(self) -> None:
        if self._file is not None:
            self._file.flush()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
