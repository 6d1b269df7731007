"""Trading modes, the vocabulary: the four modes, their strictness order, their names.

From most to least permissive: ``normal`` > ``reduce-only`` > ``cancel-makers`` > ``halted``.

The policy that moves the mode (confidence with hysteresis, the operator's floor, the fatal
latch), and its configuration `ModeConfig`, are `epochbot.engine.modes`.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Mode", "parse_mode"]


class Mode(str, Enum):  # noqa: UP042 - a StrEnum would change str() and format() of members, which logs and reports print
    NORMAL = "normal"
    REDUCE_ONLY = "reduce-only"
    CANCEL_MAKERS = "cancel-makers"
    HALTED = "halted"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]

    def stricter(self, other: Mode) -> Mode:
        return self if self.strictness >= other.strictness else other


_STRICTNESS = {Mode.NORMAL: 0, Mode.REDUCE_ONLY: 1, Mode.CANCEL_MAKERS: 2, Mode.HALTED: 3}
_BY_STRICTNESS = {v: k for k, v in _STRICTNESS.items()}


def parse_mode(text: str) -> Mode:
    """'reduce_only', 'Reduce-Only', 'halt' ... -> Mode; ValueError naming the choices otherwise."""
    key = text.strip().lower().replace("_", "-")
    aliases = {"halt": "halted", "reduce": "reduce-only", "cancel": "cancel-makers"}
    key = aliases.get(key, key)
    try:
        return Mode(key)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise ValueError(f"unknown mode {text!r}; choose one of: {choices}") from None
