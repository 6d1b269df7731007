"""Order round trip (send -> acknowledgement) over signed REST vs the WebSocket API, on loopback.

Both transports are epochbot's own (`epochbot.venues.binance.order_router.OrderRouter`: REST only, and
WebSocket API), against an external ``epochbot sim`` process per market, so client and venue do
not share an event loop. Orders alternate between the transports (which one goes first flips
every round) and are paced under the venue's ORDERS limit (spot 100 / 10 s, USD-M 300 / 10 s on
the WebSocket API); each order rests far from the market and is cancelled (cancel timed too).
The first ``--warmup`` rounds are dropped. The machine's load average is printed with the result.

    python bench/order_rtt.py --orders 200 [--markets spot,usdm] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from epochbot.venues.binance.account_stream import ws_api_url
from epochbot.venues.binance.order_router import OrderRouter
from epochbot.venues.binance.rest import RestClient
from epochbot.venues.binance.signing import Signer

SYMBOL = "BTCUSDT"


def start_sim(market: str) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "sim",
            "--port",
            "0",
            "--market",
            market,
            "--symbols",
            SYMBOL,
            "--rate",
            "10",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "EPOCHBOT_SIM_ACCOUNTS": "bench-key:bench-secret"},
    )
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    return proc, fields["rest"], fields["ws"]


def summary(samples_ms: list[float]) -> dict:
    s = sorted(samples_ms)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]  # noqa: E731
    return {
        "n": len(s),
        "p50_ms": round(q(0.5), 3),
        "p90_ms": round(q(0.9), 3),
        "p99_ms": round(q(0.99), 3),
        "mean_ms": round(statistics.fmean(s), 3),
    }


async def run_market(market: str, orders: int, warmup: int) -> dict:
    proc, rest_url, ws_url = start_sim(market)
    signer = Signer("bench-key", "bench-secret")
    try:
        async with aiohttp.ClientSession() as http:
            rest = RestClient(http, rest_url, market)
            filters = (await rest.exchange_filters([SYMBOL]))[SYMBOL]
            async with http.get(f"{rest_url}{rest.prefix}/depth", params={"symbol": SYMBOL, "limit": "5"}) as r:
                bid = Decimal((await r.json())["bids"][0][0])
            price = str((bid * Decimal("0.9")).quantize(Decimal(filters.tick_size.rstrip("0") or "1")))
            qty = str(Decimal(filters.min_qty) * 10) if Decimal(filters.min_qty) else "0.01"
            routers = {
                "REST": OrderRouter(rest, signer, ws_api="", use_ws=False),
                "WebSocket API": OrderRouter(rest, signer, ws_api=ws_api_url(market, ws_url)),
            }
            task = asyncio.get_running_loop().create_task(routers["WebSocket API"].run())
            while not routers["WebSocket API"].ws_up:
                await asyncio.sleep(0.01)
            place = {name: [] for name in routers}
            cancel = {name: [] for name in routers}
            # Under the WebSocket API's ORDERS limit with room to spare (one WS order per round).
            interval = 10.0 / (80 if market == "spot" else 250)
            names = list(routers)
            for i in range(orders + warmup):
                start = time.perf_counter()
                for name in names if i % 2 == 0 else names[::-1]:
                    router = routers[name]
                    coid = f"rtt{i}{'w' if name != 'REST' else 'r'}"
                    params = {
                        "symbol": SYMBOL,
                        "side": "BUY",
                        "type": "LIMIT",
                        "timeInForce": "GTC",
                        "quantity": qty,
                        "price": price,
                        "newClientOrderId": coid,
                    }
                    t0 = time.perf_counter_ns()
                    await router.call("POST", params)
                    t1 = time.perf_counter_ns()
                    await router.call("DELETE", {"symbol": SYMBOL, "origClientOrderId": coid})
                    t2 = time.perf_counter_ns()
                    if i >= warmup:
                        place[name].append((t1 - t0) / 1e6)
                        cancel[name].append((t2 - t1) / 1e6)
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - start)))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await routers["WebSocket API"].close()
            return {
                "market": market,
                "place": {k: summary(v) for k, v in place.items()},
                "cancel": {k: summary(v) for k, v in cancel.items()},
                "ws_rate_limit_waits": routers["WebSocket API"].stats["rate_limit_waits"],
            }
    finally:
        proc.terminate()
        proc.wait(5)


async def main(args) -> int:
    results = [await run_market(m, args.orders, args.warmup) for m in args.markets.split(",")]
    load = os.getloadavg()
    print(
        f"order round trip on loopback, {args.orders} orders per transport and market; load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f}"
    )
    print("| market | request | transport | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|---|---|")
    for res in results:
        for what in ("place", "cancel"):
            for name, s in res[what].items():
                print(
                    f"| {res['market']} | {what} | {name} | {s['p50_ms']} | {s['p90_ms']} | {s['p99_ms']} | "
                    f"{s['mean_ms']} |"
                )
    if args.json:
        Path(args.json).write_text(json.dumps({"load_average": load, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--markets", default="spot,usdm")
    p.add_argument("--json", default=None)
    sys.exit(asyncio.run(main(p.parse_args())))
