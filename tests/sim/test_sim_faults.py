"""Every fault kind, armed through the control API or inject(), observed from a client."""

import asyncio
import time
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from epochbot.sim.auth import sign
from epochbot.sim.faults import FaultBoard, FaultError, parse_fault_flag


async def post_fault(http, sim, **spec):
    async with http.post(sim.rest_url + "/_sim/fault", json=spec) as r:
        return r.status, await r.json()


async def diffs(ws, n, timeout=3.0):
    out = []
    while len(out) < n:
        msg = await ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            out.append(msg)
            break
        out.append(msg.data)
    return out


def test_board_counts_durations_and_log():
    board = FaultBoard()
    board.arm({"kind": "gap", "symbol": "btcusdt"}, now=0.0)
    assert board.take("gap", "ETHUSDT", now=1) is None
    assert board.take("gap", "BTCUSDT", now=1).params["skip"] == 1
    assert board.take("gap", "BTCUSDT", now=1) is None
    board.arm({"kind": "latency", "ms": 5, "duration_s": 2}, now=0.0)
    assert board.active("latency", "X", now=1.0) and not board.active("latency", "X", now=3.0)
    assert [e["event"] for e in board.log][:2] == ["armed", "fired"] and all("time" in e for e in board.log)
    with pytest.raises(FaultError):
        board.arm({"kind": "nope"})
    assert parse_fault_flag('stale:{"lag_ms":100}') == {"kind": "stale", "lag_ms": 100}


async def test_control_api_lists_and_clears(usdm, http):
    status, f = await post_fault(http, usdm, kind="stale", lag_ms=10, duration_s=30)
    assert status == 200 and f["kind"] == "stale"
    assert (await post_fault(http, usdm, kind="bogus"))[0] == 400
    async with http.get(usdm.rest_url + "/_sim/faults") as r:
        body = await r.json()
    assert [a["kind"] for a in body["active"]] == ["stale"] and body["log"][0]["event"] == "armed"
    async with http.delete(usdm.rest_url + "/_sim/faults") as r:
        assert (await r.json())["cleared"] == 1


