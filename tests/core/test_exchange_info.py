"""exchangeInfo: one strict parser for the REST client, replay and backtest."""

from __future__ import annotations

import copy

import aiohttp
import orjson
import pytest
from aiohttp import web

from epochbot.offline.replay import replay_file
from epochbot.sim.server import SimConfig, SimExchange
from epochbot.venues.binance.exchange_info import ExchangeInfoError, SymbolFilters, parse_exchange_info
from epochbot.venues.binance.rest import RestClient, RestError
from tests.core.test_replay import depth_frame, row, snapshot_row, write


def sim_info(market: str, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> dict:
    return SimExchange(SimConfig(market=market, symbols=list(symbols), seed=7)).exchange_info()


def spot_symbol(name: str = "ABCUSDT", **filters: dict) -> dict:
    base = {
        "PRICE_FILTER": {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000.00", "tickSize": "0.01"},
        "LOT_SIZE": {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "900.000", "stepSize": "0.001"},
        "NOTIONAL": {"filterType": "NOTIONAL", "minNotional": "5.00"},
    }
    base.update(filters)
    return {"symbol": name, "status": "TRADING", "quoteAsset": "USDT", "filters": list(base.values())}


def test_spot_filters_are_read_as_the_venues_exact_strings():
    info = parse_exchange_info(orjson.dumps({"symbols": [spot_symbol()]}))

    assert info.filters == {
        "ABCUSDT": SymbolFilters("ABCUSDT", "0.01", "0.001", "5.00", "0.001", "900.000", "USDT", "TRADING")
    }
    assert info.statuses == {"ABCUSDT": "TRADING"}


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_the_simulators_exchange_info_gives_every_symbol_its_filters_and_the_weight_limit(market):
    body = orjson.dumps(sim_info(market))

    info = parse_exchange_info(body)

    assert set(info.filters) == {"BTCUSDT", "ETHUSDT"}
    btc = info.filters["BTCUSDT"]
    assert btc.quote_asset == "USDT" and btc.status == "TRADING"
    assert float(btc.min_notional) > 0  # spot NOTIONAL minNotional, USD-M MIN_NOTIONAL notional
    assert info.weight_limit_1m == (6000 if market == "spot" else 2400)


def test_only_the_symbols_asked_for_are_read_and_the_others_only_need_a_name():
    odd = {"symbol": "ODDUSDT", "status": 7, "filters": "not a list"}

    info = parse_exchange_info({"symbols": [odd, spot_symbol()]}, symbols=["ABCUSDT", "MISSING"])

    assert list(info.filters) == ["ABCUSDT"]
    assert info.statuses == {"ABCUSDT": "TRADING"}


def test_a_symbol_without_price_or_lot_filters_is_listed_but_has_no_filters():
    entry = spot_symbol()
    entry["filters"] = [f for f in entry["filters"] if f["filterType"] != "LOT_SIZE"]

    info = parse_exchange_info({"symbols": [entry]})

    assert info.filters == {} and info.statuses == {"ABCUSDT": "TRADING"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>busy</html>", "bad exchangeInfo: not JSON"),
        (b"[]", "bad exchangeInfo: not a JSON object"),
        (b'{"symbols": {}}', "bad exchangeInfo: field symbols must be a list"),
        (b'{"symbols": [3]}', "bad exchangeInfo: symbols[0] is not an object"),
        (b'{"symbols": [{"symbol": 3}]}', "bad exchangeInfo: symbols[0]: field symbol must be a short string"),
        (
            {"symbols": [spot_symbol(PRICE_FILTER={"filterType": "PRICE_FILTER", "tickSize": 0.01})]},
            "bad exchangeInfo: ABCUSDT: field tickSize must be a decimal string",
        ),
        (
            {"symbols": [spot_symbol(PRICE_FILTER={"filterType": "PRICE_FILTER", "tickSize": "1e-2"})]},
            "bad exchangeInfo: ABCUSDT: field tickSize is not a plain decimal",
        ),
        (
            {"symbols": [spot_symbol(LOT_SIZE={"filterType": "LOT_SIZE", "stepSize": "0.000"})]},
            "bad exchangeInfo: ABCUSDT: field stepSize must be positive",
        ),
        (
            {"symbols": [spot_symbol(PRICE_FILTER={"filterType": "PRICE_FILTER"})]},
            "bad exchangeInfo: ABCUSDT: field tickSize must be a decimal string",
        ),
        (
            {"symbols": [spot_symbol(NOTIONAL={"filterType": "NOTIONAL", "minNotional": "-5"})]},
            "bad exchangeInfo: ABCUSDT: field minNotional is not a plain decimal",
        ),
        ({"symbols": [{**spot_symbol(), "filters": {}}]}, "bad exchangeInfo: ABCUSDT: field filters must be a list"),
        ({"symbols": [{**spot_symbol(), "filters": [{}]}]}, "bad exchangeInfo: ABCUSDT: a filter is not an object"),
        ({"symbols": [{**spot_symbol(), "status": None}]}, "bad exchangeInfo: ABCUSDT: field status must be a string"),
        (
            {
                "symbols": [],
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1}],
            },
            "bad exchangeInfo: REQUEST_WEIGHT limit must be a positive integer",
        ),
    ],
)
def test_bad_input_is_a_data_error_naming_the_symbol_and_the_field(body, expected):
    with pytest.raises(ExchangeInfoError) as info:
        parse_exchange_info(body)

    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


