"""Control API and ctl for the trading actions; the status table; failed auth is reported."""

from __future__ import annotations

import asyncio
import io
import json
import re
from dataclasses import replace

import aiohttp
import pytest

from epochbot.app.commands import ctl
from epochbot.app.commands.ctl_table import print_status
from epochbot.app.config import load_settings
from epochbot.app.daemon.control import ControlServer
from epochbot.model import events as ev
from epochbot.views.report import build_report
from epochbot.views.snapshot import BreakerView, OrderView, PnLView, PositionView, RiskView, TradingView
from tests.app.conftest import TOKEN, FakeRuntime

TRADING = TradingView(
    pnl=PnLView("USDT", "-1.5", "-1.5", "-1.2", "0.25", "0.55", "0", "-1.5"),
    breakers=(
        BreakerView("BTCUSDT", True, "3 losing round trips within 600 s", 1_800_000_000_000_000_000),
        BreakerView("ETHUSDT", False, "", 0),
        BreakerView("session-loss", False, "", 0),
        BreakerView("daily-loss", False, "", 0),
    ),
    working_orders=(OrderView("eb1-7", "ETHUSDT", "BUY", "LIMIT", "2999.5", "0.05", "0", "NEW", 1),),
    fill_count=21,
    orders_by_outcome={"placed": 40, "FILLED": 21, "CANCELED": 18},
)


@pytest.fixture
def trading_world(world):
    return replace(world, trading=TRADING, positions=(PositionView("ETHUSDT", "0.049", "3000.04", "0.02", "-0.15"),))


@pytest.fixture
async def served(trading_world, clean_env):
    runtime = FakeRuntime(trading_world)
    failures: list[dict] = []
    settings = load_settings(flags={"control": {"port": 0}}, env={"EPOCHBOT_CONTROL__TOKEN": TOKEN})
    async with (
        ControlServer(runtime, settings, on_auth_failure=failures.append) as server,
        aiohttp.ClientSession(base_url=server.url) as http,
    ):
        yield runtime, server, http, failures


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_cancel_all_needs_an_explicit_confirmation_and_then_reaches_the_runtime(served):
    runtime, _, http, _ = served

    refused = await http.post("/cancel-all", json={"symbol": "ETHUSDT"}, headers=AUTH)
    accepted = await http.post("/cancel-all", json={"confirm": True, "symbol": "ethusdt"}, headers=AUTH)

    assert refused.status == 400 and "confirm" in (await refused.json())["error"]
    assert accepted.status == 200 and (await accepted.json())["working_orders"] == 1
    assert runtime.submitted == [ev.OperatorCancelAll(symbol="ETHUSDT", pause=True)]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"confirm": True}, 400),  # neither symbol nor all
        ({"confirm": True, "symbol": "BTCUSDT", "all": True}, 400),
        ({"confirm": True, "symbol": "DOGEUSDT"}, 404),
        ({"confirm": "yes", "symbol": "BTCUSDT"}, 400),
        ({"confirm": True, "symbol": "BTCUSDT", "extra": 1}, 400),
    ],
)
async def test_flatten_refuses_an_ambiguous_or_unknown_request_and_sends_nothing(served, body, status):
    runtime, _, http, _ = served

    answer = await http.post("/flatten", json=body, headers=AUTH)

    assert answer.status == status and runtime.submitted == []


@pytest.mark.parametrize("path", ["/resync", "/mode", "/pause", "/cancel-all", "/flatten"])
async def test_every_mutating_route_checks_the_token_before_it_reads_the_body(served, path):
    runtime, _, http, failures = served

    anonymous = await http.post(path, data=b"not json")
    not_an_object = await http.post(path, data=b"[1, 2]", headers=AUTH)

    assert anonymous.status == 401 and failures[-1]["path"] == path
    assert not_an_object.status == 400 and "JSON object" in (await not_an_object.json())["error"]
    assert runtime.submitted == []


@pytest.mark.parametrize("path", ["/cancel-all", "/flatten"])
@pytest.mark.parametrize(
    "change, status, says",
    [
        ({"confirm": False}, 400, "confirm"),
        ({"pause": "no"}, 400, "pause"),
        ({"symbol": "DOGEUSDT"}, 404, "unknown symbol"),
        ({"symbol": 7}, 400, "string"),
        ({"every": True}, 400, "unknown field"),
    ],
)
async def test_every_trading_action_refuses_a_bad_request_the_same_way_and_sends_nothing(
    served, path, change, status, says
):
    runtime, _, http, _ = served

    answer = await http.post(path, json={"confirm": True, "symbol": "ETHUSDT", **change}, headers=AUTH)

    assert answer.status == status and says in (await answer.json())["error"]
    assert runtime.submitted == []


@pytest.mark.parametrize("path", ["/cancel-all", "/flatten"])
async def test_a_trading_action_on_a_daemon_without_a_strategy_is_a_conflict(world, clean_env, path):
    runtime = FakeRuntime(world)
    settings = load_settings(flags={"control": {"port": 0}}, env={"EPOCHBOT_CONTROL__TOKEN": TOKEN})
    async with ControlServer(runtime, settings) as server, aiohttp.ClientSession(base_url=server.url) as http:
        answer = await http.post(path, json={"confirm": True, "symbol": "ETHUSDT"}, headers=AUTH)

        assert answer.status == 409 and "not configured" in (await answer.json())["error"]
    assert runtime.submitted == []


