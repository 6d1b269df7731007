"""`epochbot sim`: run the embedded Binance-compatible exchange simulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

__all__ = ["add_parser", "run", "main"]


def add_parser(subparsers) -> None:
    """Register the ``sim`` subcommand on an argparse subparsers object."""
    p = subparsers.add_parser("sim", help="run the embedded Binance-compatible exchange simulator")
    _add_arguments(p)
    p.set_defaults(func=run)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = ephemeral)")
    p.add_argument("--market", choices=("usdm", "spot"), default="usdm")
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated symbols")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="diff-depth messages per second per symbol (10 = realistic @100ms stream)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="market time per wall second (1 = real time; 10: ten minutes of market in one, on a virtual clock)",
    )
    p.add_argument(
        "--accounts-file",
        default=None,
        metavar="PATH",
        help="chmod-600 file of KEY:SECRET entries (comma or newline separated); or EPOCHBOT_SIM_ACCOUNTS",
    )
    # Accepted only to refuse it: paper secrets on the command line are visible in ps.
    p.add_argument("--accounts", default=None, help=argparse.SUPPRESS)
    p.add_argument("--fault", action="append", default=[], metavar="KIND[:json]", help="arm a fault at start")
    p.add_argument("--ping-interval", type=float, default=None, help="seconds between server pings")
    p.add_argument("--pong-timeout", type=float, default=None, help="seconds to wait for a pong")
    p.add_argument("--max-lifetime", type=float, default=24 * 3600.0, help="connection lifetime in seconds")
    p.add_argument(
        "--weight-limit",
        type=int,
        default=None,
        metavar="N",
        help="REST request weight per minute (default Binance's: spot 6000, usdm 2400)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; prints one ready line. Returns the exit code."""
    from epochbot.sim.faults import FaultError, parse_fault_flag
    from epochbot.sim.server import SimConfig, SimExchange

    if args.accounts is not None:
        print(
            "epochbot sim: --accounts is refused: secrets on the command line are visible in ps and shell history; "
            "use --accounts-file PATH (chmod 600) or EPOCHBOT_SIM_ACCOUNTS",
            file=sys.stderr,
        )
        return 2
    try:
        accounts = read_accounts_file(args.accounts_file) if args.accounts_file else None
        faults = [parse_fault_flag(f) for f in args.fault]
        config = SimConfig(
            market=args.market,
            symbols=args.symbols.split(","),
            seed=args.seed,
            port=args.port,
            rate=args.rate,
            speed=args.speed,
            accounts=accounts,
            faults=faults,
            ping_interval_s=args.ping_interval,
            pong_timeout_s=args.pong_timeout,
            max_lifetime_s=args.max_lifetime,
            weight_limit=args.weight_limit,
        )
        sim = SimExchange(config)
    except (ValueError, FaultError) as e:
        print(f"epochbot sim: {e}", file=sys.stderr)
        return 2

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with sim:
            print(
                f"epochbot-sim ready market={config.market} rest={sim.rest_url} ws={sim.ws_url} "
                f"symbols={','.join(config.symbols)} seed={config.seed}",
                flush=True,
            )
            await stop.wait()

    try:
        asyncio.run(serve())
    except OSError as e:
        print(f"epochbot sim: {e}", file=sys.stderr)
        return 1
    return 0


def read_accounts_file(path: str) -> str:
    """The accounts spec from a file that only its owner can read (``KEY:SECRET`` entries,
    comma or newline separated; ``#`` starts a comment line). Raises ValueError."""
    import os
    import stat
    from pathlib import Path

    file = Path(path)
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"accounts file not found: {path}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"accounts file {path} is accessible by group/others (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}"
        )
    lines = [line.strip() for line in file.read_text().splitlines()]
    entries = [e.strip() for line in lines if line and not line.startswith("#") for e in line.split(",") if e.strip()]
    if not entries:
        raise ValueError(f"accounts file {path} lists no KEY:SECRET entry")
    return ",".join(entries)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="epochbot sim")
    _add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
