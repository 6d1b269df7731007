"""The mode policy: how much the engine may do, driven by confidence with hysteresis.

The *automatic* mode follows confidence: it degrades at once when confidence falls below a
mode's floor (`epochbot.model.modes.ModeConfig`), and relaxes only after confidence has held
above a more permissive floor for ``recovery_hold_ms``, and then only as far as the lowest
confidence seen during that hold allows (so a flapping feed cannot flap the mode). The
*operator* mode is a floor that the automatic mode can make stricter but never looser; setting
the operator mode to ``normal`` removes the floor. The effective mode is the stricter of the two.
A fatal latch holds ``halted`` for good.

Every change of the effective mode is returned as a `ModeChange` with its cause, for the epoch
history and the log. The vocabulary (`Mode`, `parse_mode`, the strictness order) is
`epochbot.model.modes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from epochbot.model.modes import Mode

__all__ = ["ModeChange", "ModeConfig", "ModeController", "ModeSource"]

ModeSource = Literal["confidence", "operator", "fatal"]


@dataclass(frozen=True, slots=True)
class ModeConfig:
    """Confidence floors: at or above ``normal_at`` trade normally, and so on down."""

    normal_at: float = 0.8
    reduce_only_at: float = 0.5
    cancel_makers_at: float = 0.2
    recovery_hold_ms: float = 2000.0

    def mode_for(self, confidence: float) -> Mode:
        """The mode a confidence score allows on its own (before hysteresis)."""
        if confidence >= self.normal_at:
            return Mode.NORMAL
        if confidence >= self.reduce_only_at:
            return Mode.REDUCE_ONLY
        if confidence >= self.cancel_makers_at:
            return Mode.CANCEL_MAKERS
        return Mode.HALTED


@dataclass(frozen=True, slots=True)
class ModeChange:
    mode: Mode
    previous: Mode
    at_ns: int
    cause: str
    source: ModeSource


class ModeController:
    """The automatic mode, the operator's floor and the fatal latch; ``effective`` is the mode."""

    def __init__(self, config: ModeConfig, now_ns: int = 0, initial: Mode = Mode.HALTED) -> None:
        # Start halted: nothing is trustworthy until the first books are synced.
        self.config = config
        self.auto = initial
        self.operator: Mode = Mode.NORMAL
        self.effective = initial
        self._better_since: int | None = None
        self._hold_target = initial
        self._latched_fatal = False
        self.history: list[ModeChange] = [ModeChange(initial, initial, now_ns, "startup", "confidence")]

    def on_confidence(self, confidence: float, reasons: str, now_ns: int) -> ModeChange | None:
        target = self.config.mode_for(confidence)
        if target.strictness > self.auto.strictness:
            self.auto = target
            self._better_since = None
            return self._recompute(
                now_ns,
                f"confidence {confidence:.2f}: {reasons}" if reasons else f"confidence {confidence:.2f}",
                "confidence",
            )
        if target.strictness < self.auto.strictness:
            # Relax only to the strictest mode that confidence supported during the whole hold.
            if self._better_since is None:
                self._better_since = now_ns
                self._hold_target = target
            else:
                self._hold_target = self._hold_target.stricter(target)
                if now_ns - self._better_since >= self.config.recovery_hold_ms * 1_000_000:
                    self.auto = self._hold_target
                    self._better_since = None
                    held = self.config.recovery_hold_ms / 1000
                    return self._recompute(now_ns, f"confidence {confidence:.2f} held {held:g}s", "confidence")
        else:
            self._better_since = None
        return None

    def set_operator(self, mode: Mode, now_ns: int, source: str = "operator") -> ModeChange | None:
        self.operator = mode
        return self._recompute(now_ns, f"{source} set {mode.value}", "operator")

    def latch_fatal(self, now_ns: int, why: str) -> ModeChange | None:
        self._latched_fatal = True
        self.auto = Mode.HALTED
        return self._recompute(now_ns, f"fatal: {why}", "fatal")

    def _recompute(self, now_ns: int, cause: str, source: ModeSource) -> ModeChange | None:
        new = Mode.HALTED if self._latched_fatal else self.auto.stricter(self.operator)
        if new is self.effective:
            return None
        change = ModeChange(new, self.effective, now_ns, cause, source)
        self.effective = new
        self.history.append(change)
        if len(self.history) > 1000:
            del self.history[:500]
        return change
