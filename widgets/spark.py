"""A sparkline on a fixed scale.

Textual's `Sparkline` scales every series to its own min and max, so a steady confidence of
1.00 is drawn as a baseline in the "low" colour and an all-zero latency as full bars. Here the
scale is given (confidence: 0..1; latency: 0..max(series, a floor)), so a bar means what it
shows; each bar is coloured by its own value (``style_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.content import Content
from textual.widgets import Static

__all__ = ["ScaledSparkline", "spark_rows"]

_BARS = " ▁▂▃▄▅▆▇█"


def spark_rows(data: Sequence[float], width: int, height: int, lo: float, hi: float) -> list[list[int]]:
    """Per row (top first), per column, the eighths filled (0..8). The newest samples are on the
    right; with fewer samples than columns the left is left empty."""
    width, height = max(1, width), max(1, height)
    values = list(data)[-width:]
    pad = width - len(values)
    span = hi - lo if hi > lo else 1.0
    rows = [[0] * width for _ in range(height)]
    for col, value in enumerate(values, start=pad):
        ratio = min(1.0, max(0.0, (value - lo) / span))
        eighths = round(ratio * height * 8)
        for r in range(height):
            level = min(8, max(0, eighths - (height - 1 - r) * 8))
            rows[r][col] = level
    return rows


class ScaledSparkline(Static):
    DEFAULT_CSS = """
    ScaledSparkline { height: 2; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self._data: tuple[float, ...] = ()
        self._lo, self._hi = 0.0, 1.0
        self._style_of: Callable[[float], str] = lambda v: "$primary"
        self._shown: tuple | None = None

    def set_data(
        self, data: Sequence[float], lo: float, hi: float, style_of: Callable[[float], str] | None = None
    ) -> None:
        self._data, self._lo, self._hi = tuple(data), lo, hi
        if style_of is not None:
            self._style_of = style_of
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        width, height = self.size.width or 20, self.size.height or 2
        key = (self._data[-width:], self._lo, self._hi, width, height)
        if key == self._shown:
            return
        self._shown = key
        values = list(self._data)[-width:]
        pad = width - len(values)
        rows = spark_rows(values, width, height, self._lo, self._hi)
        lines = []
        for r, row in enumerate(rows):
            parts = []
            for col, level in enumerate(row):
                if col < pad or level == 0:
                    # An empty cell; on the bottom row a muted baseline shows where 0 is.
                    parts.append(("▁" if r == height - 1 and col >= pad else " ", "$foreground-muted"))
                else:
                    parts.append((_BARS[level], self._style_of(values[col - pad])))
            lines.append(Content.assemble(*parts))
        self.update(Content("\n").join(lines))
