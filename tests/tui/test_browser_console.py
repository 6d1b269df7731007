"""`epochbot serve`: the console renders in a real browser (headless Chromium), over a live daemon.

Runs only where Chromium is installed (`apt-get install chromium`); it drives the browser over
the DevTools protocol with the project's own websocket client, waits for the console to draw,
and checks the screenshot is a rendered console (many colours, not a blank or error page).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
import zlib
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from tests.helpers import REPO, child_env, cli, free_port, get_json, post_json, stop_process, wait_http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")


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


@asynccontextmanager
async def devtools_page(window: str):
    """Headless Chromium with one blank page: ``(call, requests)``, where ``call(method, **params)``
    sends a DevTools command and returns its result, and ``requests`` collects the URLs the page
    asks for (once ``Network.enable`` was called)."""
    import websockets

    profile = tempfile.mkdtemp(prefix="epochbot-chromium-")
    port = free_port()
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            f"--window-size={window}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
            requests: list[str] = []

            async def call(method: str, **params):
                nonlocal seq
                seq += 1
                await ws.send(json.dumps({"id": seq, "method": method, "params": params}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if msg.get("method") == "Network.requestWillBeSent":
                        requests.append(msg["params"]["request"]["url"])
                    if msg.get("id") == seq:
                        return msg.get("result", {})

            yield call, requests
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


async def screenshot(url: str, out: Path, wait_s: float = 8.0) -> bytes:
    async with devtools_page("1280,800") as (call, _):
        await call("Page.enable")
        await call("Page.navigate", url=url)
        await asyncio.sleep(wait_s)  # the console process starts and draws over the page's websocket
        shot = await call("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    out.write_bytes(png)
    return png


@contextmanager
def daemon_and_console(daemon_args: list[str], serve_args: list[str], token: str):
    """A headless daemon and ``epochbot serve`` in front of it; both stopped on exit."""
    env = child_env({"EPOCHBOT_CONTROL__TOKEN": token})
    daemon = subprocess.Popen(
        cli("--headless", *daemon_args), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = subprocess.Popen(
        cli("serve", *serve_args), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        for proc in (server, daemon):
            stop_process(proc, 15)


def test_the_browser_console_renders_a_live_daemon(tmp_path):
    control, web = free_port(), free_port()
    with daemon_and_console(
        [
            "--control-port",
            str(control),
            "--symbols",
            "BTCUSDT",
            "--storage",
            str(tmp_path / "db.sqlite3"),
            "--strategy",
            "none",
        ],
        ["--port", str(web), "--control-url", f"http://127.0.0.1:{control}"],
        "browser-test-token-0123456789",
    ):
        wait_http(f"http://127.0.0.1:{control}/readyz")
        wait_http(f"http://127.0.0.1:{web}/")

        png = asyncio.run(screenshot(f"http://127.0.0.1:{web}/", tmp_path / "console.png"))

        assert len(png) > 20_000
        assert png_colours(png) > 12  # panes, gauges and text in several theme colours


# ---------------------------------------------------------------------------------------------
# What the browser shows, compared with what the daemon says.
#
# xterm.js draws on a canvas, so the text is not in the DOM. Instead the page's WebSocket is
# wrapped (before textual-serve's script runs) to keep every terminal byte the browser receives
# and renders; a small terminal model below turns them back into the screen's text.

_HOOK = """(() => {
  const W = window.WebSocket; window.__epochbot = [];
  const Hooked = function (url, protocols) {
    const ws = protocols === undefined ? new W(url) : new W(url, protocols);
    ws.addEventListener('message', (e) => {
      if (typeof e.data !== 'string') {
        const bytes = new Uint8Array(e.data); let s = '';
        for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
        window.__epochbot.push(btoa(s));
      }
    });
    return ws;
  };
  Hooked.prototype = W.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Hooked[k] = W[k];
  window.WebSocket = Hooked;
})();"""


def screen_text(data: bytes, rows: int = 200, cols: int = 400) -> list[str]:
    """The final screen of a terminal byte stream (cursor moves, erases, text; colours ignored)."""
    text = data.decode("utf-8", errors="replace")
    grid = [[" "] * cols for _ in range(rows)]
    r = c = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\x1b":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "[":
                j = i + 2
                while j < n and not ("@" <= text[j] <= "~"):
                    j += 1
                params, final = text[i + 2 : j], text[j] if j < n else ""
                nums = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] if params else []
                if final in "Hf":
                    r = max(0, (nums[0] if nums else 1) - 1)
                    c = max(0, (nums[1] if len(nums) > 1 else 1) - 1)
                elif final == "J" and (nums[:1] in ([2], [3])):
                    grid = [[" "] * cols for _ in range(rows)]
                elif final == "K":
                    for x in range(c, cols):
                        grid[r][x] = " "
                elif final == "C":
                    c += max(1, nums[0] if nums else 1)
                elif final == "D":
                    c = max(0, c - max(1, nums[0] if nums else 1))
                elif final == "A":
                    r = max(0, r - max(1, nums[0] if nums else 1))
                elif final == "B":
                    r += max(1, nums[0] if nums else 1)
                elif final == "G":
                    c = max(0, (nums[0] if nums else 1) - 1)
                i = j + 1
                continue
            if nxt == "]":  # OSC ... BEL or ST
                j = i + 2
                while j < n and text[j] != "\x07" and text[j : j + 2] != "\x1b\\":
                    j += 1
                i = j + (1 if j < n and text[j] == "\x07" else 2)
                continue
            i += 3 if nxt in "()" else 2
            continue
        if ch == "\r":
            c = 0
        elif ch == "\n":
            r += 1
        elif ch >= " ":
            if r < rows and c < cols:
                grid[r][c] = ch
            c += 1
        i += 1
    return ["".join(row).rstrip() for row in grid]


def _status(base: str) -> dict:
    return get_json(f"{base}/status")


async def browser_screen(
    url: str, out: Path, wait_s: float = 10.0, scroll_to: tuple[str, ...] = ()
) -> tuple[bytes, list[str]]:
    async with devtools_page("1900,1500") as (call, requests):
        await call("Network.enable")
        await call("Page.enable")
        await call("Page.addScriptToEvaluateOnNewDocument", source=_HOOK)
        await call("Page.navigate", url=url)
        await asyncio.sleep(wait_s)

        async def received() -> bytes:
            got = await call("Runtime.evaluate", expression="window.__epochbot.join(',')", returnByValue=True)
            return b"".join(base64.b64decode(part) for part in got["result"]["value"].split(",") if part)

        lines = screen_text(await received())
        anchor = next((a for a in scroll_to if any(a in line for line in lines)), None)
        if anchor is not None:
            # Scroll the pane that holds ``scroll_to`` with the mouse wheel, as a person would,
            # so that what is below its fold (e.g. the positions table) is drawn too.
            used = [i for i, line in enumerate(lines) if line.strip()]
            rows, cols = used[-1] + 1, max(len(line) for line in lines)
            where = next((i, line.index(anchor)) for i, line in enumerate(lines) if anchor in line)
            metrics = await call(
                "Runtime.evaluate", expression="[window.innerWidth, window.innerHeight]", returnByValue=True
            )
            width, height = metrics["result"]["value"]
            x, y = (where[1] + 2) * width / cols, (where[0] + 0.5) * height / rows
            for _ in range(3):
                await call("Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0, deltaY=300)
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.5)
        shot = await call("Page.captureScreenshot", format="png")
        stream = await received()
    png = base64.b64decode(shot["data"])
    out.write_bytes(png)
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "about:"))]
    assert outside == [], f"the page fetched from other hosts: {outside}"
    return png, screen_text(stream)


def _money_forms(text: str) -> set[str]:
    from decimal import Decimal

    d = Decimal(text)
    return {text, f"{d.quantize(Decimal('0.01')):f}", f"{d.quantize(Decimal('0.0001')):f}"}


def test_the_browser_console_shows_the_daemons_trading_numbers(tmp_path):
    from decimal import Decimal

    token = "browser-test-token-0123456789"
    control, web = free_port(), free_port()
    base = f"http://127.0.0.1:{control}"
    with daemon_and_console(
        ["--control-port", str(control), "--storage", str(tmp_path / "db.sqlite3")],
        ["--port", str(web), "--control-port", str(control)],
        token,
    ):
        wait_http(f"{base}/readyz")
        wait_http(f"http://127.0.0.1:{web}/")
        # Let the demo trade, then hold its state still: cancel every order (pauses the strategy).
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            s = _status(base)["trading"]
            if s["fill_count"] >= 2 and any(Decimal(p["qty"]) != 0 for p in s["positions"]):
                break
            time.sleep(0.3)
        post_json(f"{base}/cancel-all", {"confirm": True}, token=token)
        deadline = time.monotonic() + 15
        while _status(base)["trading"]["working_orders"] and time.monotonic() < deadline:
            time.sleep(0.2)
        before = _status(base)

        png, screen = asyncio.run(
            browser_screen(
                f"http://127.0.0.1:{web}/", tmp_path / "console.png", scroll_to=("PnL session", "PnL", "Mode & risk")
            )
        )
        after = _status(base)

    t = after["trading"]
    assert t["fill_count"] == before["trading"]["fill_count"] and t["working_orders"] == []  # frozen while we looked
    text = "\n".join(screen)
    assert png_colours(png) > 12 and len(text.strip()) > 200, text
    # Positions: every non-flat one is shown with its quantity on its symbol's line.
    for p in t["positions"]:
        if Decimal(p["qty"]) != 0:
            assert any(p["symbol"] in line and p["qty"] in line for line in screen), (p, text)
    # PnL: the session PnL (realised net of fees: it does not move while nothing trades).
    assert any(form in text for form in _money_forms(t["pnl"]["session"])), (t["pnl"], text)
    # Breakers: a tripped one is shown as tripped, and nothing is tripped on screen otherwise.
    tripped = [b["name"] for b in t["breakers"] if b["tripped"]]
    if tripped:
        assert "tripped" in text.lower()
        for name in tripped:
            assert any(name in line and "tripped" in line.lower() for line in screen) or f"tripped: {name}" in text, (
                text
            )
    else:
        assert "tripped" not in text.lower()
    # Working orders: none, and no order id is listed as open.
    session_ids = {f["client_order_id"].rsplit("-", 1)[0] + "-" for f in t["recent_fills"]}
    assert not [
        line for line in screen if any(sid in line for sid in session_ids) and ("NEW" in line or "PARTIALLY" in line)
    ]
    # Fills: where the console shows a fill count, it is the daemon's.
    for line in screen:
        for m in __import__("re").finditer(r"fills[: ]+(\d+)", line):
            assert int(m.group(1)) == t["fill_count"], line
