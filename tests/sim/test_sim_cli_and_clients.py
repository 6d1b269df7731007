"""The `epochbot sim` command, the core/app boundary, and an unmodified third-party client."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from epochbot.sim.server import SimConfig, SimExchange

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cli_prints_one_ready_line_and_exits_0_on_sigterm():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from epochbot.app.commands.sim import main; sys.exit(main())",
            "--port",
            "0",
            "--market",
            "spot",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--seed",
            "7",
            "--fault",
            'stale:{"lag_ms":5}',
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("epochbot-sim ready market=spot rest=http://127.0.0.1:")
        assert "ws=ws://127.0.0.1:" in line and "symbols=BTCUSDT,ETHUSDT seed=7" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(4) == 0
    finally:
        proc.kill()


def test_cli_rejects_bad_fault_flag():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from epochbot.app.commands.sim import main; sys.exit(main())",
            "--port",
            "0",
            "--fault",
            "nonsense",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=5,
    )
    assert out.returncode == 2 and "unknown fault kind" in out.stderr


def test_core_sim_does_not_import_app():
    code = "import sys, epochbot.sim.server; print(any(m == 'app' or m.startswith('app.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=5)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("market", ["spot", "usdm"])
async def test_python_binance_depth_cache_agrees_with_simulator(market):
    pytest.importorskip("binance")
    from binance import AsyncClient, BinanceSocketManager, DepthCacheManager, FuturesDepthCacheManager

    async with SimExchange(SimConfig(market=market, symbols=["BTCUSDT"], rate=20)) as sim:
        client = AsyncClient()
        client.API_URL = sim.rest_url + "/api"
        client.FUTURES_URL = sim.rest_url + "/fapi"
        try:
            if market == "spot":
                info = await client.get_exchange_info()
            else:
                info = await client.futures_exchange_info()
            assert info["symbols"][0]["symbol"] == "BTCUSDT"
            bm = BinanceSocketManager(client)
            bm.STREAM_URL = sim.ws_url + "/"
            bm.FSTREAM_URL = sim.ws_url + "/"
            cls = DepthCacheManager if market == "spot" else FuturesDepthCacheManager
            dcm = cls(client, "BTCUSDT", bm=bm, limit=1000 if market == "spot" else 1000)
            async with dcm as socket:
                for _ in range(2):
                    cache = await asyncio.wait_for(socket.recv(), 5)
                sim.pause_market()
                target = sim.market("BTCUSDT").update_id
                # apply whatever was in flight before the pause (the client tracks the last u)
                while (getattr(dcm, "_last_update_id", None) or target) < target:
                    cache = await asyncio.wait_for(socket.recv(), 3)
                truth = sim.depth_snapshot("BTCUSDT", 100)
                got_b = [tuple(x) for x in cache.get_bids()]
                got_a = [tuple(x) for x in cache.get_asks()]
                n = min(50, len(got_b), len(got_a))
                assert n >= 10
                assert got_b[:n] == [(float(p), float(q)) for p, q in truth["bids"][:n]]
                assert got_a[:n] == [(float(p), float(q)) for p, q in truth["asks"][:n]]
        finally:
            await client.close_connection()
