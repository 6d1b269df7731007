"""The stream plan: traded symbols get every stream; watched ones all, or depth only."""

from __future__ import annotations

from epochbot.runtime.config import TradingConfig
from epochbot.runtime.streams import StreamPlan
from tests.runtime.fakes import config


def streams(plan: StreamPlan) -> set[str]:
    return {s for route in plan.routes() for s in route.streams}


def test_without_trading_no_symbol_is_traded_and_all_get_every_stream():
    plan = StreamPlan(config(symbols=("BTCUSDT", "ETHUSDT")))

    assert not plan.is_traded("BTCUSDT")
    assert plan.full_symbols() == ["BTCUSDT", "ETHUSDT"]
    assert {"btcusdt@aggTrade", "ethusdt@aggTrade", "btcusdt@kline_1m"} <= streams(plan)


def test_watched_symbols_get_only_depth_when_so_configured():
    cfg = config(
        symbols=("BTCUSDT", "ETHUSDT"),
        trading=TradingConfig(strategy="quoter"),
        traded_symbols=("BTCUSDT",),
        watched_streams="depth",
    )
    plan = StreamPlan(cfg)

    names = streams(plan)

    assert plan.is_traded("BTCUSDT") and not plan.is_traded("ETHUSDT")
    assert plan.full_symbols() == ["BTCUSDT"]
    assert "btcusdt@aggTrade" in names and "ethusdt@aggTrade" not in names
    assert any(n.startswith("ethusdt@depth") for n in names)
