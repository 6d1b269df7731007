"""Task supervision: every background task of the runtime is spawned here, by name, and watched.

A task that ends by cancellation is simply forgotten. A task that raises is a bug in an I/O
part (they report venue trouble as events, never by raising): ``on_failure`` is called with
its name and exception, and the runtime logs it and reports a disconnect, so the engine
repairs its state (a new session) instead of carrying on blind. `cancel_all` ends what is
still running, at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["TaskSupervisor"]


class TaskSupervisor:
    def __init__(self, on_failure: Callable[[str, BaseException], None]) -> None:
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def running(self) -> list[asyncio.Task]:
        return [task for task in self._tasks if not task.done()]

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._on_failure(task.get_name(), exc)

    async def cancel_all(self) -> None:
        """Cancel every task still running and wait for them to end."""
        tasks = self.running()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
