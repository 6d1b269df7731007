"""The strategy core in a child process, for the dashboard.

Why: Textual renders in Python and holds the GIL in long stretches; a core thread in the same
process waits for it, and its queue delay shows it (bench/dashboard_queue_delay.py: p99 of
25-250 ms with a thread or async worker at 2,000 depth messages/s, 1-7 ms in a process). So
the dashboard's core runs in its own interpreter and the UI receives its snapshots.

Protocol, two one-way pipes:

* child -> parent: ``("snapshot", WorldSnapshot)`` at the runtime's publish rate (the newest
  one only: a sender thread coalesces, so a slow UI never backs the core up), ``("error",
  text)`` if the core raised, then ``("exit", code)``.
* parent -> child: operator control events, pickled as they are. End of file (the parent went
  away, even by SIGKILL) is a stop request: the core never outlives its console.

The child ignores SIGINT (Ctrl+C belongs to the console, which stops the core in order) and
writes nothing to the terminal.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import traceback
from contextlib import AsyncExitStack
from typing import Any

from epochbot.model.events import ShutdownRequested

__all__ = ["ProcessSource"]


class ProcessSource:
    """`epochbot.app.console.tui.SnapshotSource` over a core running in a child process."""

    def __init__(self, settings: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._snapshots, child_snapshots = ctx.Pipe(duplex=False)
        child_control, self._control = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child_main, args=(settings, child_snapshots, child_control), name="epochbot-core", daemon=True
        )
        self._child_ends = (child_snapshots, child_control)
        self._latest = None
        self._send_lock = threading.Lock()
        self.error: str | None = None
        self.started = False
        self.finished = threading.Event()

    def start(self) -> None:
        """Spawn the core. Call it before Textual takes the terminal: Textual replaces
        sys.stdout/stderr with objects that have no file descriptor, and spawning needs them."""
        if self._process.pid is not None:
            return
        self._process.start()
        for end in self._child_ends:
            end.close()  # the child holds them now; our copies would hide its exit

    def serve(self) -> int:
        """Relay the core's snapshots until it exits; returns its exit code."""
        self.started = True
        code: int | None = None
        try:
            self.start()
            while True:
                try:
                    kind, payload = self._snapshots.recv()
                except (EOFError, OSError):
                    break
                if kind == "snapshot":
                    self._latest = payload
                elif kind == "error":
                    self.error = payload
                elif kind == "exit":
                    code = payload
            self._process.join(timeout=15)
            if code is None:
                code = self._process.exitcode if self._process.exitcode is not None else 1
            return code
        finally:
            self.finished.set()

    def latest(self):
        return self._latest

    def submit(self, event: Any) -> None:
        with self._send_lock:
            try:
                self._control.send(event)
            except (OSError, ValueError):
                pass  # the core is gone; serve() reports how it ended

    def request_stop(self, reason: str) -> None:
        self.submit(ShutdownRequested(reason=reason))


def _child_main(settings, snapshots, control) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = 1
    try:
        code = _run_core(settings, snapshots, control)
    except BaseException:  # noqa: BLE001 - whatever ended the core is reported to the console
        try:
            snapshots.send(("error", traceback.format_exc(limit=8)))
        except (OSError, ValueError):
            pass
    finally:
        try:
            snapshots.send(("exit", code))
            snapshots.close()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _run_core(settings, snapshots, control) -> int:
    return asyncio.run(_serve_core(settings, snapshots, control))


async def _serve_core(settings, snapshots, control) -> int:
    from epochbot.app.config import to_runtime_config
    from epochbot.app.embedded_sim import start_runtime

    async with AsyncExitStack() as stack:  # the embedded simulator, when the venue is "sim"
        runtime, _ = await start_runtime(to_runtime_config(settings), stack)
        return await _relay(runtime, snapshots, control)


async def _relay(runtime, snapshots, control) -> int:
    newest: list = [None]
    ready = threading.Condition()
    done = threading.Event()

    def on_snapshot(snapshot) -> None:  # in the core's loop: hand over, never wait
        with ready:
            newest[0] = snapshot
            ready.notify()

    def sender() -> None:
        while True:
            with ready:
                while newest[0] is None and not done.is_set():
                    ready.wait(0.5)
                snapshot, newest[0] = newest[0], None
                finished = done.is_set()
            if snapshot is not None:
                try:
                    snapshots.send(("snapshot", snapshot))
                except (OSError, ValueError):
                    return
            elif finished:
                return

    def receiver() -> None:
        while True:
            try:
                event = control.recv()
            except (EOFError, OSError):
                runtime.request_stop("console went away")
                return
            runtime.submit(event)

    runtime.add_snapshot_listener(on_snapshot)
    threading.Thread(target=sender, name="snapshot-sender", daemon=True).start()
    threading.Thread(target=receiver, name="control-receiver", daemon=True).start()
    try:
        return await runtime.run()
    finally:
        if runtime.latest is not None:
            on_snapshot(runtime.latest)
        done.set()
        with ready:
            ready.notify()
        # Let the sender deliver the final snapshot before the exit message.
        for thread in threading.enumerate():
            if thread.name == "snapshot-sender":
                thread.join(timeout=2)
