"""A clean stop leaves the venue and the database complete.

The runtime paper-trades (quoter, fills within seconds) on its embedded USD-M simulator with a
SQLite file, then is asked to stop. Afterwards only the main ``.sqlite3`` file is copied (no
``-wal``/``-shm``), and that copy alone must hold every execution the venue made for us and the
final state of every order: nothing is left working in the journal, every order the venue still
had open was cancelled (CANCELED recorded in the journal), and nothing is open at the venue.

Bounded (< 20 s), loopback only, waits poll state with deadlines.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from dataclasses import replace

import pytest

from epochbot.runtime.config import VENUES, RuntimeConfig, TradingConfig
from epochbot.runtime.runtime import Runtime
from tests.helpers import simulated, wait_for

SYMBOL = "BTCUSDT"
ACCOUNT = "acct-1"


@pytest.mark.parametrize("market", ["usdm", "spot"])
async def test_after_a_clean_stop_the_main_database_file_alone_holds_every_fill_and_final_order_state(tmp_path, market):
    db = tmp_path / "db.sqlite3"
    trading = TradingConfig(
        strategy="quoter",
        params={
            "half_spread_ticks": 1,
            "half_spread_bps": 0.0,
            "exit_edge_bps": -1.0,
            "skew_bps_per_size": 0.0,
            "refresh_ms": 300,
        },
        storage_path=str(db),
    )
    config = RuntimeConfig(
        venue=replace(VENUES["sim"], market=market),
        symbols=(SYMBOL,),
        sim_rate=50.0,
        trading=trading,
        history_lookback_min=0,
    )
    async with simulated(config) as (sim, config):
        rt = Runtime(config)
        task = asyncio.get_running_loop().create_task(rt.run())
        try:
            await wait_for(
                lambda: (
                    task.done()
                    or (
                        rt.engine.trader is not None
                        and len(rt.engine.trader.fills) >= 3
                        and rt.engine.trader.orders.working()
                    )
                ),
                15,
                "three fills and a working order",
            )
            assert not task.done(), task
        finally:
            rt.request_stop("test over")
            code = await asyncio.wait_for(task, 15)
    assert code == 0

    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(db, copy)  # the main file only: no -wal, no -shm
    conn = sqlite3.connect(copy)
    try:
        stored_trades = sorted(r[0] for r in conn.execute("SELECT trade_id FROM fills WHERE symbol = ?", (SYMBOL,)))
        last_states = dict(
            conn.execute(
                "SELECT o.client_order_id, o.state FROM orders o JOIN "
                "(SELECT client_order_id, MAX(id) AS last FROM orders GROUP BY client_order_id) l"
                " ON o.id = l.last"
            ).fetchall()
        )
    finally:
        conn.close()

    venue = sim.venue
    venue_trades = sorted(str(t["id"]) for t in venue.user_trades(ACCOUNT, SYMBOL, limit=1000))
    assert venue_trades and stored_trades == venue_trades
    assert venue.open_orders(ACCOUNT, SYMBOL) == []
    working = {c: s for c, s in last_states.items() if s in ("PENDING_NEW", "NEW", "PARTIALLY_FILLED", "UNKNOWN")}
    assert working == {}, working
    assert "CANCELED" in last_states.values()  # the working order(s) of the stop
    for coid, state in last_states.items():
        at_venue = venue.find_order(ACCOUNT, SYMBOL, coid)
        if at_venue is not None:
            assert state == at_venue["status"], (coid, state, at_venue["status"])
