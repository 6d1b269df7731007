"""Formatting shared by the panes: times come from the snapshot's own nanoseconds, never now()."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["clock_utc", "duration", "ms", "strictness_class"]

_STRICTNESS_CLASS = {
    "normal": "-mode-normal",
    "reduce-only": "-mode-reduce-only",
    "cancel-makers": "-mode-cancel-makers",
    "halted": "-mode-halted",
}
MODE_CLASSES = tuple(_STRICTNESS_CLASS.values())


def clock_utc(ns: int) -> str:
    """Nanoseconds since the epoch -> ``HH:MM:SS.mmm`` (UTC); ``-`` for 0."""
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def duration(ns: int) -> str:
    """A span in nanoseconds as ``1.234s`` / ``2m03s`` / ``1h02m``."""
    if ns <= 0:
        return "-"
    seconds = ns / 1e9
    if seconds < 60:
        return f"{seconds:.3f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def ms(value: float | None) -> str:
    """Milliseconds with sensible precision; ``-`` when unknown."""
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def strictness_class(mode: str) -> str:
    """CSS class that colours a mode by how strict it is."""
    return _STRICTNESS_CLASS.get(mode, "-mode-halted")


def fixed(text: str | None, decimals: int) -> str:
    """A decimal string printed with exactly ``decimals`` fractional digits (padded with zeros,
    never rounded: a value with more digits keeps them). ``-`` for None/empty; the text as is
    when it is not a number or ``decimals`` is unknown (< 0)."""
    if not text:
        return "-"
    if decimals < 0:
        return text
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("+-")
    whole, dot, frac = body.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return text
    frac = frac.rstrip("0")
    if len(frac) < decimals:
        frac = frac + "0" * (decimals - len(frac))
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def decimals_in(texts) -> int:
    """The most fractional digits (trailing zeros ignored) among decimal strings."""
    best = 0
    for text in texts:
        if text and "." in text:
            best = max(best, len(text.split(".", 1)[1].rstrip("0")))
    return best


def money(text: str | None, asset: str = "", places: int = 2, signed: bool = True) -> str:
    """A money amount for a narrow pane: rounded to ``places`` (half-even), signed, with the
    asset: ``+12.50 USDT``; ``-`` when unknown."""
    from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

    if text in (None, ""):
        return "-"
    try:
        value = Decimal(text).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError):
        return text
    if value == 0:
        value = abs(value)
    sign = "+" if value > 0 and signed else ""
    return f"{sign}{value:,.{places}f}" + (f" {asset}" if asset else "")
