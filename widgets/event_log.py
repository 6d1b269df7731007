"""Structured log lines from the snapshot, filterable by level and by the current epoch.

The snapshot carries a rolling window of the latest log records; each tick only the records
after the last one written are appended (the pane never re-renders the whole log unless a
filter, the theme or its width changes).

The log follows the newest line unless the operator scrolled back (then the subtitle says so and
``end`` follows again). Lines wrap at the pane's width, so a long line is read in full at any
terminal size.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widgets import RichLog

from epochbot.views.snapshot import LogView, WorldSnapshot
from epochbot.widgets._format import clock_utc

__all__ = ["EventLog", "LEVEL_FILTERS"]

LEVEL_FILTERS = ("all", "info", "warn", "error")
_RANK = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "critical": 50, "fatal": 50}
_FILTER_MIN = {"all": 0, "info": 20, "warn": 30, "error": 40}
_LEVEL_VAR = {
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "critical": "error",
    "fatal": "error",
    "info": "primary",
}


class EventLog(RichLog):
    """Append-only view of ``snapshot.log`` with a minimum-level and a current-epoch filter."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    EventLog.pane { overflow-x: hidden; overflow-y: auto; }
    """
    BINDINGS = [("end", "follow", "follow")]

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)
    level_filter: reactive[str] = reactive("info")  # debug (order lifecycle) only on request
    current_epoch_only: reactive[bool] = reactive(False)

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("wrap", True)
        kwargs.setdefault("markup", False)
        kwargs.setdefault("max_lines", 2000)
        kwargs.setdefault("min_width", 20)
        super().__init__(**kwargs)
        self._last_written: LogView | None = None
        self._shown: list[LogView] = []
        self._width = 0
        self._follow = True
        self.records_shown = 0  # log records on screen (a wrapped record takes several lines)

    def on_mount(self) -> None:
        self._update_title()
        self.watch(self.app, "theme", self._rewrite, init=False)

    @property
    def following(self) -> bool:
        """True unless the operator scrolled back from the newest line."""
        return self._follow

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Writes only ever scroll down (to the end); moving up is the operator scrolling back,
        # reaching the end again resumes following. (Scroll-to-end happens after a refresh, so
        # "are we at the end now?" is the wrong question while lines are being written.)
        if new_value >= self.max_scroll_y - 1:
            self._follow = True
        elif new_value < old_value:
            self._follow = False

    def watch_snapshot(self, snap: WorldSnapshot | None) -> None:
        if snap is None or not self.is_mounted:
            return
        follow = self.following
        for record in self._new_records(snap.log):
            if self._passes(record, snap.epoch):
                self.write(self._line(record), scroll_end=follow)
                self.records_shown += 1
        if snap.log:
            self._last_written = snap.log[-1]
        self._update_subtitle(follow)

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            self._rewrite()  # wrapped lines are laid out for one width

    def action_follow(self) -> None:
        self._follow = True
        self.scroll_end(animate=False)
        self._update_subtitle(True)

    def _update_subtitle(self, follow: bool) -> None:
        self.border_subtitle = "" if follow else "scrolled back · end: follow"

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
        line = Text(overflow="fold")
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
        follow = self.following
        self.clear()
        self.records_shown = 0
        snap = self.snapshot
        if snap is None:
            return
        for record in snap.log:
            if self._passes(record, snap.epoch):
                self.write(self._line(record), scroll_end=follow)
                self.records_shown += 1
        self._last_written = snap.log[-1] if snap.log else None

    def _update_title(self) -> None:
        scope = "current epoch" if self.current_epoch_only else "all epochs"
        self.border_title = f"Log · level {self.level_filter} · {scope}"
