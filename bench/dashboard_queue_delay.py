"""Core queue delay with the dashboard running vs headless, and the UI's refresh rate.

Run: ``python bench/dashboard_queue_delay.py [--rate 1000] [--seconds 20] [--warmup 3]
[--configs headless,thread,thread-5ms,async] [--driver tmux|run_test] [--json]``

Every configuration runs in a fresh child process (this same file with ``--child``) built from
the product's own settings (``epochbot.app.config.load_settings`` with ``sim.rate`` = ``--rate``, venue
``sim``: 2 symbols -> 2 x rate diff-depth messages/s from the embedded simulator, plus
bookTicker/aggTrade/markPrice; ``--strategy`` defaults to the product's ``auto`` = quoter
trading on the simulator, ``none`` = market data only. Before 0f51ef9 the quoter run died at
this rate on ``Engine._log() got multiple values for argument 'msg'``):

headless    ``Runtime`` alone on an asyncio loop (what ``epochbot --headless`` hosts).
thread      the real ``ConsoleApp`` + ``RuntimeSource``: the core in a Textual *thread* worker with
            its own asyncio loop, ``sys.setswitchinterval(0.0005)`` as ``run_dashboard`` sets it.
thread-5ms  the same with the interpreter's default switch interval (5 ms).
async       the core coroutine run by an async ``@work`` worker on the UI's own loop.
process     the core in its own process (``Runtime`` + control endpoint, as ``epochbot --headless``)
            and the console in another, as a client (``epochbot.app.console.serve.RemoteSource``, /status at 15 Hz).
thread@S    thread hosting with ``sys.setswitchinterval(S)`` (e.g. ``thread@0.0001``).

``--driver tmux`` (default) runs each dashboard child inside a detached 160x48 tmux session, so
Textual uses its real Linux driver and tmux parses the output as a real terminal would;
``--driver run_test`` uses ``App.run_test(size=(160, 48))`` (headless driver: the compositor
renders but nothing is encoded or written).

Measured by a monitor thread in the child (wakes 10x/s): after the books are synced it waits
``--warmup`` seconds, resets the whole-run queue-delay histogram on the core's loop
(``engine.telemetry.queue_run``), then measures ``--seconds``: queue delay p50/p99/max
(process_ts - recv_ts of every market event), the 10 s rolling window's p99 sampled once a
second, snapshots published by the core, snapshots the UI applied (``poll_snapshot`` saw a new
``seq``; polled at 15 Hz), screen updates written by the compositor, the achieved depth rate,
and the process CPU time. Target (issue): p99 < 10 ms with the dashboard, UI applying ~15/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CONFIGS = ("headless", "thread", "thread-5ms", "async", "process", "product")
# "thread@0.0001" style: thread hosting with that switch interval (s)
CHILD_KINDS = CONFIGS + ("process-core", "process-ui")
TARGET_P99_MS = 10.0


# ============================================================================ child


def _settings(rate: float, storage: str, strategy: str):
    from epochbot.app.config import load_settings

    return load_settings(flags={"sim": {"rate": rate}, "storage": storage, "strategy": {"name": strategy}})


class Monitor(threading.Thread):
    """Drives warm-up, reset and collection on the core's loop; stops the run when done."""

    def __init__(self, get_runtime, args, stop, ui_counts=None, get_sim=lambda: None) -> None:
        super().__init__(daemon=True, name="bench-monitor")
        self.get_runtime = get_runtime
        self.get_sim = get_sim  # the embedded simulator (its message counts), when there is one
        self.args = args
        self.stop_cb = stop
        self.ui_counts = ui_counts  # dict updated by the UI thread, or None
        self.result: dict | None = None
        self.error: str | None = None

    def _on_loop(self, rt, fn):
        """Run fn() on the core's loop and wait for its value."""
        import concurrent.futures

        fut: concurrent.futures.Future = concurrent.futures.Future()

        def call():
            try:
                fut.set_result(fn())
            except Exception as exc:  # noqa: BLE001 - pragma: no cover
                fut.set_exception(exc)

        rt.loop.call_soon_threadsafe(call)
        return fut.result(timeout=30)

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - pragma: no cover - reported in the result
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.stop_cb()

    def _run(self) -> None:
        from epochbot.engine.telemetry import RollingHistogram

        args = self.args
        deadline = time.monotonic() + 60
        rt = None
        while time.monotonic() < deadline:
            rt = self.get_runtime()
            if (
                rt is not None
                and rt.loop is not None
                and rt.latest is not None
                and rt.engine.symbols
                and all(s.book.synced for s in rt.engine.symbols.values())
            ):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("core did not sync within 60 s")
        time.sleep(args.warmup)

        def reset():
            tel = rt.engine.telemetry
            if hasattr(tel, "queue_run"):  # older telemetry: a separate whole-run histogram
                tel.queue_run = RollingHistogram(1, whole_run=True)
            else:  # whole-run counts kept inside the rolling histogram (run_stats)
                tel.queue._run = [0] * len(tel.queue._run)
                tel.queue._run_max = 0
            sim = self.get_sim()
            msgs = sim.stats["messages"] if sim is not None else {}
            return {
                "depth": sum(v for k, v in msgs.items() if "@depth" in k),
                "market_events": rt.engine.counters["market_events"],
                "seq": rt.builder.seq,
                "epoch": rt.engine.epoch,
            }

        base = self._on_loop(rt, reset)
        ui0 = dict(self.ui_counts) if self.ui_counts is not None else {}
        cpu0 = os.times()
        t0 = time.monotonic()
        rolling = []
        next_sample = t0 + 1.0
        end = t0 + args.seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now >= next_sample:
                snap = rt.latest
                q = snap.latency.queue if snap is not None else None
                if q is not None:
                    rolling.append(round(q.p99, 3))
                next_sample += 1.0
            time.sleep(min(0.1, max(0.0, end - now)))

        def collect():
            tel = rt.engine.telemetry
            st = tel.queue_run.stats(0) if hasattr(tel, "queue_run") else tel.queue.run_stats()
            sim = self.get_sim()
            msgs = sim.stats["messages"] if sim is not None else {}
            return {
                "p50": round(st.p50, 3),
                "p99": round(st.p99, 3),
                "max": round(st.max, 3),
                "count": st.count,
                "depth": sum(v for k, v in msgs.items() if "@depth" in k),
                "market_events": rt.engine.counters["market_events"],
                "seq": rt.builder.seq,
                "epoch": rt.engine.epoch,
                "dropped": rt.inbox.dropped_total,
                "high_water": rt.inbox.high_water,
            }

        end_vals = self._on_loop(rt, collect)
        elapsed = time.monotonic() - t0
        cpu1 = os.times()
        ui1 = dict(self.ui_counts) if self.ui_counts is not None else {}
        cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        self.result = {
            "seconds": round(elapsed, 2),
            "queue_delay_ms": {k: end_vals[k] for k in ("p50", "p99", "max", "count")},
            "rolling_p99_ms_samples": rolling,
            "rolling_p99_ms_max": max(rolling) if rolling else None,
            "depth_msgs_per_s": round((end_vals["depth"] - base["depth"]) / elapsed, 1),
            "market_events_per_s": round((end_vals["market_events"] - base["market_events"]) / elapsed, 1),
            "core_snapshots_per_s": round((end_vals["seq"] - base["seq"]) / elapsed, 2),
            "ui_applied_per_s": round((ui1["applied"] - ui0["applied"]) / elapsed, 2) if ui1 else None,
            "ui_polls_per_s": round((ui1["polls"] - ui0["polls"]) / elapsed, 2) if ui1 else None,
            "ui_screen_updates_per_s": round((ui1["updates"] - ui0["updates"]) / elapsed, 2) if ui1 else None,
            "ui_bytes_written_per_s": round((ui1["bytes"] - ui0["bytes"]) / elapsed, 1) if ui1 else None,
            "new_epochs": end_vals["epoch"] - base["epoch"],
            "inbox_dropped": end_vals["dropped"],
            "inbox_high_water": end_vals["high_water"],
            "process_cpu_pct": round(100 * cpu_s / elapsed, 1),
            "switch_interval_s": sys.getswitchinterval(),
        }


