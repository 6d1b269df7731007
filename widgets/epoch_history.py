"""Epoch history (newest first) with resync phase timings, and the per-symbol book resyncs."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Label

from epochbot.views.snapshot import BookResyncView, EpochView, WorldSnapshot
from epochbot.widgets._format import clock_utc, duration, ms

__all__ = ["EpochHistory"]

PHASES = ("dial", "subscribe", "snapshot", "rebuild", "validate")
CAUSE_WIDTH = 28


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


class EpochHistory(Vertical):
    """Two tables: epochs (cause of replacement, time-to-correct-resync and its phases) and
    book resyncs. Rows are rebuilt only when the underlying tuples change."""

    DEFAULT_CSS = """
    EpochHistory { height: 1fr; }
    EpochHistory > DataTable { height: 1fr; }
    EpochHistory > #epochs-table { height: 1fr; min-height: 3; }
    EpochHistory > #resyncs-table { height: auto; max-height: 4; }
    EpochHistory > .table-title { margin-top: 0; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown_epochs: tuple[EpochView, ...] | None = None
        self._shown_resyncs: tuple[BookResyncView, ...] | None = None
        self._shown_at: int = 0

    def compose(self) -> ComposeResult:
        epochs: DataTable[Any] = DataTable(id="epochs-table", cursor_type="none", zebra_stripes=True)
        # Timings first, the free-text cause last (cut to fit): a long cause never pushes the
        # numbers off-screen; the log has it in full.
        epochs.add_columns("epoch", "opened", "lasted", "resync ms", *PHASES, "replaced by")
        yield epochs
        yield Label("book resyncs", classes="table-title")
        resyncs: DataTable[Any] = DataTable(id="resyncs-table", cursor_type="none", zebra_stripes=True)
        resyncs.add_columns("symbol", "at (UTC)", "resync ms", "epoch", "cause")
        yield resyncs

    def on_mount(self) -> None:
        self.border_title = "Epochs"

    def watch_snapshot(self, snap: WorldSnapshot | None) -> None:
        if snap is None or not self.is_mounted:
            return
        # The open epoch's duration grows with the snapshot clock: refresh about once a second.
        if snap.epochs is not self._shown_epochs and (
            snap.epochs != self._shown_epochs or snap.at_ns - self._shown_at >= 1_000_000_000
        ):
            self._fill_epochs(snap)
        if snap.book_resyncs != self._shown_resyncs:
            self._fill_resyncs(snap.book_resyncs)
        if snap.ttcr_ms.get("count"):
            self.border_subtitle = f"ttcr p50 {ms(snap.ttcr_ms.get('p50'))} p99 {ms(snap.ttcr_ms.get('p99'))} ms"
        else:
            self.border_subtitle = "ttcr — (nothing measured yet)"

    def _fill_epochs(self, snap: WorldSnapshot) -> None:
        table = self.query_one("#epochs-table", DataTable)
        table.clear()
        for e in reversed(snap.epochs):
            end = e.closed_at_ns or snap.at_ns
            phases = [ms(e.phases_ms.get(p)) if e.phases_ms.get(p) else "-" for p in PHASES]
            table.add_row(
                str(e.epoch),
                clock_utc(e.opened_at_ns)[:8],
                duration(end - e.opened_at_ns) if e.opened_at_ns else "-",
                ms(e.resync_ms),
                *phases,
                clip(e.close_cause or ("(current)" if not e.closed_at_ns else "-"), CAUSE_WIDTH),
                key=str(e.epoch),
            )
        self._shown_epochs = snap.epochs
        self._shown_at = snap.at_ns

    def _fill_resyncs(self, resyncs: tuple[BookResyncView, ...]) -> None:
        table = self.query_one("#resyncs-table", DataTable)
        table.clear()
        for r in reversed(resyncs):
            table.add_row(r.symbol, clock_utc(r.at_ns)[:8], ms(r.resync_ms), str(r.epoch), clip(r.cause, CAUSE_WIDTH))
        if not resyncs:
            table.add_row("-", "", "", "", "no book resyncs")
        self._shown_resyncs = resyncs
