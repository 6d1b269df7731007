"""Shared helpers for simulator tests: start a SimExchange on an ephemeral port."""

from __future__ import annotations

import aiohttp
import pytest

from epochbot.sim.server import SimConfig, SimExchange


@pytest.fixture
async def usdm():
    async with SimExchange(
        SimConfig(market="usdm", symbols=["BTCUSDT", "ETHUSDT"], seed=7, rate=50, tick_s=0.02)
    ) as sim:
        yield sim


@pytest.fixture
async def spot():
    async with SimExchange(
        SimConfig(market="spot", symbols=["BTCUSDT", "ETHUSDT"], seed=7, rate=50, tick_s=0.02)
    ) as sim:
        yield sim


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s
