"""The loopback control endpoint: reads, auth matrix, validation, metrics."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from epochbot.app.config import load_settings
from epochbot.app.daemon.control import ControlServer, readiness
from epochbot.model import events as ev
from tests.app.conftest import TOKEN, FakeRuntime, build_world


def settings_with(token: str | None = TOKEN, **flags):
    env = {"EPOCHBOT_CONTROL__TOKEN": token} if token else {}
    return load_settings(flags={"control": {"port": 0}, **flags}, env=env)


@pytest.fixture
async def served(world):
    runtime = FakeRuntime(world)
    async with (
        ControlServer(runtime, settings_with(instance="fleet-a")) as server,
        aiohttp.ClientSession(base_url=server.url) as http,
    ):
        yield runtime, server, http


async def test_the_server_binds_loopback_on_an_ephemeral_port(served):
    runtime, server, http = served

    assert server.url.startswith("http://127.0.0.1:") and server.port > 0


async def test_healthz_answers_200_while_the_process_is_alive(served):
    _, _, http = served

    async with http.get("/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json()) == {"status": "alive"}


async def test_status_is_the_live_report_of_the_latest_snapshot(served):
    runtime, _, http = served

    async with http.get("/status") as resp:
        report = await resp.json()

    assert resp.status == 200
    assert report["epochs"][0]["cause"] == "startup"
    assert set(report["symbols"]) == {"BTCUSDT", "ETHUSDT"}
    assert report["symbols"]["BTCUSDT"]["synced"] is True


async def test_status_before_the_first_snapshot_is_503_starting():
    runtime = FakeRuntime(None)
    async with ControlServer(runtime, settings_with()) as server, aiohttp.ClientSession(base_url=server.url) as http:
        async with http.get("/status") as resp:
            assert resp.status == 503
            assert "starting" in (await resp.json())["error"]


# ------------------------------------------------------------------------------ auth matrix


async def test_mutating_calls_are_refused_with_403_when_no_token_is_configured(world):
    runtime = FakeRuntime(world)
    async with (
        ControlServer(runtime, settings_with(token=None)) as server,
        aiohttp.ClientSession(base_url=server.url) as http,
    ):
        async with http.post(
            "/resync", json={"symbol": "BTCUSDT"}, headers={"Authorization": "Bearer anything-at-all-123"}
        ) as resp:
            body = await resp.json()

    assert resp.status == 403
    assert "control.token" in body["error"] or "CONTROL__TOKEN" in body["error"]
    assert runtime.submitted == []


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer "])
async def test_a_missing_or_wrong_token_is_401_and_nothing_is_submitted(served, header):
    runtime, _, http = served
    headers = {"Authorization": header} if header is not None else {}

    async with http.post("/mode", json={"mode": "halted"}, headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")

    assert runtime.submitted == []


async def test_the_right_token_resyncs_one_book_via_a_control_event(served):
    runtime, _, http = served

    async with http.post("/resync", json={"symbol": "btcusdt"}, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        body = await resp.json()

    assert resp.status == 200 and body["accepted"] is True
    assert runtime.submitted == [ev.OperatorForceResync(symbol="BTCUSDT")]


async def test_resync_without_a_body_resyncs_every_book(served):
    runtime, _, http = served

    async with http.post("/resync", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200

    assert runtime.submitted == [ev.OperatorForceResync(symbol=None)]


async def test_resync_session_replaces_the_transport_session(served):
    runtime, _, http = served

    async with http.post("/resync", json={"session": True}, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200

    assert runtime.submitted == [ev.OperatorForceResync(replace_session=True)]


async def test_resync_of_an_unknown_symbol_is_404_listing_the_symbols(served):
    runtime, _, http = served

    async with http.post("/resync", json={"symbol": "DOGEUSDT"}, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        body = await resp.json()

    assert resp.status == 404 and body["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert runtime.submitted == []


async def test_set_mode_with_the_right_token_submits_the_operator_mode(served):
    runtime, _, http = served

    async with http.post("/mode", json={"mode": "Reduce_Only"}, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        body = await resp.json()

    assert resp.status == 200 and body["mode"] == "reduce-only"
    assert runtime.submitted == [ev.OperatorSetMode(mode="reduce-only", source="control")]


async def test_an_unknown_mode_is_400_with_the_list_of_modes(served):
    runtime, _, http = served

    async with http.post("/mode", json={"mode": "yolo"}, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        body = await resp.json()

    assert resp.status == 400
    assert body["modes"] == ["normal", "reduce-only", "cancel-makers", "halted"]
    assert runtime.submitted == []


async def test_a_body_that_is_not_a_json_object_is_400(served):
    runtime, _, http = served

    async with http.post("/mode", data=b"[1,2", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 400
    assert runtime.submitted == []


async def test_pause_submits_an_operator_pause(served):
    runtime, _, http = served

    async with http.post("/pause", json={"paused": False}, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200

    assert runtime.submitted == [ev.OperatorPause(paused=False)]


async def test_requests_for_a_non_loopback_host_name_are_refused(served):
    _, _, http = served

    async with http.get("/status", headers={"Host": "evil.example:8780"}) as resp:
        assert resp.status == 403


# ------------------------------------------------------------------------------ readiness


async def test_readyz_is_200_when_every_book_is_synced_and_confidence_is_normal(served):
    _, _, http = served

    async with http.get("/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json()) == {"ready": True}


async def test_readyz_is_503_with_reasons_while_a_book_is_not_synced():
    snap, _ = build_world(synced=("BTCUSDT",))
    runtime = FakeRuntime(snap)
    async with ControlServer(runtime, settings_with()) as server, aiohttp.ClientSession(base_url=server.url) as http:
        async with http.get("/readyz") as resp:
            body = await resp.json()

    assert resp.status == 503 and body["ready"] is False
    assert any(reason.startswith("ETHUSDT: book") for reason in body["reasons"])
    assert any(reason.startswith("confidence 0.40 < 0.80") for reason in body["reasons"])


def test_readiness_uses_the_configured_normal_floor(world):
    assert readiness(world, normal_at=0.8) == []
    assert readiness(world, normal_at=1.01)[0].startswith("confidence 1.00 < 1.01")


def test_readiness_flags_a_stale_snapshot_as_a_stalled_loop(world):
    later = world.at_ns + 10 * 1_000_000_000

    assert any("strategy loop stalled" in r for r in readiness(world, 0.8, now_ns=later))


def test_readiness_before_the_first_snapshot_says_starting():
    assert readiness(None, 0.8) == ["no state published yet (starting)"]


# ------------------------------------------------------------------------------ metrics


async def test_metrics_is_prometheus_text_that_parses_and_carries_the_engine_state(served):
    _, _, http = served

    async with http.get("/metrics") as resp:
        text = await resp.text()
        content_type = resp.headers["Content-Type"]

    assert content_type.startswith("text/plain")
    parsed = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert {s.labels.get("instance") for s in parsed} == {"fleet-a"}  # every sample: one Prometheus, many daemons
    samples = {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance"))): s.value for s in parsed}
    assert samples[("epochbot_epoch", ())] == 1.0
    assert samples[("epochbot_confidence", ())] == 1.0
    assert samples[("epochbot_mode", (("mode", "normal"),))] == 1.0
    assert samples[("epochbot_mode", (("mode", "halted"),))] == 0.0
    assert samples[("epochbot_book_synced", (("symbol", "BTCUSDT"),))] == 1.0
    assert samples[("epochbot_book_last_update_id", (("symbol", "ETHUSDT"),))] == 1001.0
    assert ("epochbot_queue_delay_seconds", (("quantile", "0.99"),)) in samples
    assert ("epochbot_transport_latency_seconds", (("quantile", "0.5"),)) in samples
    assert samples[("epochbot_time_to_correct_resync_total", ())] == 1.0
    for counter in ("events", "discarded_stale_epoch", "gaps", "duplicates", "malformed", "snapshots_failed"):
        assert (f"epochbot_{counter}_total", ()) in samples
    assert ("epochbot_book_resyncs_total", (("symbol", "BTCUSDT"),)) in samples


async def test_metrics_before_the_first_snapshot_says_so_and_still_parses():
    runtime = FakeRuntime(None)
    async with ControlServer(runtime, settings_with()) as server, aiohttp.ClientSession(base_url=server.url) as http:
        async with http.get("/metrics") as resp:
            text = await resp.text()

    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["epochbot_snapshot_available"] == 0.0


async def test_metrics_instance_defaults_to_the_hostname_and_symbols(world):
    import socket

    runtime = FakeRuntime(world)
    async with (
        ControlServer(runtime, settings_with(symbols=("BTCUSDT", "ETHUSDT"))) as server,
        aiohttp.ClientSession(base_url=server.url) as http,
    ):
        async with http.get("/metrics") as resp:
            text = await resp.text()

    instances = {s.labels.get("instance") for f in text_string_to_metric_families(text) for s in f.samples}
    assert instances == {f"{socket.gethostname()}:BTCUSDT,ETHUSDT"}


def test_the_grafana_fleet_dashboard_only_queries_metrics_the_daemon_exports(world):
    """Every metric name in docs/grafana/epochbot-fleet.json is exposed by /metrics (so the
    dashboard cannot silently show nothing after a rename)."""
    import json
    import re
    from pathlib import Path

    from prometheus_client import generate_latest

    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "grafana" / "epochbot-fleet.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b(epochbot_[a-z0-9_]+|process_[a-z0-9_]+)\b", e)}
    from dataclasses import replace

    from tests.app.test_operator_api import TRADING

    server = ControlServer(FakeRuntime(replace(world, trading=TRADING)), settings_with(instance="a"))
    exported = {f.name for f in text_string_to_metric_families(generate_latest(server.registry).decode())}
    exported |= {f"{n}_total" for n in exported}
    missing = {m for m in used if m not in exported and not m.startswith("process_")}
    assert not missing, missing
    assert all("instance" in e for e in exprs)
