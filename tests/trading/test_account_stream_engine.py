"""The engine hears the account stream's state: confidence shows an outage until the stream is back."""

from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.strategy import get_strategy
from epochbot.trading.trader import Trader

SYM = "BTCUSDT"


def make_engine() -> Engine:
    engine = Engine(EngineConfig(symbols=(SYM,)), lambda: 1_000_000_000)
    engine.handle(ev.SymbolSpec(symbol=SYM, tick_size="0.1", step_size="0.001", min_notional="5"))
    filters = {SYM: SymbolFilters.from_strings(SYM, "0.1", "0.001", min_qty="0.001", min_notional="5")}
    engine.trader = Trader(get_strategy("quoter", {}), filters, session=1)
    return engine


def test_an_account_stream_outage_shows_in_confidence_until_the_stream_is_back():
    engine = make_engine()
    now = engine.clock()
    engine.handle(tev.AccountStreamState(up=False, stream_epoch=1, reason="closed", ts_ns=now))
    assert engine.confidence_inputs(now + 3_000_000_000).account_stream_down_ms == 3000.0
    engine.handle(tev.AccountStreamState(up=True, stream_epoch=2, reason="userDataStream.subscribe", ts_ns=now))
    assert engine.confidence_inputs(now + 4_000_000_000).account_stream_down_ms == 0.0


def test_fills_are_counted_by_the_way_they_reached_us():
    engine = make_engine()
    for via in ("account_stream", "account_stream", "order_response", ""):
        engine.handle(tev.Fill(client_order_id="x", symbol=SYM, side="BUY", qty=1, price=1, via=via, ts_ns=1))
    assert (
        engine.counters["fills_via_account_stream"],
        engine.counters["fills_via_order_response"],
        engine.counters["fills_via_query"],
    ) == (2, 1, 1)
