"""A venue's Retry-After is honoured up to a configurable cap, with a warning."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from epochbot.venues.binance.rest import RestClient, RestError


async def serve(retry_after: str):
    async def depth(request):
        return web.Response(
            status=429, body=b'{"code":-1003,"msg":"Too many requests."}', headers={"Retry-After": retry_after}
        )

    async def order(request):
        return web.Response(status=200, body=b"<html>not json</html>")

    app = web.Application()
    app.router.add_get("/fapi/v1/depth", depth)
    app.router.add_post("/fapi/v1/order", order)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def test_a_retry_after_beyond_the_cap_waits_the_cap_and_says_so():
    runner, url = await serve("100000000000000000000")
    warnings = []
    try:
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, url, "usdm", retry_after_cap_s=30)
            rest.log = lambda level, msg, **fields: warnings.append((level, msg, fields))
            try:
                await rest.depth("BTCUSDT", 1000)
            except RestError as exc:
                error = exc
    finally:
        await runner.cleanup()

    assert error.status == 429 and error.retry_after_ms == 30_000
    assert [(level, fields["cap_s"]) for level, _, fields in warnings] == [("warn", 30)]
    assert rest.retry_after_capped == 1


async def test_a_retry_after_within_the_cap_is_honoured_as_given():
    runner, url = await serve("7")
    try:
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, url, "usdm", retry_after_cap_s=30)
            try:
                await rest.depth("BTCUSDT", 1000)
            except RestError as exc:
                error = exc
    finally:
        await runner.cleanup()

    assert error.retry_after_ms == 7_000 and rest.retry_after_capped == 0


async def test_an_unreadable_order_answer_is_an_unknown_execution_not_a_rejection():
    runner, url = await serve("1")
    try:
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, url, "usdm")
            try:
                await rest.signed("POST", "/fapi/v1/order", {"symbol": "BTCUSDT"}, "k", "s")
            except RestError as exc:
                error = exc
    finally:
        await runner.cleanup()

    assert error.unknown_execution
