"""Depth-message throughput of the embedded simulator to one websocket client over loopback.

Starts `epochbot sim` in a subprocess (its own core) at a high --rate on one symbol, connects one
aiohttp websocket client to ``<sym>@depth@100ms``, counts messages for --seconds and prints one
JSON line. Run: ``python bench/sim_throughput.py [--rate 25000] [--seconds 5] [--market usdm]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def measure(args: argparse.Namespace) -> dict:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from epochbot.app.commands.sim import main; sys.exit(main())",
            "--port",
            "0",
            "--market",
            args.market,
            "--symbols",
            "BTCUSDT",
            "--rate",
            str(args.rate),
            "--seed",
            "7",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        ws_url, rest = fields["ws"], fields["rest"]
        route = "/public/ws/" if args.market == "usdm" else "/ws/"
        n = 0
        nbytes = 0
        gaps = 0
        last_u = None
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ws_url + route + "btcusdt@depth@100ms", max_msg_size=0) as ws:
                t_end = None
                t0 = time.perf_counter()
                warm = t0 + 1.0
                async for msg in ws:
                    now = time.perf_counter()
                    if now < warm:
                        continue
                    if t_end is None:
                        t_end, t_start = now + args.seconds, now
                    n += 1
                    nbytes += len(msg.data)
                    if n % 1000 == 0:
                        d = json.loads(msg.data)
                        last_u = d["u"]
                    if now >= t_end:
                        break
                elapsed = time.perf_counter() - t_start
            stats = await (await s.get(rest + "/_sim/stats")).json()
        return {
            "bench": "sim_throughput",
            "market": args.market,
            "rate_configured": args.rate,
            "seconds": round(elapsed, 3),
            "messages": n,
            "msgs_per_s": round(n / elapsed),
            "mbytes_per_s": round(nbytes / elapsed / 1e6, 2),
            "last_u": last_u,
            "slow_disconnects": stats["slow_disconnects"],
            "gaps": gaps,
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=25000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--market", choices=("usdm", "spot"), default="usdm")
    result = asyncio.run(measure(p.parse_args()))
    print(json.dumps(result), flush=True)
    return 0 if result["msgs_per_s"] >= 20000 else 1


if __name__ == "__main__":
    sys.exit(main())
