"""Liveness under three faults: dead streams, a quiet market, steady latency; ours beside peers.

Run: ``python bench/liveness.py [--stalls 50] [--quiet-s 300] [--latency-s 300] [--json]``
CI-sized: ``python bench/liveness.py --stalls 5 --quiet-s 15 --latency-s 20 --peer-stalls 2``

Ours: the live `Runtime` against its embedded simulator (USD-M, BTCUSDT + ETHUSDT, a @100ms diff
stream: 10 book changes a second, plus aggTrade, bookTicker, markPrice@1s, kline_1m).

stall     the simulator silences every open connection (``stall`` fault, scope "open": the
          sockets stay up, nothing arrives, the venue's book keeps moving; new connections work).
          Measured: fault armed -> session replaced (``detect``) and -> every book synchronised
          and bridged again on the new session (``synced``; the engine's own EpochRecord times,
          same clock). Target p99 < 500 ms. Stalls are spaced so the session before each was
          healthy (synced for ``replace_healthy_ms``): each is a fresh incident, not a loop.
quiet     ``pause_market``: the venue's book does not change for ``--quiet-s`` while every
          connection stays up (markPrice@1s keeps coming). Counted: session replacements
          (target <= 1), probes sent, time all books were synced, whether "quiet_market" was in
          the confidence reasons, the mode; at the end the books are compared with the
          simulator's (same update id, 1000 levels, exact).
latency   a steady ``--latency-ms`` (3000) delay on every websocket frame for ``--latency-s``.
          Counted: connection attempts seen by the simulator (target <= 10 in 5 minutes) and
          the causes of replacements.

Peers, same faults, same run (each against its own simulator): python-binance 1.0.x spot
``DepthCacheManager`` and ccxt.pro ``binanceusdm.watch_order_book``. For a stall: fault armed ->
their book follows the venue again (python-binance: its next snapshot refetch; ccxt: an update
whose nonce is within 50 ids of the venue's), bounded by ``--peer-timeout``: a peer that never
notices a dead stream recovers only when the stall ends (``--peer-stall-s``). For quiet and
latency: connection attempts seen by their simulator, and whether their book still equals the
venue's after the quiet period.

The machine's load average is recorded with the results (the benchmark is timing-sensitive).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.resync import Harness, compare_levels, now_ns, pct, wait_until
from epochbot.engine.engine import EngineConfig


def load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# ============================================================================ ours


async def ours(args, log) -> dict:
    engine = EngineConfig(snapshot_limit=args.snapshot_limit)
    h = Harness(market=args.market, engine=engine, seed=args.seed)
    await h.start()
    e = h.engine
    healthy_s = engine.replace_healthy_ms / 1000 + 0.2
    res: dict = {"market": args.market, "load_start": load()}
    try:
        # ---------------------------------------------------------------- stalls
        rows = []
        for _i in range(args.stalls):
            await wait_until(lambda: h.stable() and not h.sim.faults.to_json()["active"], 10)
            rec = h.record(e.epoch)
            while rec is None or not rec.synced_ns or now_ns() - rec.synced_ns < healthy_s * 1e9:
                await asyncio.sleep(0.05)
                if not h.stable():
                    await wait_until(h.stable, 10)
                rec = h.record(e.epoch)
            epoch = e.epoch
            inj = now_ns()
            h.sim.inject("stall", duration_s=args.stall_s)
            ok = await wait_until(lambda epoch=epoch: e.epoch > epoch and h.stable(), args.timeout)
            new = h.record(epoch + 1)
            row = {"ok": bool(ok and new and new.synced_ns)}
            if row["ok"]:
                row.update(
                    detect_ms=round((new.requested_ns - inj) / 1e6, 1),
                    synced_ms=round((new.synced_ns - inj) / 1e6, 1),
                    cause=new.cause,
                    epochs=e.epoch - epoch,
                    phases=new.phases_ms(),
                )
            rows.append(row)
            h.sim.faults.clear()
        res["stall"] = {
            "trials": len(rows),
            "ok": sum(r["ok"] for r in rows),
            "synced_ms": pct([r["synced_ms"] for r in rows if r["ok"]]),
            "detect_ms": pct([r["detect_ms"] for r in rows if r["ok"]]),
            "extra_epochs": sum(r.get("epochs", 1) - 1 for r in rows),
            "rows": rows,
        }
        log(f"ours stall: {res['stall']['ok']}/{len(rows)} synced_ms {res['stall']['synced_ms']}")

        # ---------------------------------------------------------------- quiet market
        if args.quiet_s > 0:
            await wait_until(lambda: h.stable() and not h.sim.faults.to_json()["active"], 10)
            await asyncio.sleep(healthy_s)
            epoch, probes0 = e.epoch, e.liveness.counters["probes"]
            conns0 = h.sim.stats["connections_total"]
            h.sim.pause_market()
            t0 = time.monotonic()
            samples = synced = quiet_seen = 0
            modes: dict[str, int] = {}
            while time.monotonic() - t0 < args.quiet_s:
                await asyncio.sleep(0.1)
                samples += 1
                synced += h.stable()
                quiet_seen += "quiet_market_ms" in e.confidence.reason_names
                modes[e.mode.value] = modes.get(e.mode.value, 0) + 1
            verify = await h.verify()  # compares at the venue's update id (pauses, resumes)
            h.sim.resume_market()
            res["quiet"] = {
                "seconds": args.quiet_s,
                "replacements": e.epoch - epoch,
                "connection_attempts": h.sim.stats["connections_total"] - conns0,
                "probes": e.liveness.counters["probes"] - probes0,
                "synced_fraction": round(synced / max(1, samples), 4),
                "quiet_reason_fraction": round(quiet_seen / max(1, samples), 4),
                "modes": modes,
                "books_equal_at_end": verify["equal"],
                "causes": [r.cause for r in e.epochs if r.epoch > epoch],
            }
            log(f"ours quiet: {res['quiet']}")

        # ---------------------------------------------------------------- steady latency
        if args.latency_s > 0:
            await wait_until(lambda: h.stable() and not h.sim.faults.to_json()["active"], 10)
            await asyncio.sleep(healthy_s)
            epoch = e.epoch
            conns0 = h.sim.stats["connections_total"]
            h.sim.inject("latency", ms=args.latency_ms, duration_s=args.latency_s)
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.latency_s:
                await asyncio.sleep(0.5)
            res["latency"] = {
                "seconds": args.latency_s,
                "ms": args.latency_ms,
                "connection_attempts": h.sim.stats["connections_total"] - conns0,
                "replacements": e.epoch - epoch,
                "causes": [r.cause for r in e.epochs if r.epoch > epoch],
            }
            h.sim.faults.clear()
            log(f"ours latency: {res['latency']}")
        res["liveness_counters"] = dict(e.liveness.counters)
    finally:
        res["exit"] = await h.stop()
        res["load_end"] = load()
    return res


# ============================================================================ peers


class Peer:
    """A third-party client's book against its own simulator: start, progress, followed()."""

    name = ""
    market = ""

    def __init__(self, args) -> None:
        from epochbot.sim.server import SimConfig, SimExchange

        self.args = args
        self.sim = SimExchange(SimConfig(market=self.market, symbols=["BTCUSDT"], seed=args.seed))
        self.last_ns = 0
        self.nonce = None
        self.resyncs: list[int] = []
        self.errors = 0
        self.task: asyncio.Task | None = None

    def followed_since(self, t_ns: int) -> bool:
        m = self.sim.market("BTCUSDT")
        return self.last_ns > t_ns and self.nonce is not None and abs(m.update_id - self.nonce) < 50

    async def book_equal(self) -> bool:
        sim = self.sim
        m = sim.market("BTCUSDT")
        sim.pause_market()
        try:
            reached = await wait_until(lambda: self.nonce == m.update_id, 2.0)
            bids, asks = self.levels()
            body = sim.depth_snapshot("BTCUSDT", 1000)
            return bool(reached and compare_levels(bids, asks, body["bids"], body["asks"])["equal"])
        finally:
            sim.resume_market()


