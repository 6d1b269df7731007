"""End to end: a host clock that disagrees with the venue's.

Binance refuses a signed request whose timestamp is more than 1 s ahead of its clock or older
than ``recvWindow`` (5 s here): ``-1021``. So every signed request - the start-up reconciliation
over REST (open orders, trade history, positions), orders over the WebSocket API, the spot account
stream's ``userDataStream.subscribe.signature`` - must carry the venue's time: the runtime's clock
plus the server offset it measured, never the wall clock and never a clock without the offset.

The runtime (paper trading the quoter, with storage) runs against the real simulator over loopback
with its clock 10 s behind or 10 s ahead of the venue's, on spot and USD-M. It must reconcile at
start, keep the account stream up and trade, with no signed request refused and no error logged,
and every execution the venue made must reach the trader. Bounded: < 20 s a case.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from epochbot.runtime.config import VENUES, RuntimeConfig, TradingConfig
from epochbot.runtime.runtime import Runtime
from tests.helpers import simulated, wait_for

SYMBOL = "BTCUSDT"
ACCOUNT = "acct-1"  # the simulator's default account
QUOTER = {
    "half_spread_ticks": 1,
    "half_spread_bps": 0.0,
    "exit_edge_bps": -1.0,
    "skew_bps_per_size": 0.0,
    "refresh_ms": 300,
}


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("skew_s", [-10, 10])
async def test_a_runtime_whose_clock_is_off_signs_with_the_venues_time_and_trades(tmp_path, market, skew_s):
    skew_ns = skew_s * 1_000_000_000
    trading = TradingConfig(strategy="quoter", params=QUOTER, storage_path=str(tmp_path / "db.sqlite3"))
    config = RuntimeConfig(
        venue=replace(VENUES["sim"], market=market),
        symbols=(SYMBOL,),
        sim_rate=50.0,
        trading=trading,
        history_lookback_min=0,
    )
    async with simulated(config) as (sim, config):
        rt = Runtime(config, clock=lambda: time.time_ns() + skew_ns)
        logs: list = []
        rt.add_log_listener(logs.append)
        task = asyncio.get_running_loop().create_task(rt.run())
        try:
            await wait_for(
                lambda: (
                    task.done()
                    or (
                        rt.engine.trader is not None
                        and len(rt.engine.trader.fills) >= 2
                        and rt.gateway.user_stream_connected
                    )
                ),
                15,
                "two fills with the account stream up",
            )
            assert not task.done(), task
        finally:
            rt.request_stop("test over")
            code = await asyncio.wait_for(task, 15)

    assert code == 0
    refused = [
        (r.level, r.msg, r.fields)
        for r in logs
        if r.level == "error"
        or "-1021" in str(r.fields)
        or "recvWindow" in str(r.fields)
        or "Timestamp" in str(r.fields)
    ]
    assert refused == []
    assert (
        rt.engine.counters.get("venue_orders_check_failed", 0) == 0
        and rt.engine.counters.get("fill_import_failed", 0) == 0
    )
    venue_trades = {str(t["id"]) for t in sim.venue.user_trades(ACCOUNT, SYMBOL, limit=1000)}
    assert venue_trades and venue_trades == {f.trade_id for f in rt.engine.trader.fills}
