"""The one-line header: venue, epoch, confidence and mode, always visible."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label

from epochbot.views.snapshot import WorldSnapshot
from epochbot.widgets._format import MODE_CLASSES, strictness_class

__all__ = ["StatusHeader"]


class StatusHeader(Horizontal):
    """Venue · ``epoch N`` · confidence · mode, plus the selected symbol and pause/fatal flags."""

    DEFAULT_CSS = """
    StatusHeader { height: 1; }
    StatusHeader > Label { width: auto; padding: 0 1; }
    StatusHeader > #hdr-spacer { width: 1fr; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)
    symbol: reactive[str] = reactive("")
    venue: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Label("epochbot", id="hdr-title")
        yield Label("", id="hdr-venue")
        yield Label("epoch -", id="hdr-epoch")
        yield Label("confidence -", id="hdr-confidence")
        yield Label("mode -", id="hdr-mode")
        yield Label("", id="hdr-flags")
        yield Label("", id="hdr-spacer")
        yield Label("", id="hdr-symbol")

    def watch_venue(self, venue: str) -> None:
        self._render_header()

    def watch_symbol(self, symbol: str) -> None:
        self._render_header()

    def watch_snapshot(self, snapshot: WorldSnapshot | None) -> None:
        self._render_header()

    def _render_header(self) -> None:
        if not self.is_mounted:
            return
        snap = self.snapshot
        self.query_one("#hdr-venue", Label).update(snap.venue if snap else (self.venue or "connecting…"))
        self.query_one("#hdr-symbol", Label).update(self.symbol)
        if snap is None:
            return
        self.query_one("#hdr-epoch", Label).update(f"epoch {snap.epoch}")
        conf = self.query_one("#hdr-confidence", Label)
        conf.update(f"confidence {snap.confidence:.2f}")
        conf.set_class(snap.confidence < 0.8, "-warn")
        conf.set_class(snap.confidence < 0.5, "-bad")
        mode = self.query_one("#hdr-mode", Label)
        mode.update(f"mode {snap.mode.mode}")
        mode.remove_class(*MODE_CLASSES)
        mode.add_class(strictness_class(snap.mode.mode))
        flags = []
        if snap.mode.paused:
            flags.append("PAUSED")
        if not snap.session_open:
            flags.append("SESSION DOWN")
        if snap.fatal:
            flags.append(f"FATAL: {snap.fatal}")
        from epochbot.widgets.mode_risk import strategy_state

        state, _style = strategy_state(snap)
        if state.startswith("BLOCKED"):
            flags.append("TRADING BLOCKED")
        flag_label = self.query_one("#hdr-flags", Label)
        flag_label.update(" · ".join(flags))
        flag_label.display = bool(flags)
