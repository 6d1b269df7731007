"""Formatting shared by the panes: times come from the snapshot's own nanoseconds, never now()."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["clock_utc", "duration", "ms", "strictness_class"]

_STRICTNESS_CLASS = {
    "normal": "-mode-normal",
    "reduce-only": "-mode-reduce-only",
    "cancel-makers": "-mode-cancel-makers",
    "halted": "-mode-halted",
}
MODE_CLASSES = tuple(_STRICTNESS_CLASS.values())


def clock_utc(ns: int) -> str:
    """Nanoseconds since the epoch -> ``HH:MM:SS.mmm`` (UTC); ``-`` for 0."""
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def duration(ns: int) -> str:
    """A span in nanoseconds as ``1.234s`` / ``2m03s`` / ``1h02m``."""
    if ns <= 0:
        return "-"
    seconds = ns / 1e9
    if seconds < 60:
        return f"{seconds:.3f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def ms(value: float | None) -> str:
    """Milliseconds with sensible precision; ``-`` when unknown."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def strictness_class(mode: str) -> str:
    """CSS class that colours a mode by how strict it is."""
    return _STRICTNESS_CLASS.get(mode, "-mode-halted")
