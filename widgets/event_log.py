"""Structured log lines from the snapshot, filterable by level and by the current epoch.

The snapshot carries a rolling window of the latest log records; each tick only the records
after the last one written are appended (the pane never re-renders the whole log unless a
filter or the theme changes).
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import RichLog

from core.snapshot import LogView, WorldSnapshot
from widgets._format import clock_utc

__all__ = ["EventLog", "LEVEL_FILTERS"]

LEVEL_FILTERS = ("all", "info", "warn", "error")
_RANK = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "critical": 50, "fatal": 50}
_FILTER_MIN = {"all": 0, "info": 20, "warn": 30, "error": 40}
_LEVEL_VAR = {"warn": "warning", "warning": "warning", "error": "error", "critical": "error", "fatal": "error", "info": "primary"}


class EventLog(RichLog):
    """Append-only view of ``snapshot.log`` with a minimum-level and a current-epoch filter."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)
    level_filter: reactive[str] = reactive("all")
    current_epoch_only: reactive[bool] = reactive(False)

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("wrap", False)
        kwargs.setdefault("markup", False)
        kwargs.setdefault("max_lines", 2000)
        super().__init__(**kwargs)
        self._last_written: LogView | None = None
        self._shown: list[LogView] = []

    def on_mount(self) -> None:
        self._update_title()
        self.watch(self.app, "theme", self._rewrite, init=False)

    def watch_snapshot(self, snap: WorldSnapshot | None) -> None:
        if snap is None or not self.is_mounted:
            return
        for record in self._new_records(snap.log):
            if self._passes(record, snap.epoch):
                self.write(self._line(record))
        if snap.log:
            self._last_written = snap.log[-1]

    def watch_level_filter(self) -> None:
        self._rewrite()

    def watch_current_epoch_only(self) -> None:
        self._rewrite()

    def cycle_level(self) -> str:
        """Move to the next level filter (all → info → warn → error → all)."""
        self.level_filter = LEVEL_FILTERS[(LEVEL_FILTERS.index(self.level_filter) + 1) % len(LEVEL_FILTERS)]
        return self.level_filter

    def _new_records(self, log: tuple[LogView, ...]) -> tuple[LogView, ...]:
        last = self._last_written
        if last is None:
            return log
        for index in range(len(log) - 1, -1, -1):
            if log[index] == last:
                return log[index + 1 :]
        return log  # the window moved past everything shown: all of it is new

    def _passes(self, record: LogView, epoch: int) -> bool:
        if _RANK.get(record.level.lower(), 20) < _FILTER_MIN[self.level_filter]:
            return False
        return not (self.current_epoch_only and record.epoch != epoch)

    def _line(self, record: LogView) -> Text:
        colours = self.app.theme_variables
        level = record.level.lower()
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(clock_utc(record.ts_ns), style=colours.get("foreground-muted", ""))
        line.append(f" {level.upper():<5}", style=f"bold {colours.get(_LEVEL_VAR.get(level, 'foreground'), '')}")
        line.append(f" e{record.epoch:<3}", style=colours.get("accent", ""))
        line.append(f" {record.msg}")
        if record.fields:
            line.append(f"  {record.fields}", style=colours.get("foreground-muted", ""))
        return line

    def _rewrite(self) -> None:
        self._update_title()
        if not self.is_mounted:
            return
        self.clear()
        snap = self.snapshot
        if snap is None:
            return
        for record in snap.log:
            if self._passes(record, snap.epoch):
                self.write(self._line(record))
        self._last_written = snap.log[-1] if snap.log else None

    def _update_title(self) -> None:
        scope = "current epoch" if self.current_epoch_only else "all epochs"
        self.border_title = f"Log · level {self.level_filter} · {scope}"