def _make_app_classes():
    from textual import work

    from epochbot.app.console.tui import ConsoleApp, RuntimeSource

    class CountingApp(ConsoleApp):
        """The real console; counts polls, applied snapshots and screen updates (bench only)."""

        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.counts = {"polls": 0, "applied": 0, "updates": 0, "bytes": 0}

        def poll_snapshot(self) -> None:
            before = self._seq
            super().poll_snapshot()
            self.counts["polls"] += 1
            if self._seq != before:
                self.counts["applied"] += 1

        def _display(self, screen, renderable) -> None:
            if renderable is not None:
                self.counts["updates"] += 1
            super()._display(screen, renderable)

        def on_mount(self) -> None:
            super().on_mount()
            driver = self._driver
            if driver is not None and not self.is_headless:
                orig = driver.write
                counts = self.counts

                def write(data: str) -> None:
                    counts["bytes"] += len(data)
                    orig(data)

                driver.write = write

    class AsyncSource(RuntimeSource):
        async def serve_async(self) -> int:
            self.started = True
            try:
                return await self._main()
            finally:
                self.finished.set()

    class AsyncWorkerApp(CountingApp):
        """The core coroutine in an async worker on the UI's own loop (alternative hosting)."""

        @work(exclusive=True, group="core", exit_on_error=False, name="core")
        async def _run_core(self) -> int:
            return await self.source.serve_async()

    return CountingApp, AsyncWorkerApp, RuntimeSource, AsyncSource


