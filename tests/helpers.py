"""What the end-to-end tests share: the real product's processes, bounded waits, loopback ports.

* `SimProcess`: ``epochbot sim`` in a child process on an ephemeral port (its REST and WebSocket
  URLs read from its ready line), with signed and plain REST calls for checking the venue's
  records and `/_sim/...` control.
* `ThreadedSim`: the simulator in this process, on a thread of its own, for tests that reach
  into the venue (a kill at the instant it accepts an order, an order held at its door).
* `simulated`: the embedded simulator started for a `RuntimeConfig` of venue ``sim``, the way the
  app starts it (`epochbot.app.embedded_sim`), for tests that run a `Runtime` in this loop.
* `DaemonProcess`: ``epochbot --headless ...`` in a child process, its JSON log (stderr) in a file:
  ``lines()``, ``find(msg)``, ``count(msg)``, ``terminate()``, ``kill()``.
* `wait_until` (threads) and `wait_for` (asyncio): poll a predicate until a deadline, then fail
  naming what was awaited. Every wait here is bounded.
* `free_port`, `wait_http`, `http`, `get_json`, `post_json`: loopback HTTP (127.0.0.1 only).
* `child_env`: the environment of a child: ours without any ``EPOCHBOT_*`` setting (the
  developer's own must not leak into a test), the repository on ``PYTHONPATH``.

Standard library only (the signer is imported where a signed call is made).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

__all__ = [
    "REPO",
    "DaemonProcess",
    "SimProcess",
    "child_env",
    "cli",
    "free_port",
    "get_json",
    "http",
    "json_lines",
    "post_json",
    "stop_process",
    "ThreadedSim",
    "simulated",
    "wait_for",
    "wait_http",
    "wait_until",
]

REPO = Path(__file__).resolve().parents[1]


def child_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EPOCHBOT_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def cli(*args: str) -> list[str]:
    """The command line of ``epochbot ARGS`` run from this checkout."""
    return [sys.executable, "-m", "epochbot.app.cli", *args]


# ------------------------------------------------------------------------------------- waits


def wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    """``pred()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def wait_for(pred, timeout: float = 5.0, what: str = "condition", interval: float = 0.01) -> None:
    """The asyncio form of `wait_until` (the loop keeps running between polls)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


# -------------------------------------------------------------------------------------- HTTP


def free_port() -> int:
    """A loopback port nothing listens on now (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(
    method: str, url: str, body: dict | None = None, token: str | None = None, timeout: float = 3.0
) -> tuple[int, bytes]:
    """(status, body) of one request; never raises (a refused connection is status 0)."""
    data = json.dumps(body).encode() if body is not None else None
    request = Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except HTTPError as exc:
        return exc.code, exc.read()
    except (URLError, OSError):
        return 0, b""


def get_json(url: str, timeout: float = 5.0):
    """The JSON answer of a GET (raises on an HTTP error)."""
    with urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def post_json(url: str, body: dict, token: str | None = None, timeout: float = 5.0):
    """The JSON answer of a POST of ``body`` (raises on an HTTP error); None for an empty answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    with urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw.strip() else None


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    """Until ``url`` answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 in {timeout_s}s")


# --------------------------------------------------------------------------------- processes


def stop_process(proc: subprocess.Popen, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int:
    """Ask ``proc`` to end (``sig``), kill it if it does not within ``timeout``; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(5)


def json_lines(path: Path) -> list[dict]:
    """The JSON lines of a log file (a line cut short by a kill is skipped)."""
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            pass
    return out


class SimProcess:
    """``epochbot sim --port 0`` in a child process; ``rest`` and ``ws`` are its URLs.

    ``signer`` (a `epochbot.venues.binance.signing.Signer`, default the simulator's own account)
    signs `signed` calls; ``stderr`` goes to ``tmp/sim.err``."""

    def __init__(
        self,
        tmp: Path,
        *,
        market: str = "usdm",
        symbols=("BTCUSDT",),
        seed: int = 7,
        args=(),
        env: dict | None = None,
        signer=None,
        start_timeout: float = 10.0,
    ) -> None:
        self.market = market
        self.signer = signer
        self.proc = subprocess.Popen(
            cli("sim", "--port", "0", "--market", market, "--symbols", ",".join(symbols), "--seed", str(seed), *args),
            stdout=subprocess.PIPE,
            stderr=open(tmp / "sim.err", "wb"),
            env=child_env(env),
            cwd=REPO,
            text=True,
        )
        line = ""
        deadline = time.monotonic() + start_timeout
        while "ready" not in line:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"simulator did not start: {line!r}")
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                line = self.proc.stdout.readline()
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        self.rest, self.ws = fields["rest"], fields["ws"]

    def signed(self, path: str, **params):
        """A signed GET of an account endpoint, the way a client of Binance makes it."""
        signer = self.signer
        if signer is None:
            from epochbot.sim.auth import DEFAULT_API_KEY, DEFAULT_SECRET
            from epochbot.venues.binance.signing import Signer

            signer = self.signer = Signer(DEFAULT_API_KEY, DEFAULT_SECRET)
        query = urlencode({**params, "recvWindow": 5000, "timestamp": int(time.time() * 1000)})
        sig = quote(signer.sign(query), safe="")
        req = Request(f"{self.rest}{path}?{query}&signature={sig}", headers={"X-MBX-APIKEY": signer.api_key})
        with urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def get(self, path: str):
        return get_json(f"{self.rest}{path}")

    def post(self, path: str, body: dict):
        return post_json(f"{self.rest}{path}", body)

    def stop(self) -> None:
        stop_process(self.proc, 10)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class DaemonProcess:
    """``epochbot ARGS`` (usually ``--headless ...``) with its JSON log lines in ``tmp/NAME.err``."""

    def __init__(self, tmp: Path, args, *, name: str = "daemon", env: dict | None = None) -> None:
        self.log_path = tmp / f"{name}.err"
        self.proc = subprocess.Popen(
            cli(*args), stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"), env=child_env(env), cwd=REPO
        )

    def lines(self) -> list[dict]:
        return json_lines(self.log_path)

    def find(self, msg: str) -> dict | None:
        """The first log line with this message, or None."""
        return next((line for line in self.lines() if line.get("msg") == msg), None)

    def count(self, msg: str) -> int:
        return sum(1 for line in self.lines() if line.get("msg") == msg)

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text()[-chars:]

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM (a clean stop) and its exit code; killed if it does not end in time."""
        return stop_process(self.proc, timeout)

    def kill(self) -> None:
        """SIGKILL (no chance to clean up), and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)


class ThreadedSim:
    """The simulator (`epochbot.sim.server.SimExchange`) on an event loop of its own thread, so a test
    can reach into the venue (wrap its handlers, read its books and accounts) while a daemon in a
    child process trades against ``rest`` / ``ws``. ``call`` / ``call_async`` run on its loop."""

    def __init__(self, **config) -> None:
        from epochbot.sim.server import SimConfig, SimExchange

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim", daemon=True)
        self.thread.start()
        self.sim = SimExchange(SimConfig(**config))
        self.call_async(self.sim.start())
        self.rest, self.ws = self.sim.rest_url, self.sim.ws_url

    def call_async(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args, **kw):
        async def run():
            return fn(*args, **kw)

        return self.call_async(run())

    def stop(self) -> None:
        try:
            self.call_async(self.sim.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@asynccontextmanager
async def simulated(config):
    """The embedded simulator for ``config`` (a `RuntimeConfig` of venue ``sim`` without URLs),
    started on this event loop as the app starts it: yields ``(sim, config)`` - the
    `epochbot.sim.server.SimExchange` and the configuration with its URLs (and, when trading
    without keys, its default account's) - and stops it on exit. Its records stay readable."""
    from epochbot.app.embedded_sim import EmbeddedSim

    embedded = EmbeddedSim(config)
    ready = await embedded.start()
    try:
        yield embedded.exchange, ready
    finally:
        await embedded.stop()
