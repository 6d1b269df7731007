"""The ``?`` screen: every key of the console, the remapped ones as remapped, and what it does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

__all__ = ["HelpScreen"]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 60%; }
    HelpScreen > #help {
        width: 95%; max-width: 140; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; color: $primary; }
    HelpScreen #help-hint { color: $foreground-muted; }
    HelpScreen DataTable { height: 1fr; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close", show=True)]

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """``rows``: (key, action title, what it does)."""
        super().__init__()
        self.rows = tuple(rows)

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("epochbot keys", id="help-title")
            table: DataTable[Any] = DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("key", "action", "what it does")
            for key, title, what in self.rows:
                table.add_row(key, title, what)
            yield table
            yield Label("escape / ? / q: close · every action is also in the palette (ctrl+p)", id="help-hint")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
