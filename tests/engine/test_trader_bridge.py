"""TraderBridge, on its own, over a recording trader: what the trader is shown, what is logged."""

from __future__ import annotations

import hashlib

from epochbot.engine.market_history import FundingDue
from epochbot.engine.market_view import MarketView, TradeTick
from epochbot.engine.modes import ModeChange
from epochbot.engine.symbols import SymbolState
from epochbot.engine.trader_port import LogLine, TraderPort
from epochbot.engine.trading import TraderBridge
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.digest import Digest
from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec
from tests.engine._parts import MS, Parts

BTC, ETH = "BTCUSDT", "ETHUSDT"
PLACE = ev.PlaceOrder(symbol=BTC, side="BUY", qty="0.001", price="100.0", client_order_id="c1")


class RecordingTrader:
    """A TraderPort that records every call and answers with PLACE where it may."""

    def __init__(self) -> None:
        self.notices: list[LogLine] = []
        self.calls: list[tuple[str, object]] = []
        self.pending_alerts: list[LogLine] = []

    def on_view(self, view: MarketView) -> list[ev.Command]:
        self.calls.append(("view", view.symbol))
        return []

    def on_trade(self, trade: TradeTick) -> list[ev.Command]:
        self.calls.append(("trade", (trade.price, trade.qty, trade.taker_side)))
        return [PLACE]

    def on_timer(self, now_ns: int) -> list[ev.Command]:
        self.calls.append(("timer", now_ns))
        return []

    def on_event(self, event: tev.TradingEvent) -> list[ev.Command]:
        self.calls.append(("event", type(event).__name__))
        return []

    def set_mode(self, mode: Mode, now_ns: int) -> list[ev.Command]:
        self.calls.append(("mode", mode))
        return [ev.CancelOrder(symbol=BTC, client_order_id="c0")]

    def pause(self, paused: bool) -> None:
        self.calls.append(("pause", paused))

    def cancel_all(self, symbol: str | None, now_ns: int) -> list[ev.Command]:
        self.calls.append(("cancel_all", symbol))
        return []

    def flatten(self, symbol: str | None, now_ns: int) -> tuple[list[ev.Command], list[str]]:
        self.calls.append(("flatten", symbol))
        return [PLACE], [BTC]

    def settle_funding(
        self, symbol: str, funding_ts_ms: int, rate: str, mark: str, recv_ts: int
    ) -> list[ev.Command] | None:
        self.calls.append(("funding", (symbol, rate, mark)))
        self.pending_alerts.append(("warn", "loss limit latched", {"symbol": symbol}))
        return []

    def alerts(self) -> list[LogLine]:
        out, self.pending_alerts = self.pending_alerts, []
        return out

    def describe_event(self, event: tev.TradingEvent) -> LogLine:
        return ("info", f"venue: {type(event).__name__}", {})

    def describe_command(self, command: ev.Command) -> LogLine | None:
        return ("info", f"sent {type(command).__name__}", {}) if isinstance(command, ev.PlaceOrder) else None

    def feed_hash(self, h: Digest) -> None:
        h.update(b"orders|positions|")


def rig(symbols: tuple[str, ...] = (BTC,)) -> tuple[Parts, TraderBridge, RecordingTrader]:
    parts = Parts(symbols=symbols)
    trader = RecordingTrader()
    return parts, TraderBridge(parts.symbols, parts.log, parts.counters, trader), trader


def synced(state: SymbolState) -> None:
    state.book.on_snapshot(100, [["100.0", "1.000"]], [["101.0", "1.000"]])


def test_the_recording_trader_and_the_shipped_trader_both_implement_the_port():
    from epochbot.trading.filters import SymbolFilters
    from epochbot.trading.strategy import get_strategy
    from epochbot.trading.trader import Trader

    filters = {BTC: SymbolFilters.from_strings(BTC, "0.1", "0.001", min_qty="0.001", min_notional="5")}

    assert isinstance(RecordingTrader(), TraderPort)
    assert isinstance(Trader(get_strategy("quoter", {}), filters, session=1), TraderPort)


def test_each_changed_synced_book_is_shown_once_in_symbol_order_then_the_timer():
    parts, bridge, trader = rig((BTC, ETH))
    for state in parts.symbols.values():
        synced(state)
    bridge.changed.update({ETH, BTC})

    bridge.strategy_tick(7)
    bridge.strategy_tick(8)

    assert trader.calls == [("view", BTC), ("view", ETH), ("timer", 7), ("timer", 8)]
    assert not bridge.changed


def test_a_book_that_is_not_synced_is_not_shown():
    parts, bridge, trader = rig()
    bridge.changed.add(BTC)

    bridge.strategy_tick(7)

    assert trader.calls == [("timer", 7)]


