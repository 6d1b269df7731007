"""Confidence in the local picture: the score, its recent history, and what is lowering it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Digits, ProgressBar, Static

from epochbot.views.snapshot import WorldSnapshot
from epochbot.widgets.spark import ScaledSparkline

__all__ = ["ConfidencePane"]

_LEVEL_CLASSES = ("-ok", "-warn", "-bad")


def confidence_style(score: float) -> str:
    level = confidence_level(score)
    return {"-ok": "$success", "-warn": "$warning"}.get(level, "$error")


def confidence_level(score: float) -> str:
    """CSS class for a score, on the same floors as the default mode thresholds."""
    if score >= 0.8:
        return "-ok"
    if score >= 0.5:
        return "-warn"
    return "-bad"


class ConfidencePane(Vertical):
    """Score as big digits and a gauge, a sparkline of its history, and each reason with its
    measured value and the thresholds it crossed (``Reason.describe()``)."""

    DEFAULT_CSS = """
    ConfidencePane { height: auto; }
    ConfidencePane > #conf-top { height: auto; }
    ConfidencePane #conf-digits { width: auto; }
    ConfidencePane #conf-side { width: 1fr; height: auto; padding-left: 1; }
    ConfidencePane #conf-spark { height: 2; }
    ConfidencePane #conf-reasons { height: auto; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)

    def compose(self) -> ComposeResult:
        with Horizontal(id="conf-top"):
            yield Digits("-.--", id="conf-digits")
            with Vertical(id="conf-side"):
                yield ProgressBar(total=100, show_eta=False, show_percentage=False, id="conf-gauge")
                yield ScaledSparkline(id="conf-spark")
        yield Static("", id="conf-reasons")

    def on_mount(self) -> None:
        self.border_title = "Confidence"

    def watch_snapshot(self, snap: WorldSnapshot | None) -> None:
        if snap is None or not self.is_mounted:
            return
        level = confidence_level(snap.confidence)
        self.remove_class(*_LEVEL_CLASSES)
        self.add_class(level)
        self.query_one("#conf-digits", Digits).update(f"{snap.confidence:.2f}")
        self.query_one("#conf-gauge", ProgressBar).update(progress=round(snap.confidence * 100, 1))
        # On a fixed 0..1 scale: a steady 1.00 is a full green bar, not a red baseline.
        self.query_one("#conf-spark", ScaledSparkline).set_data(snap.confidence_history, 0.0, 1.0, confidence_style)
        self.border_subtitle = f"min {lowest_confidence(snap):.2f}"
        self.query_one("#conf-reasons", Static).update(self._reasons(snap))

    @staticmethod
    def _reasons(snap: WorldSnapshot) -> Content:
        if not snap.reasons:
            return Content.assemble(("no reasons: every input within its warn threshold", "$success"))
        lines = [Content.assemble(("lowered by", "$foreground-muted bold"))]
        for reason in snap.reasons:
            style = "$error" if reason.penalty >= 0.5 else "$warning"
            lines.append(Content.assemble((f"-{reason.penalty:.2f} ", style), reason.describe()))
        return Content("\n").join(lines)


def lowest_confidence(snap: WorldSnapshot) -> float:
    """The lowest confidence seen, never above the current one (the run's minimum counts only
    after the first resynchronisation; before it, the score now and its history are the truth)."""
    if snap.ttcr_ms.get("count"):
        return min(snap.confidence_min, snap.confidence)
    return min([snap.confidence, *snap.confidence_history])
