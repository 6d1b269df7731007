"""Market overview: one line per symbol, for a console that watches hundreds of them.

Columns: symbol, book state (with "waits for weight" when its snapshot is queued behind the
venue's request-weight limit), age of the last market update, spread, mid, mid change over the
last minute (basis points, from the snapshots this screen has seen), book resyncs, position.
Everything comes from the snapshot's ``summary`` (current for every symbol at every publish) and
``positions``; nothing reads the core.

Keys: ``1``-``8`` sort by that column (again: reverse), ``/`` focuses the filter (fuzzy on the
symbol; ``state:invalid`` or ``!synced`` keep only books in / not in a state), ``u`` toggles
"problems only" (not synced, or resynced), Enter shows the highlighted symbol's book, Escape
closes. The table is rebuilt at most ``REFRESH_S`` apart, so 500 symbols cost the UI thread
little and nothing at all in the strategy loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label

from epochbot.model.numeric import format_units

__all__ = ["COLUMNS", "MarketOverview", "OverviewRow", "overview_rows"]

REFRESH_S = 0.5
CHANGE_WINDOW_NS = 60 * 1_000_000_000

COLUMNS = ("symbol", "state", "age", "spread", "mid", "Δmid 1m", "resyncs", "position")
_STATE_RANK = {"invalid": 0, "empty": 1, "buffering": 2, "synced": 3}


@dataclass(frozen=True, slots=True)
class OverviewRow:
    symbol: str
    state: str
    age_ms: float
    spread: str
    spread_units: int | None
    mid: str
    change_bps: float | None
    resyncs: int
    position: str

    def cells(self) -> tuple[str, ...]:
        age = (
            "-"
            if self.age_ms <= 0
            else f"{self.age_ms:.0f}ms"
            if self.age_ms < 10_000
            else f"{self.age_ms / 1000:.0f}s"
        )
        change = "-" if self.change_bps is None else f"{self.change_bps:+.1f}"
        return (self.symbol, self.state, age, self.spread, self.mid, change, str(self.resyncs), self.position)

    def sort_key(self, column: int):
        values = (
            self.symbol,
            _STATE_RANK.get(self.state.split(" ")[0], 9),
            self.age_ms,
            -1 if self.spread_units is None else self.spread_units,
            self.mid_units_key(),
            -1e18 if self.change_bps is None else self.change_bps,
            self.resyncs,
            self._position_key(),
        )
        return (values[column], self.symbol)

    def mid_units_key(self):
        try:
            return float(self.mid)
        except ValueError:
            return -1.0

    def _position_key(self):
        try:
            return abs(float(self.position))
        except ValueError:
            return 0.0


def overview_rows(snapshot, mids: dict[str, deque] | None = None) -> list[OverviewRow]:
    """Rows for every symbol of a `WorldSnapshot` (its ``summary``). ``mids`` keeps each
    symbol's recent (at_ns, mid units, decimals) samples for the mid change; updated here."""
    if snapshot is None:
        return []
    positions = {p.symbol: p.qty for p in getattr(snapshot, "positions", ())}
    rows = []
    now = snapshot.at_ns
    summary = getattr(snapshot, "summary", ()) or ()
    for s in summary:
        spread = mid = "-"
        spread_units = None
        change = None
        if s.best_bid is not None and s.best_ask is not None and s.price_decimals >= 0:
            spread_units = s.best_ask - s.best_bid
            spread = format_units(spread_units, s.price_decimals)
            total = s.best_bid + s.best_ask  # mid = total / 2: one more decimal, exact
            mid = format_units(total * 5, s.price_decimals + 1)
            if mids is not None:
                samples = mids.setdefault(s.symbol, deque(maxlen=256))
                if not samples or samples[-1][0] != now:
                    samples.append((now, total, s.price_decimals))
                while len(samples) > 1 and now - samples[0][0] > CHANGE_WINDOW_NS:
                    samples.popleft()
                then_ns, then, decimals = samples[0]
                if then and then_ns < now and decimals == s.price_decimals:
                    change = (total - then) * 10_000 / then
        state = s.state + (" (weight)" if getattr(s, "awaiting_weight", False) else "")
        rows.append(
            OverviewRow(
                s.symbol,
                state,
                s.silence_ms,
                spread,
                spread_units,
                mid,
                change,
                s.resyncs,
                positions.get(s.symbol, "0"),
            )
        )
    return rows