def child(args) -> dict:
    storage = os.path.join(tempfile.mkdtemp(prefix="epochbot-bench-"), "bench.sqlite3")
    settings = _settings(args.rate, storage, args.strategy)
    cfg = args.child
    out = {
        "config": cfg,
        "driver": args.driver if cfg != "headless" else "none",
        "rate_per_symbol": args.rate,
        "symbols": list(settings.symbols),
        "strategy": settings.strategy.name,
    }
    if cfg in ("headless", "process-core"):
        from contextlib import AsyncExitStack

        from epochbot.app.config import to_runtime_config
        from epochbot.app.embedded_sim import start_runtime

        async def main():
            async with AsyncExitStack() as stack:
                return await serve(stack)

        async def serve(stack):
            rt, sim = await start_runtime(to_runtime_config(settings), stack)
            loop = asyncio.get_running_loop()
            linger = 4.0 if cfg == "process-core" else 0.0  # keep serving /status while the UI child finishes

            def stop():
                loop.call_soon_threadsafe(loop.call_later, linger, rt.request_stop, "bench done")

            mon = Monitor(lambda: rt, args, stop, get_sim=lambda: sim)
            control = None
            ctl_task = None
            if cfg == "process-core":
                from epochbot.app.daemon.control import ControlServer

                async def serve_control():
                    nonlocal control
                    while rt.loop is None or rt.latest is None:
                        await asyncio.sleep(0.01)
                    control = ControlServer(rt, settings, port=0)
                    await control.start()
                    with open(args.url_file + ".tmp", "w") as f:
                        f.write(control.url)
                    os.replace(args.url_file + ".tmp", args.url_file)

                ctl_task = loop.create_task(serve_control())
            mon.start()
            code = await rt.run()
            if ctl_task is not None and not ctl_task.done():
                ctl_task.cancel()
            if control is not None:
                await control.stop()
            return code, mon

        code, mon = asyncio.run(main())
        mon.join(5)
        out.update(mon.result or {}, exit_code=code, error=mon.error)
        return out
    if cfg == "process-ui":
        return ui_child(args, settings, out)

    if cfg == "product":
        return product_child(args, settings, out)
    CountingApp, AsyncWorkerApp, RuntimeSource, AsyncSource = _make_app_classes()
    # What run_dashboard does before starting the app (thread hosting relies on it).
    sys.setswitchinterval(0.005 if cfg == "thread-5ms" else float(cfg.split("@", 1)[1]) if "@" in cfg else 0.0005)
    if cfg == "async":
        source, cls = AsyncSource(settings), AsyncWorkerApp
    else:
        source, cls = RuntimeSource(settings), CountingApp
    app = cls(source, keys=settings.keys, theme=settings.theme, symbols=tuple(settings.symbols), venue=settings.venue)
    mon = Monitor(
        lambda: source._runtime,
        args,
        lambda: app.call_from_thread(app.begin_shutdown, "bench done"),
        ui_counts=app.counts,
        get_sim=lambda: source.sim,
    )
    if args.driver == "run_test":

        async def main():
            async with app.run_test(size=(160, 48)):
                mon.start()
                while app.core_exit_code is None and app.is_running:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.2)

        asyncio.run(main())
    else:
        mon.start()
        app.run()
    mon.join(5)
    out.update(mon.result or {}, exit_code=app.core_exit_code, error=mon.error)
    return out


