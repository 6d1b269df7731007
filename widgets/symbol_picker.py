"""Symbol picker: fuzzy search over every symbol instead of cycling through hundreds with `s`.

A modal with an input and a list of matches, best first (Textual's fuzzy `Matcher`: the typed
characters in order, consecutive runs and word starts score higher; an exact prefix wins). Enter
(or a click) picks the highlighted symbol; Escape cancels. Each match shows the book's state so
an operator looking for "the broken ones" sees them at once. ``SymbolCommands`` offers the same
search in the command palette (ctrl+p): "Show BTCUSDT".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Protocol, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

__all__ = ["SymbolCommands", "SymbolPicker", "fuzzy_rank"]

MAX_MATCHES = 200


def fuzzy_rank(query: str, symbols: Iterable[str], limit: int = MAX_MATCHES) -> list[str]:
    """Symbols matching ``query`` best first (all, in order, for an empty query)."""
    symbols = list(symbols)
    query = query.strip()
    if not query:
        return symbols[:limit]
    terms = query.split()  # every whitespace-separated term must match ("usdt c0")
    matchers = [Matcher(term, case_sensitive=False) for term in terms]
    upper = terms[0].upper()
    scored = []
    for index, symbol in enumerate(symbols):
        scores = [matcher.match(symbol) for matcher in matchers]
        if min(scores) <= 0:
            continue
        score = sum(scores)
        if symbol.startswith(upper):
            score += 2.0  # "ETH" means ETHUSDT before ...ETH... elsewhere
        if symbol == upper and len(terms) == 1:
            score += 4.0
        scored.append((-score, index, symbol))
    scored.sort()
    return [symbol for _, _, symbol in scored[:limit]]


class SymbolPicker(ModalScreen[str | None]):
    """Dismisses with the chosen symbol, or None when cancelled."""

    DEFAULT_CSS = """
    SymbolPicker { align: center middle; }
    SymbolPicker > #symbol-picker {
        width: 60; max-width: 100%; height: auto; max-height: 80%; border: round $accent; padding: 0 1;
    }
    SymbolPicker #symbol-matches { height: auto; max-height: 20; }
    SymbolPicker #symbol-count { color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "cursor(1)", "Next", show=False),
        Binding("up", "cursor(-1)", "Previous", show=False),
    ]

    def __init__(self, symbols: Sequence[str], current: str = "", states: dict[str, str] | None = None) -> None:
        super().__init__()
        self.symbols = tuple(symbols)
        self.current = current
        self.states = dict(states or {})
        self.matches: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="symbol-picker"):
            yield Label(f"Symbol ({len(self.symbols)}; now {self.current or '-'})", id="symbol-title")
            yield Input(placeholder="type to search, e.g. eth or btcu", id="symbol-query")
            yield OptionList(id="symbol-matches")
            yield Label("", id="symbol-count")

    def on_mount(self) -> None:
        self._refresh("")
        self.query_one("#symbol-query", Input).focus()

    def _refresh(self, query: str) -> None:
        self.matches = fuzzy_rank(query, self.symbols)
        options = self.query_one("#symbol-matches", OptionList)
        options.clear_options()
        options.add_options([Option(self._label(s), id=s) for s in self.matches])
        if self.matches:
            options.highlighted = (
                self.matches.index(self.current) if (not query and self.current in self.matches) else 0
            )
        shown = len(self.matches)
        total = len(fuzzy_rank(query, self.symbols, limit=len(self.symbols))) if query else len(self.symbols)
        self.query_one("#symbol-count", Label).update(
            f"{total} match{'es' if total != 1 else ''}" + (f" (first {shown})" if total > shown else "")
        )

    def _label(self, symbol: str) -> str:
        state = self.states.get(symbol, "")
        return f"{symbol:<16} {state}" if state else symbol

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._refresh(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one("#symbol-matches", OptionList)
        if options.highlighted is not None and self.matches:
            self.dismiss(self.matches[options.highlighted])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cursor(self, step: int) -> None:
        options = self.query_one("#symbol-matches", OptionList)
        if not self.matches:
            return
        current = options.highlighted or 0
        options.highlighted = max(0, min(len(self.matches) - 1, current + step))

    def action_cancel(self) -> None:
        self.dismiss(None)


class _ShowsSymbols(Protocol):
    def show_symbol(self, symbol: str) -> None: ...


class SymbolCommands(Provider):
    """Command palette provider: "Show <SYMBOL>" for every symbol of the running console.

    The app must offer ``palette_symbols() -> Sequence[str]`` and ``show_symbol(symbol)``."""

    def _symbols(self) -> Sequence[str]:
        get: Callable[[], Sequence[str]] | None = getattr(self.app, "palette_symbols", None)
        return get() if get is not None else ()

    def _show(self, symbol: str) -> None:
        cast(_ShowsSymbols, self.app).show_symbol(symbol)  # the app that offers this provider has it

    async def discover(self) -> Hits:
        for symbol in list(self._symbols())[:20]:
            yield DiscoveryHit(f"Show {symbol}", partial(self._show, symbol), help="Show this symbol's order book")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for symbol in self._symbols():
            text = f"Show {symbol}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self._show, symbol),
                    help="Show this symbol's order book",
                )
