"""The real clock: the one place in the core (the simulator aside) that reads the wall clock.

Everything that needs the time takes a clock, a callable returning Unix nanoseconds: the engine,
the transport, the order gateway, the venue clients and their signing timestamps. The runtime is
built with this one by default and hands it (with the venue's measured server-time offset where a
request is signed) to every part it starts; replay, the backtest and tests pass their own. A
default of ``wall_ns`` on a lower-level client is only for standalone use (tools, benchmarks).
`tests/core/test_layers.py` checks that no other core module reads the wall clock directly.
"""

from __future__ import annotations

import time

__all__ = ["wall_ns"]


def wall_ns() -> int:
    """Now, in Unix nanoseconds (the wall clock: can step; use `time.monotonic` for durations)."""
    return time.time_ns()
