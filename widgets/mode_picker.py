"""Modal for the operator to choose a trading mode.

Making the mode stricter takes effect on selection. Relaxing it (choosing a mode less strict
than the current effective one) asks for an explicit confirmation first, because relaxing is
the one operator action that can increase exposure.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList
from textual.widgets.option_list import Option

from epochbot.model.modes import Mode, parse_mode

__all__ = ["ModePicker"]

_HELP = {
    Mode.NORMAL: "normal — trade freely (no operator floor)",
    Mode.REDUCE_ONLY: "reduce-only — exits only, no new exposure",
    Mode.CANCEL_MAKERS: "cancel-makers — pull resting orders, exits only",
    Mode.HALTED: "halted — no orders at all",
}


class ModePicker(ModalScreen[str | None]):
    """Pick one of the four modes; dismisses with the mode's value, or None when cancelled."""

    DEFAULT_CSS = """
    ModePicker { align: center middle; }
    ModePicker > #picker { width: 64; max-width: 100%; height: auto; }
    ModePicker #picker-question { width: 100%; }
    ModePicker #picker-confirm { height: auto; display: none; }
    ModePicker.-confirming #picker-confirm { display: block; }
    ModePicker.-confirming #picker-modes { display: none; }
    ModePicker #picker-buttons { height: auto; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("y", "confirm", "Confirm", show=False),
        Binding("n", "cancel", "Cancel", show=False),
    ]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = parse_mode(current)
        self.pending: Mode | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(f"Trading mode (now {self.current.value})", id="picker-title")
            yield OptionList(*(Option(_HELP[m], id=m.value) for m in Mode), id="picker-modes")
            with Vertical(id="picker-confirm"):
                yield Label("", id="picker-question")
                with Horizontal(id="picker-buttons"):
                    yield Button("Relax (y)", id="picker-yes", variant="warning")
                    yield Button("Cancel (n)", id="picker-no")

    def on_mount(self) -> None:
        modes = self.query_one("#picker-modes", OptionList)
        modes.highlighted = list(Mode).index(self.current)
        modes.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = Mode(event.option.id)
        if chosen.strictness < self.current.strictness:
            self.pending = chosen
            self.query_one("#picker-question", Label).update(
                f"Relax from {self.current.value} to {chosen.value}? This allows more trading."
            )
            self.add_class("-confirming")
            self.query_one("#picker-no", Button).focus()
        else:
            self.dismiss(chosen.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "picker-yes":
            self.action_confirm()
        else:
            self.action_cancel()

    def action_confirm(self) -> None:
        if self.pending is not None:
            self.dismiss(self.pending.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