def product_child(args, settings, out) -> dict:
    """What `epochbot` does by default: the core in a child process (epochbot.app.console.core_process), the
    console rendering its snapshots. The core is out of reach here, so queue delay is read from
    the snapshots themselves: the rolling 10-s window's p99, sampled every second after warm-up."""
    from epochbot.app.console.core_process import ProcessSource

    CountingApp, *_ = _make_app_classes()
    source = ProcessSource(settings)
    source.start()
    app = CountingApp(
        source, keys=settings.keys, theme=settings.theme, symbols=tuple(settings.symbols), venue=settings.venue
    )
    res: dict = {}

    def measure():
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                snap = source.latest()
                if snap is not None and snap.books and all(b.state == "synced" for b in snap.books):
                    break
                time.sleep(0.1)
            time.sleep(max(args.warmup, 10.0))  # let the 10-s window hold post-startup samples only
            first = source.latest()
            ui0, t0 = dict(app.counts), time.monotonic()
            samples, end = [], t0 + args.seconds
            while time.monotonic() < end:
                time.sleep(1.0)
                snap = source.latest()
                samples.append(
                    (
                        round(snap.latency.queue.p50, 3),
                        round(snap.latency.queue.p99, 3),
                        round(snap.latency.queue.max, 3),
                    )
                )
            last = source.latest()
            el = time.monotonic() - t0
            ui1 = dict(app.counts)
            res.update(
                seconds=round(el, 2),
                queue_delay_ms={
                    "p50": max(s[0] for s in samples),
                    "p99": max(s[1] for s in samples),
                    "max": max(s[2] for s in samples),
                    "how": "worst 10-s window p50/p99/max seen, sampled each second",
                },
                core_snapshots_per_s=round((last.seq - first.seq) / el, 2),
                epochs=last.epoch,
                ui_applied_per_s=round((ui1["applied"] - ui0["applied"]) / el, 2),
                ui_screen_updates_per_s=round((ui1["updates"] - ui0["updates"]) / el, 2),
                ui_bytes_written_per_s=round((ui1["bytes"] - ui0["bytes"]) / el, 1),
            )
        except Exception as exc:  # noqa: BLE001 - reported in the result
            res["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            app.call_from_thread(app.begin_shutdown, "bench done")

    threading.Thread(target=measure, daemon=True, name="bench-monitor").start()
    app.run()
    out.update(res, exit_code=app.core_exit_code)
    return out


def ui_child(args, settings, out) -> dict:
    """The console as a client of the core child's control endpoint (RemoteSource, polled at
    the UI's own 15 Hz); measures only the UI side: applied snapshots and screen updates."""
    from epochbot.app.console.serve import RemoteSource

    CountingApp, *_ = _make_app_classes()
    source = RemoteSource(args.remote, None, interval_s=1 / 15)
    app = CountingApp(
        source, keys=settings.keys, theme=settings.theme, symbols=tuple(settings.symbols), venue=settings.venue
    )
    res = {}

    def measure():
        deadline = time.monotonic() + 30
        while app.counts["applied"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(args.warmup)
        c0, t0 = dict(app.counts), time.monotonic()
        time.sleep(args.seconds)
        c1, el = dict(app.counts), time.monotonic() - t0
        res.update(
            ui_seconds=round(el, 2),
            ui_applied_per_s=round((c1["applied"] - c0["applied"]) / el, 2),
            ui_polls_per_s=round((c1["polls"] - c0["polls"]) / el, 2),
            ui_screen_updates_per_s=round((c1["updates"] - c0["updates"]) / el, 2),
            ui_bytes_written_per_s=round((c1["bytes"] - c0["bytes"]) / el, 1),
        )
        app.call_from_thread(app.exit, 0)

    threading.Thread(target=measure, daemon=True).start()
    if args.driver == "run_test":

        async def main():
            async with app.run_test(size=(160, 48)):
                while app.is_running:
                    await asyncio.sleep(0.1)

        asyncio.run(main())
    else:
        app.run()
    source.request_stop("bench done")
    out.update(res)
    return out


# ============================================================================ parent


def run_process(args) -> dict:
    """Core in one process (headless + control endpoint), the console in another."""
    d = tempfile.mkdtemp(prefix="dqd-process-")
    url_file, core_out, ui_out = (os.path.join(d, n) for n in ("url", "core.json", "ui.json"))
    common = [
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--driver",
        args.driver,
        "--strategy",
        args.strategy,
    ]
    core = subprocess.Popen(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            "process-core",
            "--out",
            core_out,
            "--url-file",
            url_file,
            *common,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(url_file) and time.monotonic() < deadline and core.poll() is None:
            time.sleep(0.05)
        url = open(url_file).read().strip()
        ui = _launch(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                "process-ui",
                "--out",
                ui_out,
                "--remote",
                url,
                *common,
            ],
            ui_out,
            "process-ui",
            args,
            tty=args.driver == "tmux",
        )
        core.wait(timeout=args.seconds + args.warmup + 90)
    finally:
        if core.poll() is None:
            core.kill()
    row = _read(core_out, "process")
    row["config"] = "process"
    row["driver"] = args.driver
    for k, v in ui.items():
        if k.startswith("ui_"):
            row[k] = v
    if ui.get("error"):
        row["error"] = f"ui: {ui['error']}"
    return row


def _read(path: str, cfg: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        err = open(path + ".err").read()[-2000:] if os.path.exists(path + ".err") else ""
        return {"config": cfg, "error": f"no result ({err})"}


def _launch(cmd: list[str], path: str, name: str, args, tty: bool) -> dict:
    budget = args.seconds + args.warmup + 90
    if tty:
        session = f"dqd-{os.getpid()}-{name}".replace(".", "_").replace("@", "_")
        shell = " ".join(_q(c) for c in cmd) + f" 2>{_q(path + '.err')}"
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "160",
                "-y",
                "48",
                "env",
                "TERM=xterm-256color",
                "COLORTERM=truecolor",
                "sh",
                "-c",
                shell,
            ],
            check=True,
        )
        deadline = time.monotonic() + budget
        try:
            while time.monotonic() < deadline and not os.path.exists(path):
                time.sleep(0.25)
            time.sleep(0.5)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)
    else:
        with open(path + ".err", "w") as err:
            subprocess.run(cmd, timeout=budget, check=False, stdout=subprocess.DEVNULL, stderr=err)
    return _read(path, name)