class PythonBinancePeer(Peer):
    name = "python-binance DepthCacheManager (spot)"
    market = "spot"

    async def start(self) -> None:
        from decimal import Decimal

        from binance import AsyncClient, BinanceSocketManager, DepthCacheManager

        logging.getLogger("binance").setLevel(logging.CRITICAL)
        await self.sim.start()
        self.client = AsyncClient()
        self.client.API_URL = self.sim.rest_url + "/api"
        bm = BinanceSocketManager(self.client)
        bm.STREAM_URL = self.sim.ws_url + "/"
        self.dcm = dcm = DepthCacheManager(
            self.client, "BTCUSDT", bm=bm, limit=1000, ws_interval=100, conv_type=Decimal
        )
        orig = dcm._init_cache

        async def traced_init():
            await orig()
            self.resyncs.append(now_ns())

        dcm._init_cache = traced_init

        async def pump():
            try:
                async with dcm as sock:
                    while True:
                        await sock.recv()
                        self.last_ns = now_ns()
                        self.nonce = dcm._last_update_id
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a peer client's failure is counted, the measurement goes on
                self.errors += 1

        self.task = asyncio.get_running_loop().create_task(pump())

    def levels(self):
        dc = self.dcm.get_depth_cache()
        return ([b for b in dc.get_bids() if b[1] != 0], [a for a in dc.get_asks() if a[1] != 0]) if dc else ([], [])

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        try:
            await self.client.close_connection()
        except Exception:  # noqa: BLE001 - closing a third-party client: whatever it raises, the simulator must stop
            pass
        await self.sim.stop()


