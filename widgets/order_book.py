"""Depth ladder of the selected symbol: asks above, bids below, the touch in the middle.

Each row shows price, size and cumulative size with a depth bar whose length is the level's
size (or cumulative size) relative to the largest one shown. When the book is not ``synced``
the ladder is greyed out (CSS class ``-untrusted``) and a banner says why, because a stale
ladder that *looks* live is worse than no ladder.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from epochbot.views.snapshot import BookResyncView, BookSnapshot, LevelView, WorldSnapshot
from epochbot.widgets._format import clock_utc, decimals_in, fixed, ms

__all__ = ["OrderBookLadder"]

_EIGHTHS = " ▏▎▍▌▋▊▉█"


def depth_bar(value: int, largest: int, width: int) -> str:
    """A left-aligned bar of ``width`` cells, ``value/largest`` full, in eighth-cell steps."""
    if largest <= 0 or width <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / largest * width * 8))
    full, rest = divmod(min(eighths, width * 8), 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def _precision(book: BookSnapshot) -> tuple[int, int]:
    """(price, size) fractional digits: the symbol's tick and step when known, else the most
    digits among the values shown (so they still line up)."""
    pd = book.price_decimals
    qd = book.qty_decimals
    if pd < 0:
        pd = decimals_in([lv.price for lv in (*book.bids, *book.asks)] + [t.price for t in book.trades])
    if qd < 0:
        qd = decimals_in(
            [lv.qty for lv in (*book.bids, *book.asks)]
            + [lv.cum for lv in (*book.bids, *book.asks)]
            + [t.qty for t in book.trades]
        )
    return pd, qd


class OrderBookLadder(Vertical):
    """Ladder, spread/mid, book state and the last trades of one symbol."""

    DEFAULT_CSS = """
    OrderBookLadder { height: 1fr; }
    OrderBookLadder > #book-state { height: auto; }
    OrderBookLadder > #book-ladder { height: 1fr; min-height: 5; }
    OrderBookLadder > #book-trades { height: auto; max-height: 7; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)
    symbol: reactive[str] = reactive("")
    bar_by_cumulative: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first snapshot…", id="book-state")
        yield Static("", id="book-ladder")
        yield Static("", id="book-trades")

    def on_mount(self) -> None:
        self.border_title = "Order book"

    def watch_snapshot(self) -> None:
        self._render_book()

    def watch_symbol(self) -> None:
        self._render_book()

    def on_resize(self) -> None:
        self._render_book()

    def _book(self) -> BookSnapshot | None:
        snap = self.snapshot
        if snap is None or not snap.books:
            return None
        return snap.book(self.symbol) or snap.books[0]

    def _render_book(self) -> None:
        if not self.is_mounted:
            return
        book = self._book()
        state = self.query_one("#book-state", Static)
        ladder = self.query_one("#book-ladder", Static)
        trades = self.query_one("#book-trades", Static)
        if book is None:
            self.border_title = f"Order book {self.symbol}".rstrip()
            state.update("no book yet")
            ladder.update("")
            trades.update("")
            return
        self.border_title = f"Order book {book.symbol}"
        self.border_subtitle = f"{book.state} · id {book.last_update_id}"
        self.set_class(not book.trustworthy, "-untrusted")
        state.set_class(not book.trustworthy, "-alert")
        state.update(self._state_line(book, self._last_resync(book.symbol)))
        rows = max(1, ladder.size.height or 11)
        ladder.update(self._ladder(book, rows, max(24, ladder.size.width or 40)))
        trades.update(self._trades(book))

    def _last_resync(self, symbol: str) -> BookResyncView | None:
        snap = self.snapshot
        if snap is None:
            return None
        return next((r for r in reversed(snap.book_resyncs) if r.symbol == symbol), None)

    @staticmethod
    def _state_line(book: BookSnapshot, last: BookResyncView | None = None) -> Content:
        if book.state == "synced":
            line = Content.assemble(
                ("synced", "$success bold"),
                f" id {book.last_update_id} gaps {book.gaps} resyncs {book.resyncs}",
            )
            if last is not None:
                took = f" in {ms(last.resync_ms)} ms" if last.resync_ms is not None else ""
                line = Content.assemble(
                    line,
                    ("\nlast resync ", "$foreground-muted"),
                    (f"{clock_utc(last.at_ns)[:8]} {last.cause}{took}", "$warning"),
                )
            return line
        problem = book.problem or book.state
        if book.state == "invalid":
            headline = "BOOK INVALID — resyncing"
        elif book.state == "buffering":
            headline = "BOOK BUFFERING — waiting for snapshot"
        else:
            headline = "BOOK EMPTY — not yet synced"
        return Content.assemble(
            (f"{headline}: {problem}", "$error bold"),
            f"  id {book.last_update_id}",
        )

    def _ladder(self, book: BookSnapshot, rows: int, width: int) -> Content:
        per_side = max(1, (rows - 2) // 2)
        asks = list(book.asks[:per_side])
        bids = list(book.bids[:per_side])
        shown = asks + bids
        use_cum = self.bar_by_cumulative
        largest = max((lv.cum_units if use_cum else lv.qty_units for lv in shown), default=0)
        # Prices at the tick's precision and sizes at the step's, so decimal points line up.
        pd, qd = _precision(book)
        price = {id(lv): fixed(lv.price, pd) for lv in shown}
        qty = {id(lv): fixed(lv.qty, qd) for lv in shown}
        cum = {id(lv): fixed(lv.cum, qd) for lv in shown}
        # Columns as wide as the widest value shown; the depth bar takes the rest of the line.
        w_price = max([len("price")] + [len(v) for v in price.values()])
        w_qty = max([len("size")] + [len(v) for v in qty.values()])
        w_cum = max([len("cum")] + [len(v) for v in cum.values()])
        bar_width = max(1, width - (w_price + w_qty + w_cum + 4))
        lines: list[Content] = [
            Content.assemble((f"{'price':>{w_price}} {'size':>{w_qty}} {'cum':>{w_cum}}  depth", "$foreground-muted"))
        ]

        def row(level: LevelView, side_style: str) -> Content:
            value = level.cum_units if use_cum else level.qty_units
            return Content.assemble(
                (f"{price[id(level)]:>{w_price}}", side_style),
                f" {qty[id(level)]:>{w_qty}} {cum[id(level)]:>{w_cum}}  ",
                (depth_bar(value, largest, bar_width), side_style),
            )

        lines.extend(Content.assemble(("", "")) for _ in range(per_side - len(asks)))  # keep the touch centred
        for level in reversed(asks):
            lines.append(row(level, "$error"))
        spread = f"spread {fixed(book.spread, pd)}  mid {book.mid}" if book.spread is not None else "no touch"
        lines.append(Content.assemble((f"── {spread} ──", "$accent bold")))
        for level in bids:
            lines.append(row(level, "$success"))
        return Content("\n").join(lines)

    @staticmethod
    def _trades(book: BookSnapshot) -> Content:
        if not book.trades:
            return Content.assemble(("no trades yet", "$foreground-muted"))
        pd, qd = _precision(book)
        trades = book.trades[:5]
        prices = [fixed(t.price, pd) for t in trades]
        sizes = [fixed(t.qty, qd) for t in trades]
        w_price = max(len(p) for p in prices)
        w_qty = max(len(q) for q in sizes)
        lines = [Content.assemble(("last trades", "$foreground-muted bold"))]
        for trade, p, q in zip(trades, prices, sizes, strict=True):
            style = "$success" if trade.side == "buy" else "$error"
            lines.append(
                Content.assemble(
                    f"{clock_utc(trade.ts_ms * 1_000_000)} ",
                    (f"{trade.side:<4}", style),
                    f" {p:>{w_price}} {q:>{w_qty}}",
                )
            )
        return Content("\n").join(lines)
