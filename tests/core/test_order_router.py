"""Order transport and account stream against the simulator over loopback: WebSocket API first,
REST when the trading session is down, unknown execution exactly as on REST, symbol status
enforced before sending, and account-stream sessions replaced with their stragglers discarded."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from epochbot.model import trade_events as tev
from epochbot.model.numeric import UnitCodec
from epochbot.sim.server import SimConfig, SimExchange
from epochbot.venues.binance.account_stream import AccountStream, ws_api_url
from epochbot.venues.binance.order_router import OrderRouter
from epochbot.venues.binance.rest import RestClient, RestError
from epochbot.venues.binance.signing import Signer
from epochbot.venues.binance.wsapi import WsApiSession
from tests.helpers import wait_for

SIGNER = Signer("sim-key", "sim-secret")


@pytest.fixture
async def venue():
    async with SimExchange(SimConfig(market="usdm", symbols=["BTCUSDT"], seed=7, rate=20)) as sim:
        async with aiohttp.ClientSession() as http:
            yield sim, RestClient(http, sim.rest_url, "usdm")


def order(sim, coid: str) -> dict:
    m = sim.market("BTCUSDT")
    from epochbot.sim.market import fixed

    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": fixed(m.best_bid - 100 * m.tick, m.price_decimals),
        "newClientOrderId": coid,
    }


async def started(router: OrderRouter) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(router.run())
    await wait_for(lambda: router.ws_up, what="the trading session")
    return task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_orders_go_over_the_websocket_api_while_its_session_is_up_and_over_rest_when_it_is_down(venue):
    sim, rest = venue
    router = OrderRouter(rest, SIGNER, ws_api=ws_api_url("usdm", sim.ws_url))
    task = await started(router)
    body = await router.call("POST", order(sim, "r-1"))
    assert body["status"] == "NEW" and router.stats["ws"] == 1 and router.stats["rest"] == 0
    await stop(task)
    assert not router.ws_up
    body = await router.call("GET", {"symbol": "BTCUSDT", "origClientOrderId": "r-1"})
    assert body["clientOrderId"] == "r-1" and router.stats["rest"] == 1


async def test_open_orders_come_over_the_websocket_api_or_rest_alike(venue):
    sim, rest = venue
    router = OrderRouter(rest, SIGNER, ws_api=ws_api_url("usdm", sim.ws_url))
    task = await started(router)
    await router.call("POST", order(sim, "o-1"))
    over_ws = await router.open_orders("BTCUSDT")
    assert router.stats["rest"] == 0
    await stop(task)
    over_rest = await router.open_orders("BTCUSDT")
    assert router.stats["rest"] == 1
    assert [o["clientOrderId"] for o in over_ws] == [o["clientOrderId"] for o in over_rest] == ["o-1"]


@pytest.mark.parametrize("how", ["drop", "timeout", "503"])
async def test_a_lost_unanswered_or_5xx_order_request_is_unknown_and_never_resent(venue, how):
    sim, rest = venue
    router = OrderRouter(rest, SIGNER, ws_api=ws_api_url("usdm", sim.ws_url), timeout_s=0.5)
    task = await started(router)
    sim.inject("unknown_execution", how=how)
    with pytest.raises(RestError) as caught:
        await router.call("POST", order(sim, "u-1"))
    assert caught.value.unknown_execution
    assert router.stats["rest"] == 0  # not retried over the other transport
    assert sim.orders.place_requests == {"u-1": 1}
    await stop(task)


async def test_a_new_order_outside_trading_is_refused_before_sending_and_cancels_still_go(venue):
    sim, rest = venue
    router = OrderRouter(
        rest, SIGNER, ws_api=ws_api_url("usdm", sim.ws_url), symbol_status={"BTCUSDT": "BREAK"}, status_refresh_s=3600
    )
    task = await started(router)
    with pytest.raises(RestError) as caught:
        await router.call("POST", order(sim, "s-1"))
    assert not caught.value.unknown_execution and "BREAK" in str(caught.value)
    assert sim.orders.place_requests == {}  # nothing was sent
    with pytest.raises(RestError) as cancel:
        await router.call("DELETE", {"symbol": "BTCUSDT", "origClientOrderId": "s-1"})
    assert cancel.value.code == -2011  # the venue answered: the cancel was sent
    await stop(task)


async def test_the_venues_symbol_status_refusal_is_learned_and_trading_resumes_when_it_clears(venue):
    sim, rest = venue
    changes: list = []
    router = OrderRouter(
        rest,
        SIGNER,
        ws_api=ws_api_url("usdm", sim.ws_url),
        symbol_status={"BTCUSDT": "TRADING"},
        status_refresh_s=0,
        put=changes.append,
    )
    task = await started(router)
    watch = asyncio.get_running_loop().create_task(router.watch_status(every_s=0.05))
    sim.inject("symbol_status", symbol="BTCUSDT", status="HALT")
    with pytest.raises(RestError) as caught:
        await router.call("POST", order(sim, "h-1"))
    assert caught.value.code == -1122
    await wait_for(lambda: router.symbol_status["BTCUSDT"] == "HALT", what="the status refresh")
    with pytest.raises(RestError):
        await router.call("POST", order(sim, "h-2"))
    assert "h-2" not in sim.orders.place_requests and router.stats["refused_status"] == 1
    sim.faults.clear()
    await wait_for(lambda: router.symbol_status["BTCUSDT"] == "TRADING", what="TRADING again")
    assert (await router.call("POST", order(sim, "h-3")))["status"] == "NEW"
    assert [(e.symbol, e.status) for e in changes] == [
        ("BTCUSDT", "HALT"),
        ("BTCUSDT", "TRADING"),
    ]  # for the trader's gate
    await stop(watch)
    await stop(task)


def test_reported_rate_limits_hold_the_next_order_until_the_window_has_room():
    session = WsApiSession("ws://127.0.0.1:1/unused")
    session._note_limits(
        [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 10},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100, "count": 100},
        ]
    )
    assert session.wait_s(orders=True) > 0
    assert session.wait_s(orders=False) == 0


def _account_stream(sim, rest, put, signer=SIGNER) -> AccountStream:
    codecs = {"BTCUSDT": UnitCodec(sim.market("BTCUSDT").price_decimals, sim.market("BTCUSDT").qty_decimals)}
    return AccountStream(market=sim.config.market, rest=rest, signer=signer, ws_base=sim.ws_url, put=put, codecs=codecs)


async def test_a_replaced_account_streams_late_frames_are_discarded(venue):
    sim, rest = venue
    got: list = []
    stream = _account_stream(sim, rest, got.append)
    stream.epoch = 2
    frame = {
        "e": "ORDER_TRADE_UPDATE",
        "E": 1,
        "o": {
            "s": "BTCUSDT",
            "c": "x",
            "S": "BUY",
            "x": "NEW",
            "X": "NEW",
            "z": "0",
            "l": "0",
            "L": "0",
            "i": 1,
            "T": 1,
        },
    }
    stream._on_message(1, frame)
    assert got == [] and stream.stats["stragglers"] == 1
    stream._on_message(2, frame)
    assert [type(e) for e in got] == [tev.OrderUpdate]


@pytest.mark.parametrize("market", ["spot", "usdm"])
async def test_server_shutdown_replaces_the_account_stream_and_confidence_hears_of_it(market):
    async with SimExchange(SimConfig(market=market, symbols=["BTCUSDT"], seed=7, rate=20)) as sim:
        async with aiohttp.ClientSession() as http:
            got: list = []
            stream = _account_stream(sim, RestClient(http, sim.rest_url, market), got.append)
            task = asyncio.get_running_loop().create_task(stream.run())
            await wait_for(lambda: stream.connected, what="the account stream")
            sim.inject("server_shutdown")
            await wait_for(lambda: stream.epoch == 2 and stream.connected, what="the replacement session")
            states = [(e.up, e.stream_epoch) for e in got if type(e) is tev.AccountStreamState]
            assert states == [(True, 1), (False, 1), (True, 2)]
            await stop(task)


async def test_the_spot_account_stream_signs_with_the_clock_and_server_offset_it_is_given():
    # A local clock an hour behind, and the venue's offset that says so: the signing timestamp
    # must come from both (the wall clock plus the offset would be an hour ahead: -1021).
    hour_ns = 3_600_000_000_000
    async with SimExchange(SimConfig(market="spot", symbols=["BTCUSDT"], seed=7, rate=20)) as sim:
        async with aiohttp.ClientSession() as http:
            codecs = {"BTCUSDT": UnitCodec(sim.market("BTCUSDT").price_decimals, sim.market("BTCUSDT").qty_decimals)}
            stream = AccountStream(
                market="spot",
                rest=RestClient(http, sim.rest_url, "spot"),
                signer=SIGNER,
                ws_base=sim.ws_url,
                put=lambda event: None,
                codecs=codecs,
                clock=lambda: time.time_ns() - hour_ns,
                offset_ms=lambda: hour_ns / 1e6,
            )
            task = asyncio.get_running_loop().create_task(stream.run())

            await wait_for(lambda: stream.connected, what="the account stream signed with the given clock")

            assert stream.stats["sessions"] == 1
            await stop(task)
