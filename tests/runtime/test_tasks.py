"""Task supervision: a task that raises is reported by name; one cancelled is not; all end together."""

from __future__ import annotations

import asyncio

from epochbot.runtime.tasks import TaskSupervisor


async def test_a_task_that_raises_is_reported_with_its_name_and_exception():
    failures: list = []
    tasks = TaskSupervisor(lambda name, exc: failures.append((name, exc)))

    async def broken():
        raise KeyError("gone")

    task = tasks.spawn(broken(), "reader-e1")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # the done callback runs on the next iteration

    assert [(name, type(exc)) for name, exc in failures] == [("reader-e1", KeyError)]
    assert tasks.running() == []


async def test_a_cancelled_task_is_not_a_failure_and_cancel_all_ends_every_task():
    failures: list = []
    tasks = TaskSupervisor(lambda name, exc: failures.append(name))
    started = asyncio.Event()

    async def forever():
        started.set()
        await asyncio.Event().wait()

    tasks.spawn(forever(), "a")
    tasks.spawn(forever(), "b")
    await started.wait()

    await tasks.cancel_all()
    await asyncio.sleep(0)

    assert tasks.running() == [] and failures == []