async def test_the_rest_client_reads_filters_and_the_weight_limit_from_the_simulator():
    async with SimExchange(SimConfig(market="spot", symbols=["BTCUSDT", "ETHUSDT"], seed=7, weight_limit=1200)) as sim:
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, sim.rest_url, "spot")

            filters = await rest.exchange_filters(["ETHUSDT", "NOPEUSDT"])
            statuses = await rest.symbol_statuses(["BTCUSDT"])

    assert list(filters) == ["ETHUSDT"] and filters["ETHUSDT"].symbol == "ETHUSDT"
    assert rest.weight_limit_1m == 1200
    assert statuses == {"BTCUSDT": "TRADING"}


async def test_the_rest_client_turns_a_hostile_exchange_info_into_a_rest_error():
    hostile = copy.deepcopy(sim_info("usdm"))
    hostile["symbols"][0]["filters"][0]["tickSize"] = {"$gt": ""}

    async def exchange_info(request: web.Request) -> web.Response:
        return web.json_response(hostile)

    app = web.Application()
    app.router.add_get("/fapi/v1/exchangeInfo", exchange_info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            rest = RestClient(session, f"http://127.0.0.1:{port}", "usdm")
            with pytest.raises(RestError) as info:
                await rest.exchange_filters(["BTCUSDT"])
    finally:
        await runner.cleanup()

    assert "bad exchangeInfo: BTCUSDT: field tickSize must be a decimal string" in str(info.value)


def test_replay_applies_the_recorded_exchange_info_scale_and_reports_a_bad_one_by_line(tmp_path):
    good = {"symbols": [spot_symbol("ABC")]}
    bad = {"symbols": [spot_symbol("ABC", LOT_SIZE={"filterType": "LOT_SIZE", "stepSize": 1})]}
    rows = [
        row(0.9, "rest", orjson.dumps(bad).decode(), url="https://x/api/v3/exchangeInfo"),  # line 2
        row(0.95, "rest", orjson.dumps(good).decode(), url="https://x/api/v3/exchangeInfo"),
        row(1.0, "open", url="wss://x/stream?streams=abc@depth@100ms"),
        row(1.1, "ws", depth_frame("ABC", 100, 101, bids=[["10.00", "3.000"]])),
        snapshot_row(1.2, "ABC", 100),
    ]

    result = replay_file(str(write(tmp_path, "binance-spot", rows)))

    assert [(m["line"], m["reason"][:40]) for m in result.malformed] == [
        (2, "bad exchangeInfo: ABC: field stepSize mu")
    ]
    codec = result.engine.symbols["ABC"].book.codec
    assert (codec.price_decimals, codec.qty_decimals) == (2, 3)  # from the filters, not the snapshot's "1.00"
