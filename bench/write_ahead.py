"""What write-ahead orders cost: the wait before an order may leave the process, and the
strategy loop's share of it.

For each order the runtime queues its "sent" journal row to the storage writer thread and a
barrier behind it (`StorageWriter.barrier`); the gateway task awaits the barrier (commit +
fsync, SQLite WAL with synchronous=FULL) before transmitting. This script measures, on a real
SQLite file in a temporary directory:

* ``loop_us``: what the loop spends per order (queue the row + the barrier): it never waits;
* ``durable_ms``: from queueing the row to the barrier firing (the added latency per order);
  single orders one after another, and bursts of orders placed together (one commit serves a
  whole burst);

Run: ``.venv/bin/python bench/write_ahead.py [--orders 300] [--burst 10] [--dir /tmp]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from epochbot.persistence.storage import SqliteStorage
from epochbot.persistence.writer import StorageWriter
from epochbot.trading.orders import OrderTransition


def row(i: int) -> OrderTransition:
    return OrderTransition(
        time.time_ns(),
        f"eb1-{i:x}",
        "BTCUSDT",
        "BUY",
        "LIMIT",
        10,
        1_000_000,
        "GTC",
        False,
        "bid",
        "",
        "PENDING_NEW",
        0,
        "",
        "sent",
    )


async def run(orders: int, burst: int, directory: str | None) -> dict:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        storage = SqliteStorage(os.path.join(tmp, "bench.sqlite3"))
        writer = StorageWriter(storage)
        loop_us: list[float] = []
        durable_ms: dict[int, list[float]] = {1: [], burst: []}
        seq = 0
        for size in (1, burst):
            for _ in range(max(1, orders // size)):
                futures = []
                for _ in range(size):
                    t0 = time.perf_counter_ns()
                    writer.submit(row(seq))
                    future = loop.create_future()

                    def done(ok: bool, f=future) -> None:
                        loop.call_soon_threadsafe(lambda: f.done() or f.set_result(time.perf_counter_ns()))

                    writer.barrier(done)
                    loop_us.append((time.perf_counter_ns() - t0) / 1e3)
                    futures.append((t0, future))
                    seq += 1
                for t0, future in futures:
                    durable_ms[size].append((await future - t0) / 1e6)
        writer.close()
        storage.close()

    def pct(values: list[float], p: float) -> float:
        values = sorted(values)
        return round(values[min(len(values) - 1, int(p * len(values)))], 3)

    out = {"orders": seq, "loop_us_p50": pct(loop_us, 0.5), "loop_us_p99": pct(loop_us, 0.99)}
    for size, values in durable_ms.items():
        out[f"durable_ms_burst{size}_p50"] = pct(values, 0.5)
        out[f"durable_ms_burst{size}_p99"] = pct(values, 0.99)
        out[f"durable_ms_burst{size}_mean"] = round(statistics.fmean(values), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--dir", default=None, help="where the SQLite file goes (its disk decides the fsync cost)")
    args = parser.parse_args()
    result = asyncio.run(run(args.orders, args.burst, args.dir))
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    print(f"loadavg={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
