"""Modal asking the operator to confirm a trading action (cancel all orders, flatten).

Dismisses with True on ``y`` / the confirm button, False on ``n`` / ``escape`` / cancel. The
focus starts on *cancel*, so a stray Enter never confirms.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

__all__ = ["ConfirmAction"]


class ConfirmAction(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmAction { align: center middle; }
    ConfirmAction > #confirm { width: 64; max-width: 100%; height: auto; border: thick $warning; padding: 0 1; }
    ConfirmAction #confirm-question { width: 100%; }
    ConfirmAction #confirm-buttons { height: auto; }
    """

    BINDINGS = [
        Binding("escape", "answer(False)", "Cancel"),
        Binding("n", "answer(False)", "Cancel", show=False),
        Binding("y", "answer(True)", "Confirm", show=False),
    ]

    def __init__(self, title: str, question: str, confirm_label: str = "Confirm (y)") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(self.title_text, id="confirm-title")
            yield Label(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.confirm_label, id="confirm-yes", variant="error")
                yield Button("Cancel (n)", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
