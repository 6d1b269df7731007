"""The `epochbot` command line.

Sub-commands import what they need lazily so that `replay` and `--headless` never pay for
(or depend on) the Textual stack.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_FATAL = 3  # fatal state corruption (core.engine.FATAL_EXIT_CODE)
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: a service manager should not restart blindly


def _replay(args: argparse.Namespace) -> int:
    import orjson

    from core.capture import CaptureFormatError
    from core.replay import print_malformed, replay_file

    try:
        result = replay_file(args.capture, on_malformed=print_malformed)
    except FileNotFoundError:
        print(f"replay: no such capture file: {args.capture}", file=sys.stderr)
        return EXIT_USAGE
    except CaptureFormatError as exc:
        print(f"replay: {args.capture}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = result.report(depth=args.depth)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
    else:
        print(f"{args.capture}: {report['events']} events, {report['epochs']} epoch(s), "
              f"{report['discarded_stale_epoch']} stale discarded, {len(report['malformed'])} malformed")
        for symbol, info in report["symbols"].items():
            best_bid = info["bids"][0][0] if info["bids"] else "-"
            best_ask = info["asks"][0][0] if info["asks"] else "-"
            print(f"  {symbol:<12} {info['state']:<9} last_update_id={info['last_update_id']} "
                  f"gaps={info['gaps']} resyncs={info['book_resyncs']} bid={best_bid} ask={best_ask}")
        print(f"  state_hash {report['state_hash']}")
    return EXIT_FATAL if result.engine.fatal else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="epochbot", description="Operator console and headless daemon for Binance spot and USD-M.")
    sub = parser.add_subparsers(dest="command")

    replay = sub.add_parser("replay", help="replay a capture through the engine and report the final state")
    replay.add_argument("capture", help="capture file (JSON lines, see FORMAT.md)")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.add_argument("--depth", type=int, default=20, help="levels per side in the report (default 20)")
    replay.set_defaults(func=_replay)

    try:
        from app import sim_command
    except ImportError:  # the simulator command is optional while it is being built
        sim_command = None
    if sim_command is not None:
        sim_command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
