"""`Candles`: each symbol's 1-minute candles, newest last (the kline streams and REST /klines read them)."""

from __future__ import annotations

from collections import deque

from epochbot.sim.streams import KlineState

__all__ = ["MAX_CANDLES", "Candles"]

MAX_CANDLES = 1500  # Binance's largest /klines page


class Candles:
    """The 1m candle history of every served symbol, filled by the market feed."""

    def __init__(self, symbols: list[str]) -> None:
        self._by_symbol: dict[str, deque[KlineState]] = {s: deque(maxlen=MAX_CANDLES) for s in symbols}

    def history(self, symbol: str) -> deque[KlineState]:
        """The symbol's candles, oldest first; the last one is the open candle."""
        return self._by_symbol[symbol]