async def test_gap_skips_update_ids_once(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        first = await ws.receive_json(timeout=3)
        usdm.inject("gap", symbol="BTCUSDT", skip=3)
        evs = [first] + [orjson.loads(x) for x in await diffs(ws, 6)]
    breaks = [b for a, b in zip(evs, evs[1:], strict=False) if b["pu"] != a["u"]]
    assert len(breaks) == 1 and breaks[0]["U"] == breaks[0]["pu"] + 1
    before = evs[evs.index(breaks[0]) - 1]
    assert breaks[0]["pu"] - before["u"] == 3


async def test_stale_timestamps_lag(usdm, http):
    usdm.inject("stale", lag_ms=60_000)
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        d = await ws.receive_json(timeout=3)
    assert time.time() * 1000 - d["E"] > 55_000 and d["T"] == d["E"]


async def test_latency_delays_delivery(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        await ws.receive_json(timeout=3)
        usdm.inject("latency", ms=400, duration_s=5)
        await asyncio.sleep(0.05)
        d = await ws.receive_json(timeout=3)
        while time.time() * 1000 - d["E"] < 300:  # frames queued before the fault
            d = await ws.receive_json(timeout=3)
        assert time.time() * 1000 - d["E"] >= 350


async def test_a_latency_spell_delays_frames_but_never_reorders_them_so_the_book_stays_synced(usdm, http):
    # Real TCP never reorders: frames behind a delayed frame wait for it, and when the spell
    # ends the backlog drains in order. A client chaining pu -> u sees no gap at all.
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        first = await ws.receive_json(timeout=3)
        usdm.inject("latency", symbol="BTCUSDT", ms=300, duration_s=0.6)
        frames, lags = [first], []
        while True:  # until a frame sent well after the spell (and its backlog) is over
            d = await ws.receive_json(timeout=3)
            frames.append(d)
            lags.append(time.time() * 1000 - d["E"])
            if not usdm.faults.active("latency") and lags[-1] < 100 and len(frames) > 40:
                break

    breaks = [(a["u"], b["pu"]) for a, b in zip(frames, frames[1:], strict=False) if b["pu"] != a["u"]]
    assert breaks == []  # no gap, no resync
    assert max(lags) >= 280  # and the frames did arrive late


async def test_stall_sends_nothing_then_resumes(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        await ws.receive_json(timeout=3)
        usdm.inject("stall", duration_s=0.6)
        await asyncio.sleep(0.05)
        while True:  # drain frames sent before the stall
            try:
                await ws.receive(timeout=0.05)
            except TimeoutError:
                break
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)
        assert (await ws.receive_json(timeout=2))["e"] == "depthUpdate"
    assert usdm.stats["frames_dropped_stall"] > 0


async def test_a_stall_silences_the_connections_it_found_but_not_new_ones(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as old:
        await old.receive_json(timeout=3)
        usdm.inject("stall", duration_s=3)
        async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as new:
            assert (await new.receive_json(timeout=2))["e"] == "depthUpdate"
        while True:  # drain what the old one had in flight before the stall
            try:
                await old.receive(timeout=0.05)
            except TimeoutError:
                break
        with pytest.raises(asyncio.TimeoutError):
            await old.receive(timeout=0.3)


async def test_a_stall_with_scope_all_silences_new_connections_too(usdm, http):
    usdm.inject("stall", duration_s=1, scope="all")
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.4)


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_malformed_and_truncated_frames(usdm, http, kind):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        await ws.receive_json(timeout=3)
        usdm.inject(kind)
        frames = await diffs(ws, 5)
    bad = 0
    for f in frames:
        try:
            orjson.loads(f)
        except orjson.JSONDecodeError:
            bad += 1
    assert bad == 1


async def test_duplicate_and_out_of_order_events(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        await ws.receive_json(timeout=3)
        usdm.inject("duplicate")
        evs = [orjson.loads(x) for x in await diffs(ws, 5)]
        us = [e["u"] for e in evs]
        assert len(us) - len(set(us)) == 1
        usdm.inject("out_of_order")
        evs = [orjson.loads(x) for x in await diffs(ws, 6)]
        us = [e["u"] for e in evs]
        assert us != sorted(us) and sorted(us) == sorted(set(us))


async def test_snapshot_faults(usdm, http):
    url = usdm.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=5"
    usdm.inject("snapshot_fail", status=502, count=1)
    async with http.get(url) as r:
        assert r.status == 502
    usdm.inject("snapshot_ratelimit", status=418, retry_after=7, count=1)
    async with http.get(url) as r:
        assert r.status == 418 and r.headers["Retry-After"] == "7"
    usdm.inject("snapshot_ratelimit", count=1)
    async with http.get(url) as r:
        assert r.status == 429
    usdm.inject("snapshot_slow", ms=300, count=1)
    t0 = time.monotonic()
    async with http.get(url) as r:
        assert r.status == 200 and time.monotonic() - t0 >= 0.3
    usdm.inject("crossed_snapshot")
    async with http.get(url) as r:
        body = await r.json()
    assert float(body["bids"][0][0]) >= float(body["asks"][0][0])
    async with http.get(url) as r:
        body = await r.json()
    assert float(body["bids"][0][0]) < float(body["asks"][0][0])


async def test_reject_subscribe(usdm, http):
    usdm.inject("reject_subscribe", count=1)
    async with http.ws_connect(usdm.ws_url + "/public/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 9})
        d = await ws.receive_json(timeout=3)
        assert d["id"] == 9 and "error" in d
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 10})
        assert await ws.receive_json(timeout=3) == {"result": None, "id": 10}


@pytest.mark.parametrize("kind,code", [("drop", None), ("expire", 1000)])
async def test_drop_and_expire_close_every_connection(usdm, http, kind, code):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        await ws.receive_json(timeout=3)
        usdm.inject(kind)
        while True:
            msg = await ws.receive(timeout=3)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        if code is not None:
            assert ws.close_code == code


async def test_server_shutdown_usdm_event_then_close(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        await ws.receive_json(timeout=3)
        usdm.inject("server_shutdown", grace_s=0)  # the sudden form (default: 10 s of grace)
        seen = False
        while True:
            msg = await ws.receive(timeout=3)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            seen = seen or orjson.loads(msg.data).get("e") == "serverShutdown"
        assert seen


async def test_server_shutdown_spot_announces_the_shutdown_then_closes(spot, http):
    # Spot WebSocket Streams send serverShutdown before a server goes down (since 2026-05-08).
    async with http.ws_connect(spot.ws_url + "/ws/btcusdt@depth@100ms") as ws:
        await ws.receive_json(timeout=3)
        spot.inject("server_shutdown", grace_s=0)  # the sudden form (default: 10 s of grace)
        seen = False
        while True:
            msg = await ws.receive(timeout=3)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            seen = seen or orjson.loads(msg.data).get("e") == "serverShutdown"
        assert seen


async def test_unknown_execution_returns_503(usdm, http):
    usdm.inject("unknown_execution", count=1)
    qs = urlencode(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.001",
            "timestamp": int(time.time() * 1000),
        }
    )
    qs += "&signature=" + sign("sim-secret", qs)
    async with http.post(usdm.rest_url + "/fapi/v1/order?" + qs, headers={"X-MBX-APIKEY": "sim-key"}) as r:
        assert r.status == 503
        assert await r.json() == {"code": -1000, "msg": "Unknown error, please check your request or try again later."}


async def test_pause_market_freezes_update_ids_and_stats(usdm, http):
    async with http.post(usdm.rest_url + "/_sim/market", json={"paused": True}) as r:
        ids = (await r.json())["update_ids"]
    await asyncio.sleep(0.2)
    async with http.get(usdm.rest_url + "/_sim/stats") as r:
        stats = await r.json()
    assert stats["update_ids"] == ids and stats["paused"] is True
    assert {"messages", "connections_open", "slow_disconnects"} <= set(stats)
    usdm.resume_market()
    await asyncio.sleep(0.2)
    assert usdm.market("BTCUSDT").update_id > ids["BTCUSDT"]
