"""`epochbot serve` works offline and leaves no process behind after SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from epochbot.app.console.serve_web import child_pids, offline_template
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_page_template_loads_nothing_from_another_host():
    import textual_serve

    source = (Path(textual_serve.__file__).parent / "templates" / "app_index.html").read_text()

    page = offline_template(source)

    assert "googleapis" in source  # what upstream does, and why this exists
    assert not re.search(r"""(src|href)\s*=\s*["']\s*(https?:)?//""", page)
    assert "fonts/RobotoMono-VariableFont_wght.ttf" in page
    with pytest.raises(RuntimeError):
        offline_template(source + '<script src="https://cdn.example.com/x.js"></script>')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_no_console_outlives_serve_however_it_is_stopped(tmp_path, sig):
    import websockets

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    serve = subprocess.Popen(
        [sys.executable, "-m", "epochbot.app.cli", "serve", "--port", str(port), "--control-port", str(free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        page = b""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                    page = resp.read()
            except OSError:
                time.sleep(0.1)
        assert page, "serve did not answer"
        hosts = set(re.findall(rb"""(?:src|href)=["']https?://([^/"']+)""", page))
        assert hosts <= {f"127.0.0.1:{port}".encode()}
        for asset in re.findall(rb"""(?:src|href|url\()\s*["']?(http://127\.0\.0\.1:\d+/static/[^"')]+)""", page):
            with urllib.request.urlopen(asset.decode(), timeout=5) as resp:
                assert resp.status == 200

        async def open_two_consoles() -> list[int]:
            async with (
                websockets.connect(f"ws://127.0.0.1:{port}/ws?width=80&height=24") as a,
                websockets.connect(f"ws://127.0.0.1:{port}/ws?width=80&height=24") as b,
            ):
                for ws in (a, b):
                    await asyncio.wait_for(ws.recv(), 20)  # the console started and drew
                pids = child_pids(serve.pid)
                serve.send_signal(sig)
                return pids

        children = asyncio.run(open_two_consoles())
        assert len(children) >= 2
        code = serve.wait(20)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
        # SIGTERM: serve stops its consoles before it exits; SIGKILL: the kernel does (the
        # consoles asked for PDEATHSIG). Either way none is left moments later.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(alive(p) for p in children):
            time.sleep(0.05)
        assert [p for p in children if alive(p)] == []
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
