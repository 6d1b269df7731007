"""The simulator's fault API is strict: unknown parameters and out-of-range values are refused
with a JSON 400 that says what is allowed, and nothing it accepts can stop the market."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from epochbot.sim.faults import FAULT_KINDS, FaultBoard, FaultError


async def post(http, sim, path, body):
    async with http.post(
        sim.rest_url + path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    ) as r:
        return r.status, await r.json()


async def market_moves(sim, symbol="BTCUSDT", timeout=3.0) -> bool:
    start = sim.market(symbol).update_id
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if sim.market(symbol).update_id > start:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_an_unknown_parameter_is_refused_with_the_list_of_known_ones(usdm, http):
    status, body = await post(http, usdm, "/_sim/fault", {"kind": "gap", "skp": 3})

    assert status == 400
    assert "skp" in body["error"] and "skip" in body["error"]
    assert set(body["known"]) == {"kind", "symbol", "count", "duration_s", "skip"}
    assert usdm.faults.to_json()["active"] == []


@pytest.mark.parametrize(
    "spec, word",
    [
        ({"kind": "gap", "skip": 1e30}, "skip"),
        ({"kind": "gap", "skip": 2.5}, "whole"),
        ({"kind": "gap", "skip": 0}, "skip"),
        ({"kind": "stale", "lag_ms": 1e20}, "lag_ms"),
        ({"kind": "stale", "lag_ms": -1}, "lag_ms"),
        ({"kind": "latency", "ms": 1e12}, "ms"),
        ({"kind": "latency", "ms": "200"}, "ms"),
        ({"kind": "snapshot_fail", "status": 999}, "status"),
        ({"kind": "snapshot_fail", "status": 42}, "status"),
        ({"kind": "snapshot_fail", "status": True}, "status"),
        ({"kind": "snapshot_ratelimit", "status": 503}, "429"),
        ({"kind": "snapshot_ratelimit", "retry_after": 1e9}, "retry_after"),
        ({"kind": "stall", "duration_s": 1e9}, "duration_s"),
        ({"kind": "stall", "scope": "everywhere"}, "scope"),
        ({"kind": "malformed", "count": -1}, "count"),
        ({"kind": "gap", "symbol": "BTC/USDT; drop"}, "symbol"),
    ],
)
async def test_out_of_range_values_are_refused_and_the_market_keeps_running(usdm, http, spec, word):
    status, body = await post(http, usdm, "/_sim/fault", spec)

    assert status == 400 and word in body["error"]
    assert usdm.faults.to_json()["active"] == []
    assert await market_moves(usdm)


@pytest.mark.parametrize("body", [[1, 2], "gap", {"kind": None}, {}, {"kind": "teleport"}])
async def test_bodies_that_are_not_a_fault_get_a_json_400(usdm, http, body):
    status, answer = await post(http, usdm, "/_sim/fault", body)

    assert status == 400 and answer["error"]


async def test_accepted_extremes_do_not_hang_the_simulator(usdm, http):
    for spec in (
        {"kind": "gap", "skip": 1_000_000, "symbol": "BTCUSDT"},
        {"kind": "stale", "lag_ms": 3_600_000, "duration_s": 1},
        {"kind": "latency", "ms": 600_000, "duration_s": 0.2, "symbol": "ETHUSDT"},
    ):
        status, _ = await post(http, usdm, "/_sim/fault", spec)
        assert status == 200

    assert await market_moves(usdm) and await market_moves(usdm, "ETHUSDT")
    async with http.get(usdm.rest_url + "/_sim/stats") as r:
        assert (await r.json())["update_ids"]["BTCUSDT"] > 0


def test_every_kind_lists_only_parameters_the_board_accepts():
    board = FaultBoard()
    for kind, defaults in FAULT_KINDS.items():
        if kind in ("drop", "expire", "server_shutdown"):
            continue
        fault = board.arm({"kind": kind, **defaults}, now=0.0)
        assert fault.kind == kind
    with pytest.raises(FaultError) as info:
        board.arm({"kind": "latency", "lag_ms": 5})
    assert "ms" in info.value.known and "lag_ms" not in info.value.known


async def test_an_error_in_the_market_generator_is_logged_and_the_market_goes_on(usdm, caplog, monkeypatch):
    market = usdm.market("BTCUSDT")
    original = market.next_depth_event
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("generator bug")
        return original(*args, **kwargs)

    monkeypatch.setattr(market, "next_depth_event", flaky)

    with caplog.at_level(logging.ERROR, logger="epochbot.sim"):
        for _ in range(5):
            assert await market_moves(usdm)

    assert calls["n"] > 3

    assert usdm.stats["generator_errors"] >= 1
    assert any("generator error" in r.message for r in caplog.records)


async def test_a_quiet_market_keeps_connections_and_the_mark_price_heartbeat(usdm, http):
    async with (
        http.ws_connect(usdm.ws_url + "/market/stream?streams=btcusdt@markPrice@1s") as mark,
        http.ws_connect(usdm.ws_url + "/public/stream?streams=btcusdt@depth@100ms") as depth,
    ):
        await depth.receive_json(timeout=3)
        status, body = await post(http, usdm, "/_sim/market", {"paused": True, "duration_s": 5})
        assert status == 200 and body["paused"] is True
        frozen = usdm.market("BTCUSDT").update_id
        beats = [await mark.receive_json(timeout=2.5) for _ in range(2)]
        with pytest.raises(asyncio.TimeoutError):
            while True:  # the depth stream may flush what was pending, then says nothing
                msg = await depth.receive_json(timeout=1.0)
                assert msg["data"]["u"] <= frozen

        assert all(b["data"]["e"] == "markPriceUpdate" for b in beats)
        assert usdm.market("BTCUSDT").update_id == frozen and not depth.closed and not mark.closed
        assert await market_moves(usdm, timeout=6)  # duration_s resumed it by itself


async def test_the_market_control_refuses_unknown_fields_and_bad_durations(usdm, http):
    for body in ({"paused": True, "for": 3}, {"paused": "yes"}, {"paused": True, "duration_s": 1e12}):
        status, answer = await post(http, usdm, "/_sim/market", body)
        assert status == 400 and "known" in answer
    assert not usdm.paused
