"""The dead-man switch, ``POST /fapi/v1/countdownCancelAll``: when the countdown runs out the venue
cancels the symbol's open orders (conditional orders of the Algo Service stay).

The venue is driven on explicit times; then once over loopback, where the countdown runs on the
simulator's clock (the market generator's steps, paused market or not) with a short countdown and
a bounded wait for the CANCELED event.
"""

from __future__ import annotations

import pytest

from epochbot.sim.auth import SimApiError
from epochbot.sim.market import fixed
from epochbot.sim.matching import PaperVenue, SymbolFilters
from epochbot.sim.server import SimConfig, SimExchange
from epochbot.sim.weights import request_weight
from tests.sim.usdm_helpers import (
    BTC,
    NOW,
    MovingMarket,
    Rest,
    algo,
    events,
    kinds,
    next_event,
    usdm_venue,
    user_socket,
)

ETH = SymbolFilters("ETHUSDT", "ETH", "USDT", 2, 3, 1, 1, 1, 10_000_000, "5")


def resting_buy(price: str = "900.00", symbol: str = "BTCUSDT") -> dict[str, str]:
    return {"symbol": symbol, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": price}


def countdown(ms: int | str, symbol: str = "BTCUSDT") -> dict[str, str]:
    return {"symbol": symbol, "countdownTime": str(ms)}


def venue_with_orders() -> tuple[PaperVenue, MovingMarket]:
    """Two resting buys and a stop, the events drained."""
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.place_order("acct-1", resting_buy("900.00"), book, NOW)
    venue.place_order("acct-1", resting_buy("890.00"), book, NOW)
    venue.place_algo("acct-1", algo("STOP_MARKET", "BUY", triggerPrice="1100.00", quantity="0.010"), book, NOW)
    venue.drain_user_events()
    return venue, book


def test_when_the_countdown_runs_out_every_open_order_of_the_symbol_is_canceled_and_the_stop_stays():
    venue, _ = venue_with_orders()

    answer = venue.countdown_cancel_all("acct-1", countdown(1000), NOW)
    venue.on_clock("BTCUSDT", NOW + 999)
    early = venue.drain_user_events()
    venue.on_clock("BTCUSDT", NOW + 1000)
    fired = events(venue)

    assert answer == {"symbol": "BTCUSDT", "countdownTime": "1000"}
    assert early == [] and kinds(fired) == ["ORDER:CANCELED", "ORDER:CANCELED"]
    assert venue.open_orders("acct-1", "BTCUSDT") == []
    assert [a["algoStatus"] for a in venue.open_algos("acct-1", "BTCUSDT", {})] == ["NEW"]


def test_a_countdown_fires_once_and_is_disarmed_afterwards():
    venue, book = venue_with_orders()
    venue.countdown_cancel_all("acct-1", countdown(1000), NOW)
    venue.on_clock("BTCUSDT", NOW + 1000)
    venue.place_order("acct-1", resting_buy("880.00"), book, NOW + 1001)
    venue.drain_user_events()

    venue.on_clock("BTCUSDT", NOW + 5000)

    assert venue.drain_user_events() == [] and len(venue.open_orders("acct-1", "BTCUSDT")) == 1


def test_a_heartbeat_replaces_the_deadline():
    venue, _ = venue_with_orders()
    venue.countdown_cancel_all("acct-1", countdown(1000), NOW)

    venue.countdown_cancel_all("acct-1", countdown(1000), NOW + 800)
    venue.on_clock("BTCUSDT", NOW + 1500)
    renewed = venue.drain_user_events()
    venue.on_clock("BTCUSDT", NOW + 1800)

    assert renewed == [] and kinds(events(venue)) == ["ORDER:CANCELED", "ORDER:CANCELED"]


def test_a_countdown_time_of_zero_stops_the_countdown():
    venue, _ = venue_with_orders()
    venue.countdown_cancel_all("acct-1", countdown(1000), NOW)

    answer = venue.countdown_cancel_all("acct-1", countdown(0), NOW + 10)
    venue.on_clock("BTCUSDT", NOW + 60_000)

    assert answer == {"symbol": "BTCUSDT", "countdownTime": "0"}
    assert venue.drain_user_events() == [] and len(venue.open_orders("acct-1", "BTCUSDT")) == 2


def test_the_countdown_cancels_only_its_symbol_and_only_its_account():
    venue = PaperVenue("usdm", {"BTCUSDT": BTC, "ETHUSDT": ETH})
    btc = MovingMarket.at("1000.00")
    eth = MovingMarket(btc.mark, btc.last_trade_price, symbol="ETHUSDT")
    venue.place_order("acct-1", resting_buy("900.00"), btc, NOW)
    venue.place_order("acct-1", resting_buy("900.00", "ETHUSDT"), eth, NOW)
    venue.place_order("acct-2", resting_buy("900.00"), btc, NOW)
    venue.drain_user_events()

    venue.countdown_cancel_all("acct-1", countdown(100), NOW)
    venue.on_clock("ETHUSDT", NOW + 200)  # another symbol's clock step fires nothing here
    other_symbol = venue.drain_user_events()
    venue.on_clock("BTCUSDT", NOW + 200)

    assert other_symbol == []
    assert [(a, e["o"]["s"], e["o"]["x"]) for a, e in venue.drain_user_events()] == [("acct-1", "BTCUSDT", "CANCELED")]
    assert len(venue.open_orders("acct-1", "ETHUSDT")) == 1 and len(venue.open_orders("acct-2", "BTCUSDT")) == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": "BTCUSDT"}, -1102),
        ({"symbol": "BTCUSDT", "countdownTime": "soon"}, -1100),
        ({"symbol": "BTCUSDT", "countdownTime": "-5"}, -1100),
        ({"countdownTime": "1000"}, -1102),
        ({"symbol": "XYZUSDT", "countdownTime": "1000"}, -1121),
    ],
)
def test_a_bad_countdown_request_is_refused_with_binances_code(params, code):
    venue = usdm_venue()

    with pytest.raises(SimApiError) as info:
        venue.countdown_cancel_all("acct-1", params, NOW)

    assert info.value.code == code and venue.countdowns.deadline("acct-1", "BTCUSDT") is None


