"""`epochbot ctl` against a live control endpoint on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

import pytest

from epochbot.app.commands import ctl
from epochbot.app.config import load_settings
from epochbot.app.daemon.control import ControlServer
from epochbot.model import events as ev
from tests.app.conftest import REPO, TOKEN, FakeRuntime


@pytest.fixture
async def daemon(world, clean_env):
    runtime = FakeRuntime(world)
    settings = load_settings(flags={"control": {"port": 0}}, env={"EPOCHBOT_CONTROL__TOKEN": TOKEN})
    async with ControlServer(runtime, settings) as server:
        yield runtime, server.port


async def ctl_main(*argv: str) -> int:
    # ctl is a blocking client: run it off the loop that serves the endpoint.
    return await asyncio.to_thread(ctl.main, list(argv))


async def test_ctl_status_prints_the_live_report(daemon, capsys):
    _, port = daemon

    code = await ctl_main("--port", str(port), "--json", "status")

    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs"][0]["cause"] == "startup"


async def test_ctl_resync_symbol_with_token_reaches_the_runtime(daemon, capsys, clean_env):
    runtime, port = daemon
    clean_env.setenv("EPOCHBOT_CONTROL__TOKEN", TOKEN)

    code = await ctl_main("--port", str(port), "resync", "ethusdt")

    assert code == 0
    assert runtime.submitted == [ev.OperatorForceResync(symbol="ETHUSDT")]


async def test_ctl_resync_session_asks_for_a_new_epoch(daemon, clean_env):
    runtime, port = daemon
    clean_env.setenv("EPOCHBOT_CONTROL__TOKEN", TOKEN)

    code = await ctl_main("--port", str(port), "resync", "--session")

    assert code == 0
    assert runtime.submitted == [ev.OperatorForceResync(replace_session=True)]


async def test_ctl_reads_the_token_from_the_environment(daemon, clean_env):
    runtime, port = daemon
    clean_env.setenv("EPOCHBOT_CONTROL__TOKEN", TOKEN)

    code = await ctl_main("--port", str(port), "mode", "halt")

    assert code == 0
    assert runtime.submitted == [ev.OperatorSetMode(mode="halted", source="control")]


async def test_ctl_with_a_wrong_token_exits_non_zero_with_the_daemons_message(daemon, capsys, clean_env):
    runtime, port = daemon
    clean_env.setenv("EPOCHBOT_CONTROL__TOKEN", "not-the-token-000000")

    code = await ctl_main("--port", str(port), "mode", "halted")

    assert code == 1
    assert "HTTP 401" in capsys.readouterr().err
    assert runtime.submitted == []


async def test_ctl_bad_mode_shows_the_choices(daemon, capsys, clean_env):
    _, port = daemon
    clean_env.setenv("EPOCHBOT_CONTROL__TOKEN", TOKEN)

    code = await ctl_main("--port", str(port), "mode", "yolo")

    assert code == 1
    assert "normal, reduce-only, cancel-makers, halted" in capsys.readouterr().err


async def test_ctl_ready_exits_0_when_ready(daemon):
    _, port = daemon

    assert await ctl_main("--port", str(port), "ready") == 0


async def test_ctl_mutating_call_without_any_token_is_a_usage_error(daemon, capsys):
    runtime, port = daemon

    code = await ctl_main("--port", str(port), "pause")

    assert code == 2
    assert "EPOCHBOT_CONTROL__TOKEN" in capsys.readouterr().err
    assert runtime.submitted == []


def test_ctl_says_the_daemon_is_not_running_when_nothing_listens(capsys, clean_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed on exit: nothing listens there afterwards

    code = ctl.main(["--port", str(port), "status"])

    assert code == 69
    assert f"daemon not running at 127.0.0.1:{port}" in capsys.readouterr().err


async def test_epochbot_ctl_command_line_talks_to_the_daemon(daemon):
    runtime, port = daemon
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHBOT_")}
    env.update(PYTHONPATH=str(REPO), EPOCHBOT_CONTROL__TOKEN=TOKEN, EPOCHBOT_CONTROL__PORT=str(port))

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "epochbot.app.cli",
        "ctl",
        "resync",
        "BTCUSDT",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)

    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["symbol"] == "BTCUSDT"
    assert runtime.submitted == [ev.OperatorForceResync(symbol="BTCUSDT")]


async def test_ctl_refuses_a_token_on_the_command_line_without_sending_it(daemon, capsys):
    runtime, port = daemon

    code = await ctl_main("--port", str(port), "--token", TOKEN, "pause")

    assert code == 2
    err = capsys.readouterr().err
    assert "not accepted on the command line" in err and TOKEN not in err
    assert runtime.submitted == []