class CcxtPeer(Peer):
    name = "ccxt.pro binanceusdm watch_order_book"
    market = "usdm"

    async def start(self) -> None:
        import ccxt.pro as ccxtpro

        await self.sim.start()
        self.ex = ex = ccxtpro.binanceusdm(
            {
                "enableRateLimit": False,
                "options": {"fetchMarkets": ["linear"], "fetchCurrencies": False, "adjustForTimeDifference": False},
            }
        )
        self.version = getattr(ccxtpro, "__version__", None)
        api = ex.urls["api"]
        for key in list(api.keys()):
            val = api[key]
            if isinstance(val, str) and "fapi.binance.com" in val:
                api[key] = val.replace("https://fapi.binance.com", self.sim.rest_url)
        ws = api.get("ws", {})
        for key, val in list(ws.items()):
            if isinstance(val, str) and "fstream" in val:
                ws[key] = (
                    self.sim.ws_url + "/ws"
                    if not val.rstrip("/").endswith(("public", "market"))
                    else self.sim.ws_url + "/" + val.rstrip("/").rsplit("/", 1)[1]
                )
        self.book = None

        async def pump():
            while True:
                try:
                    ob = await ex.watch_order_book("BTC/USDT:USDT", 1000)
                    self.last_ns = now_ns()
                    self.nonce = ob.get("nonce")
                    self.book = ob
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - a peer client's failure is counted, the measurement goes on
                    self.errors += 1
                    await asyncio.sleep(0.05)

        self.task = asyncio.get_running_loop().create_task(pump())

    def levels(self):
        ob = self.book or {"bids": [], "asks": []}
        return [b[:2] for b in ob["bids"]], [a[:2] for a in ob["asks"]]

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        try:
            await self.ex.close()
        except Exception:  # noqa: BLE001 - closing a third-party client: whatever it raises, the simulator must stop
            pass
        await self.sim.stop()


async def run_peer(cls, args, log) -> dict:
    peer = cls(args)
    out: dict = {"peer": cls.name}
    try:
        await peer.start()
    except Exception as exc:  # noqa: BLE001 - a peer that cannot start is reported in the result
        await asyncio.gather(peer.stop(), return_exceptions=True)
        return {**out, "error": f"{type(exc).__name__}: {exc}"}
    sim = peer.sim
    try:
        if not await wait_until(lambda: peer.nonce is not None, 15):
            return {**out, "error": "peer produced no book"}
        rows = []
        for _ in range(args.peer_stalls):
            await wait_until(lambda: not sim.faults.to_json()["active"], 30)
            await wait_until(lambda: peer.followed_since(now_ns() - 300_000_000), 10)
            inj = now_ns()
            conns0 = sim.stats["connections_total"]
            sim.inject("stall", duration_s=args.peer_stall_s)
            await asyncio.sleep(0.3)  # let the stall take effect before asking whether they follow
            ok = await wait_until(lambda inj=inj: peer.followed_since(inj + 300_000_000), args.peer_timeout)
            rows.append(
                {
                    "ok": ok,
                    "synced_ms": round((peer.last_ns - inj) / 1e6, 1) if ok else None,
                    "reconnects": sim.stats["connections_total"] - conns0,
                }
            )
        out["stall"] = {
            "stall_s": args.peer_stall_s,
            "trials": len(rows),
            "rows": rows,
            "synced_ms": pct([r["synced_ms"] for r in rows if r["ok"]]),
            "recovered_before_stall_ended": sum(
                1 for r in rows if r["ok"] and r["synced_ms"] < args.peer_stall_s * 1000
            ),
        }
        log(f"{cls.name} stall: {out['stall']['synced_ms']}")
        if args.quiet_s > 0:
            await wait_until(lambda: not sim.faults.to_json()["active"], 30)
            await asyncio.sleep(0.5)
            conns0 = sim.stats["connections_total"]
            sim.pause_market()
            await asyncio.sleep(args.quiet_s)
            sim.resume_market()
            await asyncio.sleep(1.0)
            out["quiet"] = {
                "seconds": args.quiet_s,
                "connection_attempts": sim.stats["connections_total"] - conns0,
                "book_equal_after": await peer.book_equal(),
            }
            log(f"{cls.name} quiet: {out['quiet']}")
        if args.latency_s > 0:
            conns0 = sim.stats["connections_total"]
            sim.inject("latency", ms=args.latency_ms, duration_s=args.latency_s)
            await asyncio.sleep(args.latency_s)
            out["latency"] = {
                "seconds": args.latency_s,
                "ms": args.latency_ms,
                "connection_attempts": sim.stats["connections_total"] - conns0,
            }
            log(f"{cls.name} latency: {out['latency']}")
        out["errors"] = peer.errors
        out["version"] = getattr(peer, "version", None)
        return out
    finally:
        await peer.stop()


