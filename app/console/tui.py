"""The Textual operator console.

Hosting
-------
The console never touches core state. It renders from a `SnapshotSource`:

* `RuntimeSource` runs the strategy core (`epochbot.runtime.runtime.Runtime`, and the embedded simulator
  when the venue is ``sim``: `epochbot.app.embedded_sim`) in a *thread* worker that owns its own asyncio loop, so a slow
  frame of rendering can never stall market processing.
* `epochbot.app.console.serve.RemoteSource` is a client of a running daemon's control endpoint (``/status``),
  used by ``epochbot serve`` to put the same console in a browser.

Either way the app polls ``source.latest()`` 15 times a second and, only when the snapshot's
``seq`` changed, sets the app-level ``snapshot`` reactive, which is data-bound into every pane
("attributes down"). Keys and palette commands become operator control events handed to
``source.submit`` (thread-safe). Quitting (``q``, ctrl+c, ctrl+q, SIGTERM) always takes the same
path: ``request_stop`` → wait (bounded) for the core worker to finish → exit with its code.

Keys are `BINDINGS` with ids ``epochbot.<action>``; ``settings.keys`` (action → key) is applied
as a Textual keymap, so remapping needs no code and the footer shows the remapped keys.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Protocol

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from epochbot.model.events import (
    OperatorCancelAll,
    OperatorFlatten,
    OperatorForceResync,
    OperatorPause,
    OperatorSetMode,
)
from epochbot.model.modes import Mode
from epochbot.themes import STYLESHEET, THEMES, other_theme
from epochbot.views.snapshot import WorldSnapshot
from epochbot.widgets.confidence import ConfidencePane
from epochbot.widgets.epoch_history import EpochHistory
from epochbot.widgets.event_log import LEVEL_FILTERS, EventLog
from epochbot.widgets.fills import FillsPane
from epochbot.widgets.help_screen import HelpScreen
from epochbot.widgets.latency import LatencyPane
from epochbot.widgets.mode_picker import ModePicker
from epochbot.widgets.mode_risk import ModeRiskPane
from epochbot.widgets.order_book import OrderBookLadder
from epochbot.widgets.price_chart import PriceChart
from epochbot.widgets.status_header import StatusHeader
from epochbot.widgets.symbol_picker import SymbolCommands

if TYPE_CHECKING:
    from epochbot.runtime.runtime import Runtime
    from epochbot.sim.server import SimExchange

__all__ = ["ACTIONS", "ConsoleApp", "RuntimeSource", "SnapshotSource", "run_dashboard"]

log = logging.getLogger("epochbot.tui")

EXIT_OK = 0
EXIT_FAILURE = 1
POLL_HZ = 15
# The switchable pane: on narrow terminals the one lower-right pane; on wide ones the deck
# next to mode & risk shows chart, fills or epochs (log and latency are always visible there).
VIEWS = ("log", "chart", "fills", "epochs", "latency")

# action, default key, footer label, palette title, palette help
ACTIONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("resync_all", "r", "resync", "Resync all books", "Invalidate every book and re-snapshot it (keeps the session)"),
    ("resync_symbol", "R", "sym", "Resync selected book", "Invalidate and re-snapshot the selected symbol's book"),
    (
        "new_epoch",
        "e",
        "epoch",
        "New epoch",
        "Replace the transport session: new epoch, reconnect, resnapshot all books",
    ),
    ("halt", "h", "HALT", "Halt trading", "Set the operator mode to halted at once (no orders at all)"),
    ("choose_mode", "m", "mode", "Choose mode", "Pick a trading mode; relaxing asks for confirmation"),
    ("pause", "p", "pause", "Pause / resume strategy", "Toggle the strategy's pause flag"),
    ("pick_symbol", "s", "symbol", "Pick symbol", "Find a symbol by fuzzy search and show its order book"),
    (
        "overview",
        "o",
        "overview",
        "Market overview",
        "Every symbol: sync state, age, spread, mid change, resyncs, position (sort, filter)",
    ),
    ("next_symbol", "n", "next", "Next symbol", "Show the next symbol's order book"),
    ("cycle_log_level", "l", "log", "Cycle log level", "Log filter: all → info → warn → error"),
    ("quit", "q", "quit", "Quit epochbot", "Stop the core gracefully (persist, then stop) and exit"),
    ("toggle_theme", "t", "theme", "Toggle theme", "Switch between the dark and the light theme"),
    (
        "toggle_log_epoch",
        "c",
        "cur epoch",
        "Log: current epoch only",
        "Show only log lines of the current epoch (toggle)",
    ),
    ("next_view", "v", "view", "Next view", "Cycle the switchable pane: log, price chart, fills, epochs, latency"),
    ("show_chart", "g", "chart", "Price chart", "Show the price pane (mid with our fills) of the selected symbol"),
    ("show_fills", "f", "fills", "Fills", "Show our fills, newest first"),
    (
        "cancel_all",
        "X",
        "cancel all",
        "Cancel all orders",
        "Cancel every working order and pause the strategy (asks first)",
    ),
    (
        "flatten",
        "F",
        "flatten",
        "Flatten position",
        "Close the selected symbol's position with a reduce-only market order (asks first)",
    ),
    ("help", "question_mark", "help", "Help: keys", "Every key and what it does"),
)
# Shown in the palette and the help screen, but not in the footer (it must fit in 80 columns);
# the footer always shows "? help", which lists them all.
_FOOTER_HIDDEN = {
    "toggle_theme",
    "toggle_log_epoch",
    "next_view",
    "show_chart",
    "show_fills",
    "resync_symbol",
    "next_symbol",
    "cancel_all",
    "flatten",
    "overview",
}
# Keys that are not ACTIONS but do something (shown on the help screen).
EXTRA_KEYS: tuple[tuple[str, str, str], ...] = (
    ("ctrl+p", "Command palette", "Every action by name, with its key"),
    ("ctrl+c", "Quit", "Same clean path as q"),
    ("tab / shift+tab", "Focus", "Move focus between panes (the log, tables)"),
    ("↑ ↓ pgup pgdn home", "Scroll", "In the focused log or table; the log stops following"),
    ("end", "Follow the log", "In the focused log: back to the newest line"),
)

_KEY_NAMES = {"question_mark": "?", "full_stop": ".", "slash": "/"}

# settings.keys may use the names of epochbot.app.config.DEFAULT_KEYS; map them onto our actions.
_ACTION_ALIASES = {"force_resync": "resync_all", "cycle_mode": "choose_mode", "switch_symbol": "next_symbol"}


class SnapshotSource(Protocol):
    """Where the console's snapshots come from and where its control events go.

    ``serve`` runs in the app's ``core`` thread worker until ``request_stop``; the other methods
    are called from the UI thread and must be thread-safe and non-blocking.
    """

    def serve(self) -> int:
        """Block until stopped; returns the process exit code (0 clean, 3 fatal, 1 failure)."""
        ...

    def latest(self) -> WorldSnapshot | None: ...

    def submit(self, event: Any) -> None: ...

    def request_stop(self, reason: str) -> None: ...


class RuntimeSource:
    """The local strategy core, hosted on its own asyncio loop in the calling (worker) thread.

    With venue ``sim`` and no URL override the embedded simulator is started in the same loop
    first, and the runtime config is built with its URLs.
    """

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None
        self.sim: SimExchange | None = None  # the embedded simulator, when this source started one
        self._lock = threading.Lock()
        self._early: list[Any] = []
        self._stop_reason: str | None = None
        self.started = False
        self.finished = threading.Event()

    def serve(self) -> int:
        self.started = True
        try:
            return asyncio.run(self._main())
        finally:
            self.finished.set()

    async def _main(self) -> int:
        from epochbot.app.config import to_runtime_config
        from epochbot.app.embedded_sim import start_runtime

        async with AsyncExitStack() as stack:
            runtime, self.sim = await start_runtime(to_runtime_config(self.settings), stack)
            with self._lock:
                self._runtime = runtime
                early, self._early = self._early, []
                stop = self._stop_reason
            for event in early:
                runtime.submit(event)
            if stop is not None:
                runtime.request_stop(stop)
            return await runtime.run()

    def latest(self) -> WorldSnapshot | None:
        runtime = self._runtime
        return runtime.latest if runtime is not None else None

    def submit(self, event: Any) -> None:
        with self._lock:
            runtime = self._runtime
            if runtime is None:
                self._early.append(event)
                return
        runtime.submit(event)

    def focus(self, symbols) -> None:
        """The symbols shown in full: their book views are rebuilt at every publish."""
        runtime = self._runtime
        if runtime is not None:
            runtime.builder.focus = frozenset(symbols)

    def request_stop(self, reason: str) -> None:
        with self._lock:
            runtime = self._runtime
            if runtime is None:
                self._stop_reason = reason
                return
        runtime.request_stop(reason)


class ConsoleApp(App[int]):
    """The operator console; renders from any `SnapshotSource`."""

    TITLE = "epochbot"
    COMMANDS = App.COMMANDS | {SymbolCommands}  # ctrl+p: "Show <SYMBOL>" too
    CSS_PATH = STYLESHEET
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide"), (180, "-xwide")]
    BINDINGS = [
        *(
            Binding(key, action, label, tooltip=help_, id=f"epochbot.{action}", show=action not in _FOOTER_HIDDEN)
            for action, key, label, _t, help_ in ACTIONS
        ),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)
    symbol: reactive[str] = reactive("")
    log_level: reactive[str] = reactive("info")  # "l" cycles; debug lines only under "all"
    log_current_epoch: reactive[bool] = reactive(False)
    view: reactive[str] = reactive("log")

    def __init__(
        self,
        source: SnapshotSource,
        *,
        keys: Mapping[str, str] | None = None,
        theme: str = "epochbot-dark",
        symbols: Iterable[str] = (),
        venue: str = "",
        quit_timeout_s: float = 15.0,
        install_signal_handlers: bool = True,
    ) -> None:
        super().__init__()
        self.source = source
        self.symbols_hint = tuple(symbols)
        self.venue_hint = venue
        self.quit_timeout_s = quit_timeout_s
        self.install_signal_handlers = install_signal_handlers
        self.initial_theme = theme if theme in THEMES else "epochbot-dark"
        self.core_exit_code: int | None = None
        self._seq: int | None = None
        self._stopping = False
        self._core: Worker | None = None
        self._signals: list[int] = []
        for theme_def in THEMES.values():
            self.register_theme(theme_def)
        self.theme = self.initial_theme
        if keys:
            self.set_keymap(keymap_from_settings(keys))
        if self.symbols_hint:
            self.symbol = self.symbols_hint[0]

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header").data_bind(ConsoleApp.snapshot, ConsoleApp.symbol, venue=ConsoleApp.venue_name)
        # The order matters: the grid places panes in this order (themes/epochbot.tcss).
        with Container(id="main", classes=f"-view-{self.view}"):
            yield OrderBookLadder(id="book", classes="pane").data_bind(ConsoleApp.snapshot, ConsoleApp.symbol)
            yield ConfidencePane(id="confidence", classes="pane").data_bind(ConsoleApp.snapshot)
            yield ModeRiskPane(id="mode-risk", classes="pane").data_bind(ConsoleApp.snapshot)
            yield LatencyPane(id="latency", classes="pane").data_bind(ConsoleApp.snapshot)
            yield PriceChart(id="chart", classes="pane").data_bind(ConsoleApp.snapshot, ConsoleApp.symbol)
            yield FillsPane(id="fills", classes="pane").data_bind(ConsoleApp.snapshot)
            yield EpochHistory(id="epochs", classes="pane").data_bind(ConsoleApp.snapshot)
            yield EventLog(id="log", classes="pane").data_bind(
                ConsoleApp.snapshot, level_filter=ConsoleApp.log_level, current_epoch_only=ConsoleApp.log_current_epoch
            )
        yield Footer(compact=True)

    venue_name: reactive[str] = reactive("")

    def on_mount(self) -> None:
        self.venue_name = self.venue_hint
        self._core = self._run_core()
        self.set_interval(1 / POLL_HZ, self.poll_snapshot, name="snapshot-poll")
        if self.install_signal_handlers:
            self._install_signal_handlers()
        self.poll_snapshot()

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)
        self._signals.clear()
        # Whatever ended the app, never leave the core running behind it.
        self.source.request_stop("console closed")

    def watch_view(self, old: str, new: str) -> None:
        for main in self.query("#main"):
            main.remove_class(f"-view-{old}")
            main.add_class(f"-view-{new}")

    # ------------------------------------------------------------------ hosting

    @work(thread=True, exclusive=True, group="core", exit_on_error=False, name="core")
    def _run_core(self) -> int:
        """Runs the source (the strategy core's own asyncio loop) off the UI thread."""
        return self.source.serve()

    def poll_snapshot(self) -> None:
        """Pick up the latest snapshot; push it down only when it is a new one."""
        snap = self.source.latest()
        if snap is None or snap.seq == self._seq:
            return
        self._seq = snap.seq
        if snap.symbols and self.symbol not in snap.symbols:
            self.symbol = snap.symbols[0]
        self.snapshot = snap

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "core" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if event.state == WorkerState.SUCCESS and isinstance(worker.result, int):
            self.core_exit_code = worker.result
        else:
            self.core_exit_code = EXIT_FAILURE
            if worker.error is not None:
                log.error("core stopped with an error", exc_info=worker.error)
        if not self._stopping:
            # The core ended on its own (fatal corruption or a failure): keep the last picture on
            # screen so the operator can read why; quitting returns the core's exit code.
            self.poll_snapshot()
            why = f": {worker.error}" if worker.error else ""
            self.notify(
                f"core stopped (exit {self.core_exit_code}){why} — press q to quit", severity="error", timeout=3600
            )

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / not POSIX
            return
        self._signals.append(signal.SIGTERM)

    def _on_sigterm(self) -> None:
        self.begin_shutdown("SIGTERM")

    def begin_shutdown(self, reason: str) -> None:
        """The one quit path: ask the core to stop, wait (bounded) for it, exit with its code."""
        if self._stopping:
            return
        self._stopping = True
        self.notify(f"stopping ({reason}): persisting state…", timeout=30)
        self.source.request_stop(reason)
        self.run_worker(self._finish_shutdown(), group="shutdown", exclusive=True, exit_on_error=False)

    async def _finish_shutdown(self) -> None:
        code = EXIT_FAILURE
        worker = self._core
        if worker is None:
            code = EXIT_OK
        else:
            try:
                result = await asyncio.wait_for(worker.wait(), self.quit_timeout_s)
                code = result if isinstance(result, int) else EXIT_OK
            except TimeoutError:
                log.error("core did not stop within %.1fs; exiting anyway", self.quit_timeout_s)
            except Exception as exc:  # noqa: BLE001 - WorkerFailed / WorkerCancelled: the core failed
                log.error("core failed: %s", exc)
        self.core_exit_code = code
        self.exit(code, return_code=code)

    # ------------------------------------------------------------------ actions

    def _effective_mode(self) -> str:
        return self.snapshot.mode.mode if self.snapshot is not None else Mode.HALTED.value

    def _send(self, event: Any, note: str) -> None:
        self.source.submit(event)
        self.notify(note, timeout=3)

    def action_resync_all(self) -> None:
        self._send(OperatorForceResync(symbol=None), "resync of all books requested")

    def action_resync_symbol(self) -> None:
        if not self.symbol:
            self.notify("no symbol selected", severity="warning")
            return
        self._send(OperatorForceResync(symbol=self.symbol), f"resync of {self.symbol} requested")

    def action_new_epoch(self) -> None:
        self._send(OperatorForceResync(symbol=None, replace_session=True), "session replacement (new epoch) requested")

    def action_halt(self) -> None:
        self._send(OperatorSetMode(mode=Mode.HALTED.value, source="operator"), "HALT requested")

    def action_choose_mode(self) -> None:
        def chosen(mode: str | None) -> None:
            if mode is not None:
                self._send(OperatorSetMode(mode=mode, source="operator"), f"mode {mode} requested")

        self.push_screen(ModePicker(self._effective_mode()), chosen)

    def action_cancel_all(self) -> None:
        from epochbot.widgets.confirm_action import ConfirmAction

        trading = self.snapshot.trading if self.snapshot is not None else None
        count = f"{len(trading.working_orders)} working order(s)" if trading is not None else "every working order"

        def answered(yes: bool | None) -> None:
            if yes:
                self._send(OperatorCancelAll(symbol=None, pause=True), "cancel all orders requested (strategy paused)")

        self.push_screen(
            ConfirmAction("Cancel all orders", f"Cancel {count} and pause the strategy?", "Cancel all (y)"), answered
        )

    def action_flatten(self) -> None:
        from epochbot.widgets.confirm_action import ConfirmAction

        symbol = self.symbol
        if not symbol:
            self.notify("no symbol selected", severity="warning")
            return
        qty = next(
            (p.qty for p in (self.snapshot.positions if self.snapshot is not None else ()) if p.symbol == symbol), "0"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._send(OperatorFlatten(symbol=symbol, pause=True), f"flatten {symbol} requested (strategy paused)")

        self.push_screen(
            ConfirmAction(
                f"Flatten {symbol}",
                f"Position {qty}: cancel {symbol}'s orders, pause the strategy and close the position "
                "with a reduce-only market order?",
                "Flatten (y)",
            ),
            answered,
        )

    def action_pause(self) -> None:
        paused = not (self.snapshot is not None and self.snapshot.mode.paused)
        self._send(OperatorPause(paused=paused), "pause requested" if paused else "resume requested")

    # ------------------------------------------- many symbols (widgets/market_overview.py, symbol_picker.py)

    def palette_symbols(self) -> tuple[str, ...]:
        return self.snapshot.symbols if self.snapshot is not None and self.snapshot.symbols else self.symbols_hint

    def show_symbol(self, symbol: str | None) -> None:
        if symbol and symbol in self.palette_symbols():
            self.symbol = symbol

    def watch_symbol(self, symbol: str) -> None:
        focus = getattr(self.source, "focus", None)  # the core rebuilds this book's full view at every publish
        if focus is not None and symbol:
            focus((symbol,))

    def action_pick_symbol(self) -> None:
        from epochbot.widgets.symbol_picker import SymbolPicker

        states = {b.symbol: b.state for b in (self.snapshot.summary if self.snapshot is not None else ())}
        self.push_screen(SymbolPicker(self.palette_symbols(), self.symbol, states), self.show_symbol)

    def action_overview(self) -> None:
        from epochbot.widgets.market_overview import MarketOverview

        self.push_screen(MarketOverview(lambda: self.snapshot, self.symbol), self.show_symbol)

    def action_next_symbol(self) -> None:
        symbols = self.snapshot.symbols if self.snapshot is not None and self.snapshot.symbols else self.symbols_hint
        if not symbols:
            return
        index = symbols.index(self.symbol) + 1 if self.symbol in symbols else 0
        self.symbol = symbols[index % len(symbols)]

    def action_toggle_theme(self) -> None:
        self.theme = other_theme(self.theme)

    def action_cycle_log_level(self) -> None:
        self.log_level = LEVEL_FILTERS[(LEVEL_FILTERS.index(self.log_level) + 1) % len(LEVEL_FILTERS)]

    def action_toggle_log_epoch(self) -> None:
        self.log_current_epoch = not self.log_current_epoch

    def action_next_view(self) -> None:
        # Wide terminals always show the log and latency: cycle only what the deck can show.
        views = ("chart", "fills", "epochs") if self.screen.has_class("-wide") else VIEWS
        current = self.view if self.view in views else "chart"  # what the deck shows for log/latency
        self.view = views[(views.index(current) + 1) % len(views)]

    def action_show_chart(self) -> None:
        self.view = "chart"

    def action_show_fills(self) -> None:
        self.view = "fills"

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.key_rows()))

    def key_of(self, action: str, default: str) -> str:
        """The key an action is bound to now (after remapping), as shown to operators."""
        keys = self._keymap.get(f"epochbot.{action}", default)
        return ",".join(_KEY_NAMES.get(k, k) for k in keys.split(","))

    def key_rows(self) -> list[tuple[str, str, str]]:
        """(key, action, what it does) for every key, for the help screen."""
        rows = [(self.key_of(action, key), title, help_) for action, key, _label, title, help_ in ACTIONS]
        return rows + list(EXTRA_KEYS)

    async def action_quit(self) -> None:
        self.begin_shutdown("operator quit")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from (c for c in super().get_system_commands(screen) if c.title != "Quit")
        for action, key, _label, title, help_ in ACTIONS:
            # The palette shows the key, so using it once teaches the shortcut.
            yield SystemCommand(f"{title}  [{self.key_of(action, key)}]", help_, getattr(self, f"action_{action}"))


