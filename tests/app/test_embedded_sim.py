"""The embedded simulator is the app's: started for venue ``sim`` without URLs, its URLs and
default keys handed to the runtime, stopped after the runtime; the runtime knows nothing of it."""

from __future__ import annotations

import subprocess
import sys
from contextlib import AsyncExitStack
from dataclasses import replace

import aiohttp

from epochbot.app.embedded_sim import EmbeddedSim, start_runtime, wants_embedded_sim
from epochbot.runtime.config import VENUES, RuntimeConfig, TradingConfig
from tests.helpers import REPO, child_env


async def ping(rest: str) -> int:
    """The simulator's answer to GET /api/v3/ping from this loop (0: nothing listens)."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{rest}/api/v3/ping", timeout=2) as resp:
            return resp.status
    except aiohttp.ClientError:
        return 0


SIM = RuntimeConfig(venue=replace(VENUES["sim"], market="spot"), symbols=("BTCUSDT",), sim_seed=11, sim_rate=20.0)


def test_only_venue_sim_without_urls_needs_the_embedded_simulator():
    given = replace(SIM, venue=replace(SIM.venue, rest_url="http://127.0.0.1:5", ws_url="ws://127.0.0.1:5"))

    assert wants_embedded_sim(SIM)
    assert not wants_embedded_sim(given)
    assert not wants_embedded_sim(replace(SIM, venue=VENUES["binance-usdm"]))


async def test_started_it_hands_over_its_urls_and_its_keys_only_to_a_trader_without_any():
    trading = replace(SIM, trading=TradingConfig(strategy="quoter"))
    keyed = replace(SIM, trading=TradingConfig(strategy="quoter", api_key="mine", api_secret="also-mine"))

    async with EmbeddedSim(trading) as ready:
        sim_keys = (ready.trading.api_key, ready.trading.api_secret)
        urls = (ready.venue.rest_url, ready.venue.ws_url)
        status = await ping(ready.venue.rest_url)
    async with EmbeddedSim(keyed) as ready_keyed:
        own_keys = (ready_keyed.trading.api_key, ready_keyed.trading.api_secret)

    assert urls[0].startswith("http://127.0.0.1:") and urls[1].startswith("ws://127.0.0.1:") and status == 200
    assert sim_keys == ("sim-key", "sim-secret") and own_keys == ("mine", "also-mine")
    assert ready.venue.market == "spot" and ready.symbols == ("BTCUSDT",)


async def test_start_runtime_starts_it_first_says_where_and_stops_it_with_the_stack():
    async with AsyncExitStack() as stack:
        runtime, sim = await start_runtime(SIM, stack)
        rest = runtime.config.venue.rest_url
        said = [r for r in runtime.engine.pending_log if r.msg == "embedded simulator started"]
        assert sim is not None and sim.config.seed == 11 and rest == sim.rest_url
        assert said and said[0].fields["rest"] == rest and said[0].fields["source"] == "runtime"
        assert await ping(rest) == 200
    assert await ping(rest) == 0  # stopped with the stack


async def test_a_venue_with_urls_gets_a_runtime_and_no_simulator():
    given = replace(SIM, venue=replace(SIM.venue, rest_url="http://127.0.0.1:5", ws_url="ws://127.0.0.1:5"))
    async with AsyncExitStack() as stack:
        runtime, sim = await start_runtime(given, stack)

    assert sim is None and runtime.config.venue.rest_url == "http://127.0.0.1:5"


def test_the_runtime_does_not_import_the_simulator():
    code = (
        "import sys\nimport epochbot.runtime.runtime\n"
        "print(sorted(m for m in sys.modules if m == 'epochbot.sim' or m.startswith('epochbot.sim.')))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), cwd=REPO)

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
