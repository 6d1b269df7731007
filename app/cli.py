"""The `epochbot` command line.

    epochbot [FLAGS]                     the dashboard (Textual) against the configured venue
    epochbot --headless [FLAGS]          the daemon: JSON-lines logs, status lines, control endpoint
    epochbot config show|check [FLAGS]   print the merged configuration (secrets masked) / validate it
    epochbot ctl ACTION                  talk to a running daemon (status, resync, mode, ...)
    epochbot replay PATH                 replay a capture, journal file or directory through the engine
    epochbot sim                         run the embedded exchange simulator in the foreground
    epochbot export JOURNAL --parquet OUT  a journal (file, .gz, directory) as Parquet

Configuration flags (FLAGS) are the highest layer over defaults < TOML (--config) < EPOCHBOT_*
environment; ``--set section.key=value`` reaches any setting. Secrets are never accepted as flags.

Sub-commands import what they need lazily so that `replay`, `ctl` and `--headless` never pay for
(or depend on) the Textual stack.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_FATAL = 3  # fatal state corruption (epochbot.engine.engine.FATAL_EXIT_CODE)
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h: a service manager should not restart blindly

S = argparse.SUPPRESS  # flags absent from the command line must not override lower layers

# flag dest -> settings path
_FLAG_PATHS = {
    "config_venue": "venue",
    "config_market": "market",
    "config_symbols": "symbols",
    "config_rest_url": "rest_url",
    "config_ws_url": "ws_url",
    "config_seed": "sim.seed",
    "config_rate": "sim.rate",
    "config_sim_port": "sim.port",
    "config_duration": "duration",
    "config_report": "report",
    "config_control_port": "control.port",
    "config_control_enabled": "control.enabled",
    "config_log_level": "log_level",
    "config_log_format": "log_format",
    "config_log_file": "log_file",
    "config_status_interval": "status_interval_s",
    "config_secrets_file": "secrets_file",
    "config_theme": "theme",
    "config_storage": "storage",
    "config_snapshot_hz": "snapshot_hz",
    "config_strategy": "strategy.name",
}
_REFUSED_FLAGS = {
    "refused_api_key": "api_key",
    "refused_api_secret": "api_secret",
    "refused_control_token": "control.token",
}


def _settings_parent() -> argparse.ArgumentParser:
    """Configuration flags shared by the top level and `config show|check`."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("configuration (highest precedence layer)")
    g.add_argument("--config", dest="config_file", default=S, metavar="PATH", help="TOML configuration file")
    g.add_argument(
        "--venue",
        dest="config_venue",
        default=S,
        choices=("sim", "binance-spot", "binance-usdm", "binance-spot-testnet", "binance-usdm-testnet"),
    )
    g.add_argument(
        "--market", dest="config_market", default=S, choices=("usdm", "spot"), help="simulator market (sim venue only)"
    )
    g.add_argument("--symbols", dest="config_symbols", default=S, metavar="SYM[,SYM]", help="e.g. BTCUSDT,ETHUSDT")
    g.add_argument(
        "--rest-url", dest="config_rest_url", default=S, metavar="URL", help="override the venue's REST base URL"
    )
    g.add_argument(
        "--ws-url", dest="config_ws_url", default=S, metavar="URL", help="override the venue's websocket base URL"
    )
    g.add_argument("--seed", dest="config_seed", default=S, metavar="N", help="simulator seed")
    g.add_argument(
        "--rate", dest="config_rate", default=S, metavar="HZ", help="simulator diff events per second per symbol"
    )
    g.add_argument(
        "--sim-port",
        dest="config_sim_port",
        default=S,
        metavar="N",
        help="embedded simulator port on 127.0.0.1 (0: ephemeral) for POST /_sim/fault",
    )
    g.add_argument(
        "--duration", dest="config_duration", default=S, metavar="SECONDS", help="stop after this long (exit 0)"
    )
    g.add_argument(
        "--report", dest="config_report", default=S, metavar="PATH", help="write the JSON report here at exit"
    )
    g.add_argument(
        "--control-port",
        dest="config_control_port",
        default=S,
        metavar="N",
        help="control endpoint port on 127.0.0.1 (0: ephemeral)",
    )
    g.add_argument(
        "--control",
        dest="config_control_enabled",
        action="store_const",
        const=True,
        default=S,
        help="enable the control endpoint",
    )
    g.add_argument(
        "--no-control",
        dest="config_control_enabled",
        action="store_const",
        const=False,
        default=S,
        help="disable the control endpoint",
    )
    g.add_argument(
        "--log-level", dest="config_log_level", default=S, metavar="LEVEL", help="debug | info | warn | error"
    )
    g.add_argument(
        "--log-format",
        dest="config_log_format",
        default=S,
        choices=("json", "text"),
        help="headless stderr: JSON lines (default) or readable text",
    )
    g.add_argument(
        "--log-file",
        dest="config_log_file",
        default=S,
        metavar="PATH",
        help="headless: also append JSON-lines logs to PATH",
    )
    g.add_argument(
        "--status-interval",
        dest="config_status_interval",
        default=S,
        metavar="SECONDS",
        help="seconds between status lines",
    )
    g.add_argument(
        "--secrets-file",
        dest="config_secrets_file",
        default=S,
        metavar="PATH",
        help="TOML with api_key, api_secret, [control] token (chmod 600)",
    )
    g.add_argument("--theme", dest="config_theme", default=S, metavar="NAME")
    g.add_argument("--storage", dest="config_storage", default=S, metavar="PATH")
    g.add_argument("--snapshot-hz", dest="config_snapshot_hz", default=S, metavar="HZ")
    g.add_argument("--strategy", dest="config_strategy", default=S, metavar="NAME")
    g.add_argument(
        "--set",
        dest="config_set",
        action="append",
        default=S,
        metavar="KEY=VALUE",
        help="any setting by dotted path, e.g. --set confidence.silence_replace_ms=2000",
    )
    # Accepted only to refuse them with a useful message (argparse would say "unrecognized").
    for flag, dest in (
        ("--api-key", "refused_api_key"),
        ("--api-secret", "refused_api_secret"),
        ("--control-token", "refused_control_token"),
        ("--token", "refused_control_token"),
    ):
        g.add_argument(flag, dest=dest, default=S, help=S)
    return p


def settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration flags present on the command line as a nested dict."""
    from epochbot.app.config import command_line_flags
    from epochbot.app.config.errors import refused_on_command_line

    for dest, path in _REFUSED_FLAGS.items():
        if hasattr(args, dest):
            raise refused_on_command_line(path)
    named = {path: getattr(args, dest) for dest, path in _FLAG_PATHS.items() if hasattr(args, dest)}
    flags = command_line_flags(named, getattr(args, "config_set", None) or ())
    if getattr(args, "headless", False):
        flags["headless"] = True
    return flags


def load_from_args(args: argparse.Namespace):
    """`Settings` for a parsed command line (raises epochbot.app.config.ConfigError)."""
    from epochbot.app.config import load_settings

    return load_settings(getattr(args, "config_file", None), settings_flags(args))


def _config_error(exc: Exception) -> int:
    print(f"config error: {exc}", file=sys.stderr)
    return EXIT_CONFIG


# ---------------------------------------------------------------------- sub-commands


def _replay(args: argparse.Namespace) -> int:
    import orjson

    from epochbot.model.capture import CaptureFormatError
    from epochbot.offline.replay import print_malformed, replay_path

    try:
        result = replay_path(
            args.capture, run=args.run, until=args.until, timeline=args.timeline, on_malformed=print_malformed
        )
    except FileNotFoundError:
        print(f"replay: no such capture file or directory: {args.capture}", file=sys.stderr)
        return EXIT_USAGE
    except (CaptureFormatError, ValueError) as exc:
        print(f"replay: {args.capture}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"replay: {args.capture}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = result.report(depth=args.depth)
    if args.json:
        if args.timeline:
            report["timeline"] = [r.as_dict() for r in result.timeline]
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_NON_STR_KEYS, default=str) + b"\n")
        return EXIT_FATAL if result.engine.fatal else EXIT_OK
    if args.timeline:
        from epochbot.offline.timeline import format_timeline

        print("\n".join(format_timeline(result.timeline, result.engine)))
    if args.until is not None:
        from epochbot.offline.timeline import format_state

        where = report.get("stopped_at") or {}
        print(f"stopped: {where.get('reason', '?')} at {where.get('at')}")
        print("\n".join(format_state(result.engine, depth=min(args.depth, 10))))
        return EXIT_FATAL if result.engine.fatal else EXIT_OK
    run = f" (run {report['run']}, {len(report.get('files', []))} file(s))" if report.get("run") else ""
    print(
        f"{args.capture}{run}: {report['events']} events, {report['epochs']} epoch(s), "
        f"{report['discarded_stale_epoch']} stale discarded, {len(report['malformed'])} malformed"
    )
    for symbol, info in report["symbols"].items():
        best_bid = info["bids"][0][0] if info["bids"] else "-"
        best_ask = info["asks"][0][0] if info["asks"] else "-"
        print(
            f"  {symbol:<12} {info['state']:<9} last_update_id={info['last_update_id']} "
            f"gaps={info['gaps']} resyncs={info['book_resyncs']} bid={best_bid} ask={best_ask}"
        )
    if report["orders"]:
        working = sum(
            1 for o in report["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED", "PENDING_NEW", "UNKNOWN")
        )
        print(f"  orders {len(report['orders'])}, working {working}")
    print(f"  state_hash {report['state_hash']}")
    return EXIT_FATAL if result.engine.fatal else EXIT_OK


def _config(args: argparse.Namespace) -> int:
    from epochbot.app.config import ConfigError, render_settings

    try:
        settings = load_from_args(args)
    except ConfigError as exc:
        return _config_error(exc)
    if args.config_action == "check":
        print("config ok")
        return EXIT_OK
    sys.stdout.write(render_settings(settings, "json" if args.json else "toml"))
    if args.json:
        sys.stdout.write("\n")
    return EXIT_OK


def _run_default(args: argparse.Namespace) -> int:
    """No sub-command: the dashboard, or the daemon with --headless."""
    from epochbot.app.config import ConfigError

    try:
        settings = load_from_args(args)
    except ConfigError as exc:
        return _config_error(exc)
    if settings.headless:
        from epochbot.app.daemon.headless import run_headless

        return run_headless(settings)
    try:
        from epochbot.app.console.tui import run_dashboard
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing == "epochbot.app.console.tui":
            print(
                "epochbot: the dashboard is not installed in this build (epochbot.app.console.tui is missing); "
                "run `epochbot --headless` instead",
                file=sys.stderr,
            )
        else:
            print(f"epochbot: the dashboard cannot start: {exc}; run `epochbot --headless` instead", file=sys.stderr)
        return EXIT_RUNTIME
    return run_dashboard(settings)


def build_parser() -> argparse.ArgumentParser:
    settings_parent = _settings_parent()
    parser = argparse.ArgumentParser(
        prog="epochbot",
        description="Operator console and headless daemon for Binance spot and USD-M.",
        parents=[settings_parent],
        epilog="Without a sub-command: the dashboard (or the daemon with --headless). "
        "Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 fatal state corruption, 78 bad configuration.",
    )
    parser.add_argument(
        "--headless", action="store_true", help="run without the UI: JSON logs on stderr, control endpoint"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    replay = sub.add_parser("replay", help="replay a capture through the engine and report the final state")
    replay.add_argument(
        "capture",
        metavar="PATH",
        help="capture or journal file (.jsonl or .jsonl.gz), or a journal directory (docs/capture-format.md)",
    )
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.add_argument(
        "--run", default=None, help="journal directory: the run to replay (id or 1-based index; default the last)"
    )
    replay.add_argument(
        "--timeline", action="store_true", help="print the reconnect timeline (epochs, resyncs, modes, orders, fills)"
    )
    replay.add_argument(
        "--until",
        default=None,
        metavar="TIME|EPOCH",
        help="stop after a time (ISO-8601, HH:MM:SS.fff UTC as --timeline prints it, unix seconds, +S after start) "
        "or at the end of epoch N (N or eN); print books and working orders",
    )
    replay.add_argument("--depth", type=int, default=20, help="levels per side in the report (default 20)")
    replay.set_defaults(func=_replay)

    config = sub.add_parser("config", help="show or check the merged configuration")
    config_actions = config.add_subparsers(dest="config_action", metavar="ACTION")
    config_actions.required = True
    show = config_actions.add_parser(
        "show", parents=[settings_parent], help="print the merged configuration, secrets masked"
    )
    show.add_argument("--json", action="store_true", help="JSON instead of TOML")
    show.set_defaults(func=_config)
    check = config_actions.add_parser(
        "check", parents=[settings_parent], help="validate the configuration (exit 0 or 78)"
    )
    check.set_defaults(func=_config, json=False)

    from epochbot.app.commands import ctl

    ctl.add_parser(sub)

    from epochbot.app.commands import backtest as backtest_command
    from epochbot.app.commands import export as export_command
    from epochbot.app.commands import sim as sim_command
    from epochbot.app.console import serve

    sim_command.add_parser(sub)
    export_command.add_parser(sub)
    serve.add_parser(sub)
    backtest_command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    try:
        if func is None:
            return _run_default(args)
        return func(args)
    except BrokenPipeError:  # `epochbot ctl metrics | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