def keymap_from_settings(keys: Mapping[str, str]) -> dict[str, str]:
    """settings.keys (action → key, action names as in ACTIONS or epochbot.app.config.DEFAULT_KEYS)
    → a Textual keymap (binding id → key). Unknown actions are ignored with a log line."""
    known = {a for a, *_ in ACTIONS}
    keymap = {}
    for action, key in keys.items():
        name = _ACTION_ALIASES.get(action, action).removeprefix("epochbot.")
        if name not in known or not key:
            log.warning("keys: unknown action %r ignored", action)
            continue
        keymap[f"epochbot.{name}"] = key
    return keymap


def run_dashboard(settings: Any) -> int:
    """Run the console over a local runtime built from ``settings``; returns the exit code.

    ``settings`` is ``epochbot.app.config.Settings`` (any object with venue, symbols, keys, theme works).
    """
    from epochbot.app.config import to_runtime_config

    to_runtime_config(settings)  # fail with a clear config error before taking the terminal
    if getattr(settings, "dashboard_hosting", "process") == "process":
        # Default: the core in its own process; rendering cannot stall it (README, Measurements).
        from epochbot.app.console.core_process import ProcessSource

        process = ProcessSource(settings)
        process.start()
        source: ProcessSource | RuntimeSource = process
    else:
        # The core in a thread of this process. Rendering holds the GIL in long stretches; a
        # short switch interval hands it to the waiting core thread within ~0.5 ms, not 5 ms.
        sys.setswitchinterval(0.0005)
        source = RuntimeSource(settings)
    app = ConsoleApp(
        source,
        keys=getattr(settings, "keys", None) or {},
        theme=getattr(settings, "theme", "epochbot-dark") or "epochbot-dark",
        symbols=tuple(getattr(settings, "symbols", ()) or ()),
        venue=str(getattr(settings, "venue", "")),
    )
    started = time.monotonic()
    result = app.run()
    code = app.return_code
    if isinstance(result, int):
        code = result
    if app.core_exit_code is None:
        # The app ended without the graceful path (e.g. an exception): stop the core anyway.
        source.request_stop("console exited")
        if source.started:
            source.finished.wait(timeout=15)
    code = EXIT_FAILURE if code is None else code
    from epochbot.app.daemon.summary import session_summary

    print(session_summary(source.latest(), time.monotonic() - started, code), file=sys.stderr)
    return code