def test_a_public_trade_is_parsed_at_the_books_scale_and_its_orders_logged():
    parts, bridge, trader = rig()
    trade = ev.AggTrade(1, BTC, 5, "100.5", "0.250", True, 1_000, 1_000, 0)

    commands = bridge.trade(trade, UnitCodec(1, 3))

    assert commands == [PLACE]
    assert trader.calls == [("trade", (1005, 250, "SELL"))]
    assert "sent PlaceOrder" in parts.messages()


def test_an_unreadable_trade_is_skipped_with_a_warning():
    parts, bridge, trader = rig()
    trade = ev.AggTrade(1, BTC, 5, "1e5", "0.250", True, 1_000, 1_000, 0)

    assert bridge.trade(trade, UnitCodec(1, 3)) == ()
    assert trader.calls == []
    assert "unusable trade skipped" in parts.messages()


def test_a_funding_settlement_is_counted_and_its_alerts_logged():
    parts, bridge, trader = rig()

    bridge.settle_funding(FundingDue(BTC, 8 * 3600_000, "0.0001", "100.0", 5))

    assert trader.calls == [("funding", (BTC, "0.0001", "100.0"))]
    assert parts.counters["funding_settlements"] == 1
    assert "loss limit latched" in parts.messages()


def test_a_mode_change_answer_waits_in_the_outbox():
    parts, bridge, trader = rig()

    bridge.mode_changed(ModeChange(Mode.HALTED, Mode.NORMAL, 3, "confidence 0.10", "confidence"))

    assert bridge.outbox == [ev.CancelOrder(symbol=BTC, client_order_id="c0")]


def test_the_account_stream_is_down_from_its_first_down_report_until_it_is_up():
    parts, bridge, trader = rig()

    bridge.on_event(tev.AccountStreamState(up=False, reason="closed"), 10 * MS)
    bridge.on_event(tev.AccountStreamState(up=False, reason="again"), 20 * MS)
    down = bridge.account_stream_down_since
    bridge.on_event(tev.AccountStreamState(up=True), 30 * MS)

    assert (down, bridge.account_stream_down_since) == (10 * MS, None)
    assert trader.calls == []  # the stream's state is the engine's, not the trader's


def test_a_fill_is_counted_by_the_route_it_came_by_and_handed_to_the_trader():
    parts, bridge, trader = rig()
    fill = tev.Fill(client_order_id="c1", symbol=BTC, side="BUY", qty=1, price=1000, trade_id="t1", via="ws")

    bridge.on_event(fill, 1)

    assert parts.counters["fills_via_ws"] == 1
    assert trader.calls == [("event", "Fill")]
    assert "venue: Fill" in parts.messages()


def test_without_a_trader_trading_events_and_operator_actions_are_only_logged():
    parts = Parts()
    bridge = TraderBridge(parts.symbols, parts.log, parts.counters)

    event_commands = bridge.on_event(tev.AccountStreamState(up=False), 1)
    flatten_commands = bridge.flatten(ev.OperatorFlatten(symbol=None), 1)

    assert (event_commands, flatten_commands) == ((), ())
    assert parts.messages() == ["trading event without a trader", "operator flatten: no trading configured"]


def test_the_pause_is_held_without_a_trader_and_passed_on_with_one():
    parts = Parts()
    bare = TraderBridge(parts.symbols, parts.log, parts.counters)
    bare.pause(True)
    _, bridge, trader = rig()

    bridge.pause(True)

    assert bare.paused and bridge.paused
    assert trader.calls == [("pause", True)]


def test_an_operator_flatten_pauses_the_strategy_first_when_asked():
    parts, bridge, trader = rig()

    commands = bridge.flatten(ev.OperatorFlatten(symbol=BTC, pause=True), 5)

    assert commands == [PLACE]
    assert trader.calls == [("pause", True), ("flatten", BTC)]
    assert parts.messages()[:2] == ["strategy paused", "operator: flatten"]


def test_an_operator_action_on_an_unknown_symbol_is_refused():
    parts, bridge, trader = rig()

    assert bridge.cancel_all(ev.OperatorCancelAll(symbol="DOGEUSDT"), 5) == ()
    assert trader.calls == []
    assert parts.messages() == ["operator cancel all: unknown symbol"]


def test_the_traders_share_of_the_state_hash_is_fed_only_when_there_is_a_trader():
    parts, bridge, _ = rig()
    bare = TraderBridge(parts.symbols, parts.log, parts.counters)
    with_trader, without = hashlib.sha256(), hashlib.sha256()

    bridge.feed_hash(with_trader)
    bare.feed_hash(without)

    assert with_trader.hexdigest() == hashlib.sha256(b"orders|positions|").hexdigest()
    assert without.hexdigest() == hashlib.sha256().hexdigest()