def run_child(cfg: str, args) -> dict:
    if cfg == "process":
        return run_process(args)
    fd, path = tempfile.mkstemp(prefix=f"dqd-{cfg}-", suffix=".json")
    os.close(fd)
    os.unlink(path)
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        cfg,
        "--out",
        path,
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--driver",
        args.driver,
        "--strategy",
        args.strategy,
    ]
    row = _launch(cmd, path, cfg, args, tty=args.driver == "tmux" and cfg != "headless")
    row.setdefault("config", cfg)
    return row


def _q(s: str) -> str:
    import shlex

    return shlex.quote(s)


def machine() -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    import textual

    def git(*a):
        try:
            return subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {
        "git_head": git("rev-parse", "--short", "HEAD"),
        "git_dirty": (git("status", "--porcelain", "--untracked-files=no") or "").split("\n"),
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "textual": textual.__version__,
        "platform": platform.platform(),
    }


def print_table(rows: list[dict]) -> None:
    def f(v):
        return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))

    print(
        f"{'config':14} {'driver':8} {'qd p50':>7} {'qd p99':>7} {'qd max':>7} {'roll p99 max':>12} {'depth/s':>8} "
        f"{'core snap/s':>11} {'UI applied/s':>12} {'screen upd/s':>12} {'cpu %':>6} {'epochs':>6} {'p99<10':>6}"
    )
    for r in rows:
        q = r.get("queue_delay_ms", {})
        ok = None if not q else q["p99"] < TARGET_P99_MS
        print(
            f"{r['config']:14} {r.get('driver', '-'):8} {f(q.get('p50')):>7} {f(q.get('p99')):>7} {f(q.get('max')):>7} "
            f"{f(r.get('rolling_p99_ms_max')):>12} {f(r.get('depth_msgs_per_s')):>8} "
            f"{f(r.get('core_snapshots_per_s')):>11} "
            f"{f(r.get('ui_applied_per_s')):>12} {f(r.get('ui_screen_updates_per_s')):>12} "
            f"{f(r.get('process_cpu_pct')):>6} "
            f"{f(r.get('new_epochs')):>6} {('-' if ok is None else 'PASS' if ok else 'FAIL'):>6}"
            + (f"  ERROR {r['error']}" if r.get("error") else "")
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000.0, help="sim diff events/s per symbol (2 symbols)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0, help="seconds after the books synced before measuring")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--driver", choices=("tmux", "run_test"), default="tmux")
    p.add_argument(
        "--strategy",
        default="auto",
        help="settings.strategy.name: 'auto' (product default: quoter on the sim) or 'none' (market data only)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per configuration")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--url-file", help=argparse.SUPPRESS)
    p.add_argument("--remote", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = child(args)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, args.out)
        return 0
    rows = []
    for _ in range(args.repeat):
        for cfg in args.configs.split(","):
            row = run_child(cfg, args)
            rows.append(row)
            if not args.json:
                print(
                    f"  {cfg}: {json.dumps({k: row.get(k) for k in ('queue_delay_ms', 'ui_applied_per_s', 'error')})}",
                    flush=True,
                )
    if args.json:
        print(
            json.dumps(
                {
                    "bench": "dashboard_queue_delay",
                    "machine": machine(),
                    "rate_per_symbol": args.rate,
                    "seconds": args.seconds,
                    "warmup": args.warmup,
                    "driver": args.driver,
                    "target_p99_ms": TARGET_P99_MS,
                    "runs": rows,
                }
            )
        )
    else:
        print(json.dumps(machine()))
        print_table(rows)
    ok = all(r.get("queue_delay_ms", {}).get("p99", 1e9) < TARGET_P99_MS for r in rows if r["config"] == "thread")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
