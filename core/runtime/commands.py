"""Command routing: each command the engine returns goes to the part that executes it, by type.

The table is built by the runtime's wiring (`epochbot.runtime.runtime.Runtime`) from the parts'
methods: sessions (``ReplaceSession``, ``CloseConnection``, ``Subscribe``/``Unsubscribe``), the
snapshot fetcher (``FetchSnapshot``), the probe (``ProbeVenue``) and the trading session (order
commands, to the gateway). ``Stop`` is not routed: it ends the strategy loop, and `execute`
returns its exit code. A command without a handler is logged, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from epochbot.model import events as ev
from epochbot.runtime.publish import RuntimeLog

__all__ = ["CommandRouter"]


class CommandRouter:
    def __init__(self, handlers: Mapping[type, Callable[[Any], None]], *, log: RuntimeLog) -> None:
        if ev.Stop in handlers:
            raise ValueError("Stop ends the loop; it has no handler")
        self.handlers = dict(handlers)
        self.log = log
        self.exit_code: int | None = None

    def execute(self, commands: Iterable) -> int | None:
        """Execute ``commands`` in order; the exit code when one of them is ``Stop`` (the rest
        are not executed), else None."""
        handlers = self.handlers
        for command in commands:
            kind = type(command)
            handler = handlers.get(kind)
            if handler is not None:
                handler(command)
            elif kind is ev.Stop:
                self.exit_code = command.exit_code
                return command.exit_code
            else:
                self.log("warn", "command not supported by this runtime", command=kind.__name__)
        return None