def test_the_countdown_endpoint_weighs_10():
    assert request_weight("usdm", "/fapi/v1/countdownCancelAll", {}, "POST") == 10


# ------------------------------------------------------------------ over loopback


@pytest.fixture
async def live():
    async with SimExchange(SimConfig(market="usdm", symbols=["BTCUSDT"], seed=7, rate=50, tick_s=0.02)) as sim:
        yield sim


async def test_the_countdown_fires_on_the_simulators_clock_even_in_a_quiet_market(live, http):
    rest = Rest(http, live.rest_url)
    ws = await user_socket(http, live)
    m = live.market("BTCUSDT")
    try:
        order = await rest.ok(
            "POST", "/fapi/v1/order", **resting_buy(fixed(m.best_bid - 200 * m.tick, 2)), newClientOrderId="resting"
        )
        await rest.ok(
            "POST",
            "/fapi/v1/algoOrder",
            algoType="CONDITIONAL",
            symbol="BTCUSDT",
            side="BUY",
            type="STOP_MARKET",
            quantity="0.010",
            triggerPrice=fixed(m.mark_price() + 1000 * m.tick, 2),
            clientAlgoId="guard",
        )
        live.pause_market()  # the clock runs on while the books stand still
        armed = await rest.ok("POST", "/fapi/v1/countdownCancelAll", symbol="BTCUSDT", countdownTime=300)
        canceled = await next_event(
            ws, lambda e: e.get("e") == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "CANCELED", "the countdown's cancel"
        )
        open_orders = await rest.ok("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
        open_algos = await rest.ok("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
    finally:
        await ws.close()

    assert armed == {"symbol": "BTCUSDT", "countdownTime": "300"}
    assert (canceled["o"]["c"], canceled["o"]["i"]) == ("resting", order["orderId"])
    assert open_orders == [] and [a["clientAlgoId"] for a in open_algos] == ["guard"]


def test_cancel_all_open_orders_cancels_the_regular_orders_and_leaves_the_conditional_ones():
    venue, _ = venue_with_orders()

    answer = venue.cancel_all_orders("acct-1", {"symbol": "BTCUSDT"}, NOW)

    assert answer == {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert kinds(events(venue)) == ["ORDER:CANCELED", "ORDER:CANCELED"]
    assert len(venue.open_algos("acct-1", "BTCUSDT", {})) == 1
