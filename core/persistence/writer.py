"""`StorageWriter`: records in on a bounded queue, batched transactions out, on its own thread.

The strategy loop calls ``submit(record)``; it never blocks: when the queue is full the record
is dropped, counted in ``dropped`` and ``submit`` returns False (the runtime should surface a
growing count as a write failure / lowered confidence, never silently). The writer thread takes
up to ``batch_size`` records at a time and writes them in one committed (fsynced) transaction.
A failed batch is counted in ``failed_batches``/``lost`` with ``last_error`` kept; the thread
keeps going so a transient "database is locked" cannot wedge it, and ``healthy`` turns False.

``flush(timeout)`` waits until everything submitted before it is committed; ``close(timeout)``
flushes and stops the thread (graceful shutdown). Both are for the runtime's shutdown path,
not the loop.
"""

from __future__ import annotations

import queue
import threading

__all__ = ["STOP", "Flush", "QueueThread", "StorageWriter"]

STOP = object()  # sentinel: the writer thread drains what is queued, then exits


class Flush:
    """A flush request: the writer sets ``done`` once everything queued before it is written.

    ``callback(ok)`` (optional) runs on the writer thread right after; ``ok`` is False when a
    batch failed between the request and its completion (what was queued may be lost).
    """

    __slots__ = ("done", "callback", "failed_at")

    def __init__(self, callback=None, failed_at: int = 0) -> None:
        self.done = threading.Event()
        self.callback = callback
        self.failed_at = failed_at


class QueueThread:
    """A bounded queue drained by one background thread: producers never block.

    ``_enqueue`` drops (and counts) an item when the queue is full or closed; ``flush`` waits for
    everything enqueued before it; ``close`` flushes and stops the thread. Subclasses implement
    ``_run`` (taking items, `Flush` markers and the `STOP` sentinel from ``self._queue``).
    """

    def __init__(self, *, maxsize: int, name: str, start: bool = True) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        if start:
            self._thread.start()

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _enqueue(self, item) -> bool:
        """Enqueue without blocking; False (and counted) when full or closed."""
        if self._closed:
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything enqueued so far is written (False on timeout)."""
        if not self._thread.is_alive():
            return self._queue.empty()
        marker = Flush()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Flush and stop the thread; True when it finished in time."""
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        if not self._thread.is_alive():
            return True
        try:
            self._queue.put(STOP, timeout=timeout)
        except queue.Full:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class StorageWriter(QueueThread):
    def __init__(
        self, storage, *, maxsize: int = 10_000, batch_size: int = 256, name: str = "storage-writer", start: bool = True
    ) -> None:
        self.storage = storage
        self.batch_size = batch_size
        self.written = 0
        self.batches = 0
        self.failed_batches = 0
        self.lost = 0
        self.last_error = ""
        super().__init__(maxsize=maxsize, name=name, start=start)

    @property
    def healthy(self) -> bool:
        return self.failed_batches == 0

    def submit(self, record) -> bool:
        """Enqueue without blocking; False (and counted) when full or closed."""
        return self._enqueue(record)

    def barrier(self, callback) -> bool:
        """Call ``callback(ok)`` on the writer thread once everything submitted before it is
        committed (fsynced): ``ok`` is True only if no batch failed meanwhile. Never blocks;
        False (callback never called) when the queue is full or closed.

        This is the write-ahead seam: the order gateway sends nothing until the journal row
        of the order is durable (see `epochbot.runtime.order_gateway.OrderGateway.write_ahead`).
        """
        if self._closed or not self._thread.is_alive():
            return False
        try:
            self._queue.put_nowait(Flush(callback, self.failed_batches))
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            batch: list = []
            markers: list[Flush] = []
            stop = False
            while True:
                if item is STOP:
                    stop = True
                elif type(item) is Flush:
                    markers.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= self.batch_size:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for marker in markers:
                marker.done.set()
                if marker.callback is not None:
                    try:
                        marker.callback(self.failed_batches == marker.failed_at)
                    except Exception as exc:  # noqa: BLE001 - a closed event loop: nobody waits any more
                        self.last_error = f"barrier callback: {type(exc).__name__}: {exc}"
            if stop:
                return

    def _write(self, batch: list) -> None:
        try:
            self.storage.write_batch(batch)
        except Exception as exc:  # noqa: BLE001 - counted and exposed; the runtime decides what it means
            self.failed_batches += 1
            self.lost += len(batch)
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        self.written += len(batch)
        self.batches += 1
