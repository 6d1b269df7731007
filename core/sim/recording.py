"""A seeded simulator session recorded straight to the capture format, without any I/O.

`record_session` drives the same `SymbolMarket` generators the simulator serves, on a virtual
clock, and writes what a client subscribed to diff depth and aggTrade would have received:
an ``exchangeInfo`` row, one ``open`` row, then per symbol a depth snapshot right after its
first diff (like a live client's first snapshot) and every diff and trade in time order. The
same arguments give the same bytes, so backtests over it are reproducible.
"""

from __future__ import annotations

from typing import IO

import orjson

from epochbot.model.capture import write_header, write_row
from epochbot.sim.market import SymbolMarket, fixed
from epochbot.sim.server import SimConfig, SimExchange
from epochbot.sim.streams import agg_trade, depth_update

__all__ = ["record_session"]


def record_session(
    out: IO[bytes],
    *,
    market: str = "usdm",
    symbols: list[str] | tuple[str, ...] = ("BTCUSDT",),
    seed: int = 7,
    seconds: float = 60.0,
    rate: float = 10.0,
    start_ms: int = 1_767_225_600_000,
) -> int:
    """Write a capture of ``seconds`` of a seeded session; returns the number of ws rows."""
    sim = SimExchange(SimConfig(market=market, symbols=list(symbols), seed=seed, rate=rate))
    markets: dict[str, SymbolMarket] = sim.markets
    venue = "binance-usdm" if market == "usdm" else "binance-spot"
    rest_base = "https://sim.local/fapi/v1" if market == "usdm" else "https://sim.local/api/v3"
    streams = "/".join(f"{s.lower()}@depth@100ms/{s.lower()}@aggTrade" for s in symbols)
    write_header(out, venue, f"epochbot seeded simulator session seed={seed} seconds={seconds:g}")
    t = start_ms / 1000
    info = sim.exchange_info()
    info["serverTime"] = start_ms  # the recording's own clock, not the machine's
    write_row(out, t, "rest", orjson.dumps(info).decode(), url=f"{rest_base}/exchangeInfo")
    write_row(out, t, "open", "", url=f"wss://sim.local/stream?streams={streams}")
    step_ms = 1000.0 / rate
    rows = 0
    snapshotted: set[str] = set()
    agg_ids = {s: 0 for s in symbols}
    n_steps = int(seconds * rate)
    for i in range(1, n_steps + 1):
        now_ms = int(start_ms + i * step_ms)
        for symbol in symbols:
            m = markets[symbol]
            ev = m.next_depth_event(now_ms)
            frame = depth_update(
                market,
                symbol,
                ev.first_id,
                ev.last_id,
                ev.prev_id,
                now_ms,
                now_ms,
                ev.bids,
                ev.asks,
                m.price_decimals,
                m.qty_decimals,
            )
            ts = now_ms / 1000
            write_row(out, ts, "ws", _wrap(f"{symbol.lower()}@depth@100ms", frame))
            rows += 1
            if symbol not in snapshotted:
                snapshotted.add(symbol)
                last_id, bids, asks = m.snapshot(1000)
                body = {
                    "lastUpdateId": last_id,
                    "bids": [[fixed(p, m.price_decimals), fixed(q, m.qty_decimals)] for p, q in bids],
                    "asks": [[fixed(p, m.price_decimals), fixed(q, m.qty_decimals)] for p, q in asks],
                }
                write_row(
                    out,
                    ts + 0.0005,
                    "rest",
                    orjson.dumps(body).decode(),
                    url=f"{rest_base}/depth?symbol={symbol}&limit=1000",
                )
            for trade in ev.trades:
                agg_ids[symbol] += 1
                payload = agg_trade(market, symbol, agg_ids[symbol], trade, now_ms, m.price_decimals, m.qty_decimals)
                write_row(out, ts, "ws", _wrap(f"{symbol.lower()}@aggTrade", payload))
                rows += 1
    return rows


def _wrap(stream: str, payload: bytes) -> str:
    return '{"stream":"' + stream + '","data":' + payload.decode() + "}"
