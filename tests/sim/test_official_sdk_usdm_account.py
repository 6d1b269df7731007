"""Binance's official USD-M SDK, unmodified, driving the account and protection model of `epochbot sim`.

``binance-sdk-derivatives-trading-usds-futures`` 18.1 against one ``epochbot sim`` process on
loopback, told only its base URLs and an HMAC key the simulator holds as a paper account: the
Algo Service (a ``closePosition`` STOP_MARKET placed, listed, queried and canceled over REST and the
WebSocket API), the dead-man switch (armed, stopped, and firing), leverage, margin type, position
mode and Multi-Assets mode, and the position and account reads that follow them. Every answer must
parse into the SDK's own model (a raw dict means the SDK gave up on it), REST answers must log no
parse warning, and ALGO_UPDATE events must parse into the SDK's stream model.

The style is that of ``test_official_sdks.py`` (the conformance contract); this file holds the
account side so the two can change independently. Bounded in time: every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import ROUND_DOWN, Decimal

import aiohttp
import pytest

from tests.helpers import SimProcess, wait_until

sdk_config = pytest.importorskip("binance_common.configuration")
sdk_errors = pytest.importorskip("binance_common.errors")
usdm = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures")
rest_models = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.rest_api.models")
ws_models = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.websocket_api.models")
stream_models = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.websocket_streams.models")

pytestmark = pytest.mark.conformance

SYMBOL = "BTCUSDT"
KEY, SECRET = "sdk-account-key", "sdk-account-secret"
WAIT_S = 5.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with SimProcess(
        tmp_path_factory.mktemp("usdm-account"),
        market="usdm",
        symbols=(SYMBOL,),
        args=("--rate", "20"),
        env={"EPOCHBOT_SIM_ACCOUNTS": f"{KEY}:{SECRET}"},
    ) as process:
        yield process


def client(sim: SimProcess):
    keys = {"api_key": KEY, "api_secret": SECRET}
    return usdm.DerivativesTradingUsdsFutures(
        # A 10 s timeout instead of the SDK's 1 s: the machine running the suite may be loaded.
        config_rest_api=sdk_config.ConfigurationRestAPI(base_path=sim.rest, timeout=10_000, **keys),
        config_ws_api=sdk_config.ConfigurationWebSocketAPI(stream_url=sim.ws + "/ws-fapi/v1", **keys),
    )


def parsed(answer):
    """The SDK model of an answer (a dict is what the SDK returns when it could not parse one)."""
    data = answer.data()
    assert not isinstance(data, dict), f"the SDK did not get a model: {data}"
    return data


def sdk_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "root" and r.levelno >= logging.WARNING]


def mark_price(sim: SimProcess) -> Decimal:
    return Decimal(sim.get(f"/fapi/v1/premiumIndex?symbol={SYMBOL}")["markPrice"])


def price_off_mark(sim: SimProcess, factor: str) -> float:
    """The mark times ``factor`` on a 0.1 grid (the tick): far enough to never trigger in a test."""
    return float((mark_price(sim) * Decimal(factor)).quantize(Decimal("0.1"), rounding=ROUND_DOWN))


def market(rest, side: str, qty: float = 0.01, **extra):
    return rest.new_order(
        symbol=SYMBOL,
        side=rest_models.NewOrderSideEnum[side],
        type=rest_models.NewOrderTypeEnum.MARKET,
        quantity=qty,
        **extra,
    )


def stop_market_close_position(rest, sim: SimProcess, client_algo_id: str):
    return rest.new_algo_order(
        algo_type=rest_models.NewAlgoOrderAlgoTypeEnum.CONDITIONAL,
        symbol=SYMBOL,
        side=rest_models.NewAlgoOrderSideEnum.SELL,
        type=rest_models.NewAlgoOrderTypeEnum.STOP_MARKET,
        trigger_price=price_off_mark(sim, "0.8"),
        working_type=rest_models.NewAlgoOrderWorkingTypeEnum.MARK_PRICE,
        close_position=rest_models.NewAlgoOrderClosePositionEnum.TRUE,
        client_algo_id=client_algo_id,
    )


# ============================================================================ the Algo Service


def test_sdk_rest_places_a_close_position_stop_market_then_lists_queries_and_cancels_it(sim, caplog):
    rest = client(sim).rest_api
    market(rest, "BUY")

    placed = parsed(stop_market_close_position(rest, sim, "sdk-rest-sl"))
    listed = parsed(rest.current_all_algo_open_orders(symbol=SYMBOL))
    queried = parsed(rest.query_algo_order(client_algo_id="sdk-rest-sl"))
    canceled = parsed(rest.cancel_algo_order(algo_id=placed.algo_id))
    history = parsed(rest.query_all_algo_orders(symbol=SYMBOL))
    market(rest, "SELL")

    assert isinstance(placed, rest_models.NewAlgoOrderResponse)
    assert (placed.algo_status, placed.order_type, placed.close_position, placed.working_type) == (
        "NEW",
        "STOP_MARKET",
        True,
        "MARK_PRICE",
    )
    assert [o.client_algo_id for o in listed] == ["sdk-rest-sl"]
    assert isinstance(queried, rest_models.QueryAlgoOrderResponse) and queried.algo_id == placed.algo_id
    assert isinstance(canceled, rest_models.CancelAlgoOrderResponse) and (canceled.code, canceled.msg) == (
        "200",
        "success",
    )
    assert [(o.algo_id, o.algo_status) for o in history if o.algo_id == placed.algo_id] == [
        (placed.algo_id, "CANCELED")
    ]
    assert sdk_warnings(caplog) == []


def test_sdk_rest_gets_4120_for_a_stop_market_on_the_order_endpoint(sim):
    rest = client(sim).rest_api

    with pytest.raises(sdk_errors.BadRequestError) as info:
        rest.new_order(
            symbol=SYMBOL,
            side=rest_models.NewOrderSideEnum.SELL,
            type=rest_models.NewOrderTypeEnum.STOP_MARKET,  # the SDK still offers the types the endpoint refuses
            quantity=0.01,
        )

    assert info.value.status_code == -4120


async def test_sdk_websocket_api_places_and_cancels_a_close_position_stop_market(sim):
    sdk = client(sim)
    trigger = await asyncio.to_thread(price_off_mark, sim, "0.8")
    api = await asyncio.wait_for(sdk.websocket_api.create_connection(), WAIT_S)
    try:
        placed = await api.new_algo_order(
            algo_type=ws_models.NewAlgoOrderAlgoTypeEnum.CONDITIONAL,
            symbol=SYMBOL,
            side=ws_models.NewAlgoOrderSideEnum.SELL,
            type=ws_models.NewAlgoOrderTypeEnum.STOP_MARKET,
            trigger_price=trigger,
            working_type=ws_models.NewAlgoOrderWorkingTypeEnum.MARK_PRICE,
            close_position=ws_models.NewAlgoOrderClosePositionEnum.TRUE,
            client_algo_id="sdk-ws-sl",
        )
        listed = await asyncio.to_thread(sdk.rest_api.current_all_algo_open_orders, symbol=SYMBOL)
        canceled = await api.cancel_algo_order(algo_id=parsed(placed).result.algo_id)
        positions = await api.position_information()
    finally:
        await api.close_connection()

    result = parsed(placed).result
    assert isinstance(parsed(placed), ws_models.NewAlgoOrderResponse) and result.client_algo_id == "sdk-ws-sl"
    assert [o.algo_id for o in parsed(listed)] == [result.algo_id]
    assert (parsed(canceled).result.algo_id, parsed(canceled).result.code) == (result.algo_id, "200")
    assert {r.rateLimitType for r in placed.rate_limits} >= {"REQUEST_WEIGHT"}
    assert [p.position_side for p in parsed(positions).result] == ["BOTH"]


async def test_algo_update_events_parse_into_the_sdks_stream_model(sim):
    rest = client(sim).rest_api
    listen_key = (await asyncio.to_thread(rest.start_user_data_stream)).data().listen_key
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws}/private/ws?listenKey={listen_key}&events=ALGO_UPDATE") as ws,
    ):
        await asyncio.to_thread(market, rest, "BUY")
        placed = parsed(await asyncio.to_thread(stop_market_close_position, rest, sim, "sdk-event-sl"))
        await asyncio.to_thread(rest.cancel_algo_order, algo_id=placed.algo_id)
        frames = [await ws.receive_json(timeout=WAIT_S), await ws.receive_json(timeout=WAIT_S)]
        await asyncio.to_thread(market, rest, "SELL")

    updates = [stream_models.AlgoUpdate.from_dict(f) for f in frames]
    assert [(f["e"], u.o.aid, u.o.X) for f, u in zip(frames, updates, strict=True)] == [
        ("ALGO_UPDATE", placed.algo_id, "NEW"),
        ("ALGO_UPDATE", placed.algo_id, "CANCELED"),
    ]
    assert isinstance(updates[0].o, stream_models.AlgoUpdateO) and updates[0].o.caid == "sdk-event-sl"
    assert (updates[0].o.cp, updates[0].o.wt, updates[0].o.o) == (True, "MARK_PRICE", "STOP_MARKET")


# ============================================================================ the dead-man switch


def test_sdk_arms_renews_and_stops_the_countdown(sim, caplog):
    rest = client(sim).rest_api

    armed = parsed(rest.auto_cancel_all_open_orders(symbol=SYMBOL, countdown_time=120_000))
    renewed = parsed(rest.auto_cancel_all_open_orders(symbol=SYMBOL, countdown_time=120_000))
    stopped = parsed(rest.auto_cancel_all_open_orders(symbol=SYMBOL, countdown_time=0))

    assert isinstance(armed, rest_models.AutoCancelAllOpenOrdersResponse)
    assert (armed.symbol, armed.countdown_time, renewed.countdown_time, stopped.countdown_time) == (
        SYMBOL,
        "120000",
        "120000",
        "0",
    )
    assert sdk_warnings(caplog) == []


def test_sdk_countdown_that_is_not_renewed_cancels_the_open_orders_and_leaves_the_stop(sim):
    rest = client(sim).rest_api
    resting = parsed(
        rest.new_order(
            symbol=SYMBOL,
            side=rest_models.NewOrderSideEnum.BUY,
            type=rest_models.NewOrderTypeEnum.LIMIT,
            time_in_force=rest_models.NewOrderTimeInForceEnum.GTC,
            quantity=0.01,
            price=price_off_mark(sim, "0.9"),
        )
    )
    market(rest, "BUY")
    stop = parsed(stop_market_close_position(rest, sim, "sdk-countdown-sl"))

    rest.auto_cancel_all_open_orders(symbol=SYMBOL, countdown_time=300)
    wait_until(
        lambda: parsed(rest.query_order(symbol=SYMBOL, order_id=resting.order_id)).status == "CANCELED",
        WAIT_S,
        "the countdown to cancel the resting order",
    )
    still = parsed(rest.current_all_algo_open_orders(symbol=SYMBOL))
    rest.cancel_algo_order(algo_id=stop.algo_id)
    market(rest, "SELL")

    assert [o.algo_id for o in still] == [stop.algo_id]


# ============================================================================ account settings


def test_sdk_changes_leverage_and_margin_type_and_reads_them_back(sim, caplog):
    rest = client(sim).rest_api

    leverage = parsed(rest.change_initial_leverage(symbol=SYMBOL, leverage=10))
    isolated = parsed(
        rest.change_margin_type(symbol=SYMBOL, margin_type=rest_models.ChangeMarginTypeMarginTypeEnum.ISOLATED)
    )
    with pytest.raises(sdk_errors.BadRequestError) as same:
        rest.change_margin_type(symbol=SYMBOL, margin_type=rest_models.ChangeMarginTypeMarginTypeEnum.ISOLATED)
    config = parsed(rest.symbol_configuration(symbol=SYMBOL))
    v2 = parsed(rest.position_information_v2(symbol=SYMBOL))
    rest.change_margin_type(symbol=SYMBOL, margin_type=rest_models.ChangeMarginTypeMarginTypeEnum.CROSSED)
    rest.change_initial_leverage(symbol=SYMBOL, leverage=20)

    assert isinstance(leverage, rest_models.ChangeInitialLeverageResponse)
    assert (leverage.leverage, leverage.max_notional_value, leverage.symbol) == (10, "10000000", SYMBOL)
    assert isinstance(isolated, rest_models.ChangeMarginTypeResponse) and isolated.code == 200
    assert same.value.status_code == -4046
    assert (config[0].margin_type, config[0].leverage) == ("ISOLATED", 10)
    assert (v2[0].margin_type, v2[0].leverage, v2[0].position_side) == ("isolated", "10", "BOTH")
    assert sdk_warnings(caplog) == []


def test_sdk_switches_the_account_to_hedge_mode_trades_per_side_and_switches_back(sim, caplog):
    rest = client(sim).rest_api

    before = parsed(rest.get_current_position_mode())
    changed = parsed(rest.change_position_mode(dual_side_position="true"))
    after = parsed(rest.get_current_position_mode())
    with pytest.raises(sdk_errors.BadRequestError) as both:
        market(rest, "BUY", position_side="BOTH")
    market(rest, "BUY", position_side="LONG")
    with pytest.raises(sdk_errors.BadRequestError) as busy:
        rest.change_position_mode(dual_side_position="false")
    rows = parsed(rest.position_information_v2(symbol=SYMBOL))
    v3 = parsed(rest.position_information_v3(symbol=SYMBOL))
    account = parsed(rest.account_information_v3())
    market(rest, "SELL", position_side="LONG")
    rest.change_position_mode(dual_side_position="false")
    configuration = parsed(rest.futures_account_configuration())

    assert (before.dual_side_position, changed.code, after.dual_side_position) == (False, 200, True)
    assert (both.value.status_code, busy.value.status_code) == (-4061, -4068)
    assert [(r.position_side, r.position_amt) for r in rows] == [("LONG", "0.010"), ("SHORT", "0.000")]
    assert [(r.position_side, r.position_amt) for r in v3] == [("LONG", "0.010")]
    assert [(p.position_side, p.position_amt) for p in account.positions] == [("LONG", "0.010")]
    assert configuration.dual_side_position is False
    assert sdk_warnings(caplog) == []


def test_sdk_reads_and_changes_the_multi_assets_mode(sim, caplog):
    rest = client(sim).rest_api

    before = parsed(rest.get_current_multi_assets_mode())
    changed = parsed(rest.change_multi_assets_mode(multi_assets_margin="true"))
    after = parsed(rest.get_current_multi_assets_mode())
    rest.change_multi_assets_mode(multi_assets_margin="false")

    assert (before.multi_assets_margin, changed.code, after.multi_assets_margin) == (False, 200, True)
    assert sdk_warnings(caplog) == []