def _filter(rows: list[OverviewRow], text: str, problems_only: bool) -> list[OverviewRow]:
    out = rows
    if problems_only:
        out = [r for r in out if not r.state.startswith("synced") or r.resyncs]
    terms = text.split()
    for term in terms:
        if term.startswith("state:"):
            want = term[6:].lower()
            out = [r for r in out if r.state.startswith(want)]
        elif term.startswith("!"):
            unwanted = term[1:].lower()
            out = [r for r in out if not r.state.startswith(unwanted)]
        else:
            matcher = Matcher(term, case_sensitive=False)
            out = [r for r in out if matcher.match(r.symbol) > 0]
    return out


class MarketOverview(Screen[str | None]):
    """Every symbol at a glance; dismisses with the symbol to show (Enter) or None (Escape)."""

    DEFAULT_CSS = """
    MarketOverview #overview-filter { height: 3; }
    MarketOverview #overview-title { height: 1; width: 100%; padding: 0 1; background: $panel; }
    MarketOverview DataTable { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("slash", "focus_filter", "filter"),
        Binding("u", "toggle_problems", "problems only"),
        *(Binding(str(i + 1), f"sort({i})", f"sort {name}", show=i < 1) for i, name in enumerate(COLUMNS)),
    ]

    def __init__(self, get_snapshot: Callable[[], object], current: str = "") -> None:
        super().__init__()
        self._get = get_snapshot
        self.current = current
        self.sort_column = 0
        self.sort_reverse = False
        self.problems_only = False
        self.filter_text = ""
        self.rows: list[OverviewRow] = []
        self._shown: list[str] = []
        self._mids: dict[str, deque] = {}
        self._seq = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="overview-title")
            yield Input(placeholder="filter: symbol (fuzzy), state:invalid, !synced", id="overview-filter")
            yield DataTable(id="overview-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for i, name in enumerate(COLUMNS):
            table.add_column(name, key=str(i))
        self.refresh_rows(force=True)
        self.set_interval(REFRESH_S, self.refresh_rows, name="overview-refresh")
        table.focus()

    # ------------------------------------------------------------------ data

    def refresh_rows(self, force: bool = False) -> None:
        snapshot = self._get()
        seq = getattr(snapshot, "seq", None)
        if not force and seq == self._seq:
            return
        self._seq = seq
        self.rows = overview_rows(snapshot, self._mids)
        self._render_rows()

    def visible_rows(self) -> list[OverviewRow]:
        rows = _filter(self.rows, self.filter_text, self.problems_only)
        return sorted(rows, key=lambda r: r.sort_key(self.sort_column), reverse=self.sort_reverse)

    def _render_rows(self) -> None:
        table = self.query_one(DataTable)
        rows = self.visible_rows()
        keys = [r.symbol for r in rows]
        cursor_symbol = (
            self._shown[table.cursor_row] if self._shown and 0 <= table.cursor_row < len(self._shown) else self.current
        )
        if keys == self._shown:
            for r in rows:
                for i, cell in enumerate(r.cells()):
                    table.update_cell(r.symbol, str(i), cell)
        else:
            table.clear()
            for r in rows:
                table.add_row(*r.cells(), key=r.symbol)
            self._shown = keys
            if cursor_symbol in keys:
                table.move_cursor(row=keys.index(cursor_symbol), animate=False)
        total = len(self.rows)
        synced = sum(1 for r in self.rows if r.state == "synced")
        snapshot = self._get()
        weight = ""
        cap = getattr(snapshot, "weight_cap", 0)
        if cap:
            weight = f"   request weight {getattr(snapshot, 'weight_used', 0)}/{cap} this minute"
        arrow = "↓" if self.sort_reverse else "↑"
        self.query_one("#overview-title", Label).update(
            f"Market overview: {synced}/{total} synced, showing {len(rows)}   sort: {COLUMNS[self.sort_column]} {arrow}"
            + ("   problems only" if self.problems_only else "")
            + weight
        )

    # ------------------------------------------------------------------ actions

    def action_sort(self, column: int) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, column in (2, 6, 7)  # age, resyncs, position: biggest first
        self._render_rows()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.action_sort(int(str(event.column_key.value)))

    def action_toggle_problems(self) -> None:
        self.problems_only = not self.problems_only
        self._render_rows()

    def action_focus_filter(self) -> None:
        self.query_one("#overview-filter", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        self._render_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(str(event.row_key.value))

    def action_close(self) -> None:
        if self.focused is self.query_one("#overview-filter", Input):
            self.query_one(DataTable).focus()
            return
        self.dismiss(None)