# ============================================================================ main


async def main_async(args) -> dict:
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if not args.quiet else (lambda msg: None)
    result: dict = {"args": vars(args), "load_before": load()}
    if not args.peers_only:
        result["ours"] = await ours(args, log)
    if not args.no_peers:
        result["peers"] = list(
            await asyncio.gather(run_peer(PythonBinancePeer, args, log), run_peer(CcxtPeer, args, log))
        )
    result["load_after"] = load()
    return result


def summary(res: dict) -> str:
    lines = [f"load average before/after: {res.get('load_before')} / {res.get('load_after')}"]
    o = res.get("ours")
    if o:
        s = o["stall"]
        lines.append(f"ours stall->synced ms: {s['synced_ms']} ({s['ok']}/{s['trials']}), detect ms: {s['detect_ms']}")
        if "quiet" in o:
            q = o["quiet"]
            lines.append(
                f"ours quiet {q['seconds']} s: {q['replacements']} replacements, {q['probes']} probes, synced "
                f"{q['synced_fraction']:.1%}, "
                f"quiet reason {q['quiet_reason_fraction']:.1%}, books equal at end: {q['books_equal_at_end']}"
            )
        if "latency" in o:
            la = o["latency"]
            lines.append(
                f"ours latency {la['ms']} ms for {la['seconds']} s: {la['connection_attempts']} connection attempts"
            )
    for p in res.get("peers", []):
        if "error" in p:
            lines.append(f"{p['peer']}: {p['error']}")
            continue
        s = p["stall"]
        lines.append(
            f"{p['peer']}: stall({s['stall_s']} s)->following again ms {s['synced_ms']}, before the stall ended: "
            f"{s['recovered_before_stall_ended']}/{s['trials']}"
        )
        if "quiet" in p:
            lines.append(
                f"  quiet {p['quiet']['seconds']} s: {p['quiet']['connection_attempts']} connection attempts, book "
                f"equal after: {p['quiet']['book_equal_after']}"
            )
        if "latency" in p:
            lines.append(
                f"  latency {p['latency']['ms']} ms for {p['latency']['seconds']} s: "
                f"{p['latency']['connection_attempts']} connection attempts"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stalls", type=int, default=50)
    p.add_argument("--stall-s", type=float, default=3.0, help="how long each stall of ours lasts")
    p.add_argument("--quiet-s", type=float, default=300.0)
    p.add_argument("--latency-s", type=float, default=300.0)
    p.add_argument("--latency-ms", type=float, default=3000.0)
    p.add_argument("--market", default="usdm", choices=["usdm", "spot"])
    p.add_argument("--snapshot-limit", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--peer-stalls", type=int, default=5)
    p.add_argument("--peer-stall-s", type=float, default=5.0)
    p.add_argument("--peer-timeout", type=float, default=15.0)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--peers-only", action="store_true")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    res = asyncio.run(main_async(args))
    print(json.dumps(res, indent=1, default=str) if args.json else summary(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
