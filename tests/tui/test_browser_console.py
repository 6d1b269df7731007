"""`epochbot serve`: the console renders in a real browser (headless Chromium), over a live daemon.

Runs only where Chromium is installed (`apt-get install chromium`); it drives the browser over
the DevTools protocol with the project's own websocket client, waits for the console to draw,
and checks the screenshot is a rendered console (many colours, not a blank or error page).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 in {timeout_s}s")


def png_colours(png: bytes) -> int:
    """Distinct RGB colours in a (non-interlaced, 8-bit RGB/RGBA) PNG, from its raw rows."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, channels, data = 8, 0, 0, 0, b""
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            channels = {2: 3, 6: 4}[body[9]]
        elif kind == b"IDAT":
            data += body
        pos += 12 + length
    raw = zlib.decompress(data)
    stride = width * channels
    colours: set[bytes] = set()
    prev = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):  # undo the PNG row filter
            left = line[i - channels] if i >= channels else 0
            up = prev[i]
            ul = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
        if row % 4 == 0:
            for x in range(0, width, 2):
                colours.add(bytes(line[x * channels : x * channels + 3]))
        prev = line
    return len(colours)


async def screenshot(url: str, out: Path, wait_s: float = 8.0) -> bytes:
    import websockets

    profile = tempfile.mkdtemp(prefix="epochbot-chromium-")
    port = free_port()
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "--window-size=1280,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        targets = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=1) as resp:
                    targets = [t for t in json.load(resp) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            await asyncio.sleep(0.1)
        assert targets, "Chromium's DevTools endpoint did not come up"
        async with websockets.connect(targets[0]["webSocketDebuggerUrl"], max_size=1 << 26) as ws:
            seq = 0

            async def call(method: str, **params):
                nonlocal seq
                seq += 1
                await ws.send(json.dumps({"id": seq, "method": method, "params": params}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if msg.get("id") == seq:
                        return msg.get("result", {})

            await call("Page.enable")
            await call("Page.navigate", url=url)
            await asyncio.sleep(wait_s)  # the console process starts and draws over the page's websocket
            shot = await call("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        out.write_bytes(png)
        return png
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


def test_the_browser_console_renders_a_live_daemon(tmp_path):
    control, web = free_port(), free_port()
    env = {**os.environ, "EPOCHBOT_CONTROL__TOKEN": "browser-test-token-0123456789"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--headless", "--control-port", str(control), "--symbols", "BTCUSDT",
         "--storage", str(tmp_path / "db.sqlite3"), "--strategy", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(web), "--control-url", f"http://127.0.0.1:{control}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{control}/readyz")
        wait_http(f"http://127.0.0.1:{web}/")

        png = asyncio.run(screenshot(f"http://127.0.0.1:{web}/", tmp_path / "console.png"))

        assert len(png) > 20_000
        assert png_colours(png) > 12  # panes, gauges and text in several theme colours
    finally:
        for proc in (server, daemon):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