async def test_flatten_of_every_position_reaches_the_runtime_with_what_was_held(served):
    runtime, _, http, _ = served

    answer = await http.post("/flatten", json={"confirm": True, "all": True, "pause": False}, headers=AUTH)

    assert answer.status == 200 and (await answer.json())["positions"] == {"ETHUSDT": "0.049"}
    assert runtime.submitted == [ev.OperatorFlatten(symbol=None, pause=False)]


async def test_a_failed_authentication_is_reported_without_the_presented_token(served):
    _, _, http, failures = served

    wrong = await http.post(
        "/flatten", json={"confirm": True, "all": True}, headers={"Authorization": "Bearer guess-0123456789"}
    )
    missing = await http.post("/pause", json={})

    assert (wrong.status, missing.status) == (401, 401)
    assert [f["problem"] for f in failures] == ["wrong token", "no Authorization header"]
    assert (
        "guess" not in json.dumps(failures) and failures[0]["path"] == "/flatten" and failures[0]["peer"] == "127.0.0.1"
    )


async def test_trading_series_are_in_metrics(served):
    _, _, http, _ = served

    text = await (await http.get("/metrics")).text()
    text = (
        re.sub(r'instance="[^"]*",?', "", text).replace(",}", "}").replace("{}", "")
    )  # the fleet label (app/daemon/fleet.py) is on every sample

    assert 'epochbot_pnl{asset="USDT",kind="net"} -1.5' in text
    assert 'epochbot_position{symbol="ETHUSDT"} 0.049' in text
    assert 'epochbot_orders_total{outcome="FILLED"} 21.0' in text
    assert "epochbot_fills_total 21.0" in text
    assert 'epochbot_breaker_tripped{name="BTCUSDT"} 1.0' in text
    assert "epochbot_orders_working 1.0" in text


async def test_ctl_cancel_all_and_flatten_send_the_confirmed_body_with_yes(served, capsys, monkeypatch):
    runtime, server, _, _ = served
    monkeypatch.setenv("EPOCHBOT_CONTROL__TOKEN", TOKEN)  # never on the command line

    codes = [
        await asyncio.to_thread(ctl.main, ["--control-port", str(server.port), "cancel-all", "--yes"]),
        await asyncio.to_thread(ctl.main, ["--port", str(server.port), "flatten", "ethusdt", "-y", "--no-pause"]),
    ]

    assert codes == [0, 0]
    assert runtime.submitted == [
        ev.OperatorCancelAll(symbol=None, pause=True),
        ev.OperatorFlatten(symbol="ETHUSDT", pause=False),
    ]


async def test_ctl_flatten_without_yes_and_without_a_terminal_sends_nothing(served, capsys, monkeypatch):
    runtime, server, _, _ = served
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a TTY: no prompt is trusted
    monkeypatch.setenv("EPOCHBOT_CONTROL__TOKEN", TOKEN)

    code = await asyncio.to_thread(ctl.main, ["--control-port", str(server.port), "flatten", "--all"])

    assert code == 1 and runtime.submitted == []
    assert "--yes" in capsys.readouterr().err


async def test_ctl_status_is_a_table_by_default_and_json_on_request(served, capsys):
    _, server, _, _ = served

    await asyncio.to_thread(ctl.main, ["--control-port", str(server.port), "status"])
    table = capsys.readouterr().out
    await asyncio.to_thread(ctl.main, ["--control-port", str(server.port), "status", "--json"])
    data = json.loads(capsys.readouterr().out)

    assert not table.lstrip().startswith("{") and len(table.splitlines()) < 80
    for text in (
        "PnL (USDT)",
        "-1.5000",
        "TRIPPED",
        "3 losing round trips within 600 s",
        "eb1-7",
        "fills 21 ",
        "ETHUSDT",
    ):
        assert text in table
    assert data["trading"]["fill_count"] == 21 and data["trading"]["breakers"][0]["tripped"] is True


def test_the_status_table_says_trading_is_off_instead_of_inventing_zeros(world):
    out = io.StringIO()

    print_status(build_report(world), file=out)

    assert "trading: off" in out.getvalue() and "PnL" not in out.getvalue()


def test_the_browser_console_rebuilds_the_trading_state_from_status(trading_world):
    from epochbot.app.console.serve import snapshot_from_status

    rebuilt = snapshot_from_status(json.loads(json.dumps(build_report(trading_world))), 1, 0)

    assert rebuilt.trading.fill_count == 21 and rebuilt.trading.pnl == TRADING.pnl
    assert [(b.name, b.tripped, b.cause) for b in rebuilt.trading.breakers] == [
        (b.name, b.tripped, b.cause) for b in TRADING.breakers
    ]
    assert rebuilt.orders == rebuilt.trading.working_orders and rebuilt.orders[0].client_order_id == "eb1-7"
    assert rebuilt.positions == trading_world.positions
    assert rebuilt.risk.session_pnl == "-1.5" and rebuilt.risk.breakers["BTCUSDT"].startswith("tripped until ")


def test_without_a_trader_the_browser_console_invents_no_trading_numbers(world):
    from epochbot.app.console.serve import snapshot_from_status

    rebuilt = snapshot_from_status(json.loads(json.dumps(build_report(world))), 1, 0)

    assert rebuilt.trading is None and rebuilt.positions == () and rebuilt.orders == ()
    assert rebuilt.risk == RiskView()
