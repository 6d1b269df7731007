"""Binance's request-weight limit in the simulator: 429 with Retry-After, then 418 for a client
that keeps going, and X-MBX-USED-WEIGHT-1M on every answer."""

from __future__ import annotations

import aiohttp

from epochbot.sim.server import SimConfig, SimExchange
from epochbot.sim.weights import WeightLimiter, request_weight


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_weights_are_binances_for_depth_klines_and_exchange_info():
    assert request_weight("usdm", "/fapi/v1/depth", {"limit": "1000"}) == 20
    assert request_weight("usdm", "/fapi/v1/depth", {"limit": "100"}) == 5
    assert request_weight("spot", "/api/v3/depth", {"limit": "1000"}) == 50
    assert request_weight("usdm", "/fapi/v1/klines", {"limit": "120"}) == 2
    assert request_weight("usdm", "/fapi/v1/klines", {"limit": "1000"}) == 5
    assert request_weight("spot", "/api/v3/exchangeInfo", {}) == 20
    assert request_weight("usdm", "/_sim/depth", {}) == 0


def test_over_the_limit_is_429_until_the_minute_turns_then_fine_again():
    clock = FakeClock(6000.0)
    limiter = WeightLimiter(100, clock=clock)
    assert [limiter.check(20).status for _ in range(5)] == [200] * 5

    refused = limiter.check(20)
    clock.t += 60
    after = limiter.check(20)

    assert (refused.status, refused.retry_after_s, refused.used) == (429, 60, 100)
    assert (after.status, after.used) == (200, 20)


def test_a_client_that_ignores_429s_is_banned_with_418_and_longer_each_time():
    clock = FakeClock(6000.0)
    limiter = WeightLimiter(10, ban_after=3, clock=clock)
    limiter.check(10)
    statuses = [limiter.check(1).status for _ in range(5)]
    first_ban = limiter.banned_until - clock.t
    clock.t = limiter.banned_until + 1
    limiter.check(10)
    [limiter.check(1) for _ in range(5)]
    second_ban = limiter.banned_until - clock.t

    assert statuses == [429, 429, 429, 429, 418]
    assert (first_ban, second_ban) == (120, 240)


async def test_the_simulator_answers_429_then_418_with_headers():
    async with SimExchange(SimConfig(market="usdm", symbols=["BTCUSDT"], weight_limit=60)) as sim:
        async with aiohttp.ClientSession() as http:
            statuses, headers = [], []
            for _ in range(12):
                async with http.get(
                    f"{sim.rest_url}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": "1000"}
                ) as resp:
                    statuses.append(resp.status)
                    headers.append((resp.headers.get("X-MBX-USED-WEIGHT-1M"), resp.headers.get("Retry-After")))
    # The minute may turn during the test: then the count restarts; judge the shape.
    assert statuses[0] == 200 and headers[0][0] == "20"
    assert 429 in statuses and 418 in statuses
    first_429 = statuses.index(429)
    assert all(h[0] is not None for h in headers)
    assert headers[first_429][1] is not None and int(headers[first_429][1]) >= 1
    assert statuses.index(418) > first_429
