"""`epochbot ctl`: command-line client of a running daemon's control endpoint.

    epochbot ctl status                  GET /status (the live report)
    epochbot ctl ready                   GET /readyz (exit 0 ready, 1 not ready)
    epochbot ctl health                  GET /healthz
    epochbot ctl metrics                 GET /metrics (Prometheus text)
    epochbot ctl resync [SYMBOL]         POST /resync: one book, or every book without SYMBOL
    epochbot ctl resync --session        POST /resync {"session": true}: new epoch
    epochbot ctl mode MODE               POST /mode
    epochbot ctl pause|resume            POST /pause
    epochbot ctl cancel-all [SYMBOL]     POST /cancel-all (asks first; --yes to skip)
    epochbot ctl flatten SYMBOL|--all    POST /flatten: reduce-only market order (asks; --yes)

``status`` prints a readable table (mode, books, PnL, positions, breakers, working orders,
recent fills); ``--json`` prints the raw report instead.

The port comes from ``--control-port`` (``--port`` is kept as an alias), else the configuration
(``--config``, ``EPOCHBOT_CONTROL__PORT``), else 8780. The token only from
``EPOCHBOT_CONTROL__TOKEN`` or the chmod-600 secrets_file: like the main command line,
``--token`` is refused (argv is visible in ``ps`` and shell history). Uses urllib (blocking,
stdlib): a one-shot client needs no event loop.

Exit codes: 0 success, 1 the daemon refused or reported a problem (its message is printed),
69 (EX_UNAVAILABLE) no daemon listening, 2 usage, 78 bad configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

__all__ = ["add_parser", "run"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ctl", help="talk to a running headless daemon's control endpoint")
    p.add_argument(
        "--control-port", dest="port", type=int, default=None, help="control port (default: from config, else 8780)"
    )
    p.add_argument(
        "--port", dest="port", type=int, default=None, help=argparse.SUPPRESS
    )  # the older name, still accepted
    # Accepted only to refuse it with a useful message: secrets never go on the command line.
    p.add_argument("--token", default=None, help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the daemon (default 5)")
    p.add_argument(
        "--config",
        dest="ctl_config",
        default=None,
        metavar="PATH",
        help="TOML config to read the port/secrets_file from",
    )
    p.add_argument(
        "--json", action="store_true", help="print raw JSON (default: a table for status, pretty JSON otherwise)"
    )
    actions = p.add_subparsers(dest="ctl_action", metavar="ACTION")
    actions.required = True
    status = actions.add_parser("status", help="the live report (a table; --json for JSON)")
    status.add_argument("--json", dest="status_json", action="store_true", help="print the report as JSON")
    actions.add_parser("ready", help="readiness (exit 0 ready, 1 not)")
    actions.add_parser("health", help="liveness")
    actions.add_parser("metrics", help="Prometheus metrics")
    resync = actions.add_parser("resync", help="force a book resync (SYMBOL, all books) or a new session (--session)")
    resync.add_argument("symbol", nargs="?", default=None)
    resync.add_argument("--session", action="store_true", help="replace the transport session (new epoch)")
    mode = actions.add_parser("mode", help="set the operator mode floor (normal removes it)")
    mode.add_argument("mode", help="normal | reduce-only | cancel-makers | halted")
    actions.add_parser("pause", help="pause the strategy")
    actions.add_parser("resume", help="resume the strategy")
    cancel = actions.add_parser("cancel-all", help="cancel every working order (of SYMBOL) and pause the strategy")
    cancel.add_argument("symbol", nargs="?", default=None)
    cancel.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    cancel.add_argument(
        "--no-pause", action="store_true", help="keep the strategy running (it may quote again at once)"
    )
    flatten = actions.add_parser(
        "flatten", help="close a position with a reduce-only market order (pauses the strategy)"
    )
    flatten.add_argument("symbol", nargs="?", default=None)
    flatten.add_argument("--all", dest="flatten_all", action="store_true", help="every open position")
    flatten.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    flatten.add_argument("--no-pause", action="store_true", help="keep the strategy running")
    p.set_defaults(func=run)
    return p


def _request(method: str, url: str, body: dict | None, token: str | None, timeout: float) -> tuple[int, bytes, str]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "") if exc.headers else ""


def _resolve(args: argparse.Namespace) -> tuple[int, str | None]:
    from epochbot.app.config import ConfigError, load_settings

    port = args.port
    token = None
    try:
        settings = load_settings(args.ctl_config or getattr(args, "config", None))
    except ConfigError as exc:
        raise _CtlError(EXIT_CONFIG, f"config error: {exc}") from None
    if port is None:
        port = settings.control.port
    if token is None and settings.control.token is not None:
        token = settings.control.token.get_secret_value()
    return port, token


class _CtlError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _print_body(body: bytes, content_type: str, raw: bool) -> Any:
    if "json" in content_type:
        try:
            parsed = json.loads(body)
        except ValueError:
            sys.stdout.write(body.decode(errors="replace"))
            return None
        print(json.dumps(parsed) if raw else json.dumps(parsed, indent=2))
        return parsed
    sys.stdout.write(body.decode(errors="replace"))
    return None


def run(args: argparse.Namespace) -> int:
    if args.token is not None:
        print(
            "ctl: control.token: secrets are not accepted on the command line (visible in ps and shell history); "
            "use EPOCHBOT_CONTROL__TOKEN or secrets_file",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        port, token = _resolve(args)
    except _CtlError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
    if port == 0:
        print("ctl: control port is 0 (ephemeral) in the configuration; pass --port", file=sys.stderr)
        return EXIT_USAGE
    base = f"http://127.0.0.1:{port}"
    action = args.ctl_action
    method, path, body = (
        "GET",
        {"status": "/status", "ready": "/readyz", "health": "/healthz", "metrics": "/metrics"}.get(action, ""),
        None,
    )
    if action == "resync":
        if args.session and args.symbol:
            print("ctl resync: give SYMBOL or --session, not both", file=sys.stderr)
            return EXIT_USAGE
        method, path = "POST", "/resync"
        body = {"session": True} if args.session else ({"symbol": args.symbol.upper()} if args.symbol else {})
    elif action == "mode":
        method, path, body = "POST", "/mode", {"mode": args.mode}
    elif action in ("pause", "resume"):
        method, path, body = "POST", "/pause", {"paused": action == "pause"}
    elif action in ("cancel-all", "flatten"):
        if action == "flatten" and bool(args.symbol) == bool(args.flatten_all):
            print("ctl flatten: give SYMBOL or --all", file=sys.stderr)
            return EXIT_USAGE
        body = {"confirm": True, "pause": not args.no_pause}
        if args.symbol:
            body["symbol"] = args.symbol.upper()
        elif action == "flatten":
            body["all"] = True
        method, path = "POST", "/" + action
        if token and not args.yes and not _confirm(action, args.symbol, args.no_pause):
            print(f"ctl {action}: not confirmed; nothing sent", file=sys.stderr)
            return EXIT_ERROR
    if method == "POST" and not token:
        print(
            "ctl: no token: pass --token or set EPOCHBOT_CONTROL__TOKEN (the daemon refuses mutating calls without "
            "one)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        status, payload, ctype = _request(method, base + path, body, token, args.timeout)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError):
            print(
                f"ctl: daemon not running at 127.0.0.1:{port} (connection refused); start it with `epochbot "
                "--headless`",
                file=sys.stderr,
            )
        else:
            print(f"ctl: cannot reach the daemon at 127.0.0.1:{port}: {reason}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if action == "ready":
        _print_body(payload, ctype, args.json)
        return EXIT_OK if status == 200 else EXIT_ERROR
    if status >= 400:
        try:
            message = json.loads(payload).get("error", payload.decode(errors="replace"))
        except (ValueError, AttributeError):
            message = payload.decode(errors="replace").strip()
        print(f"ctl {action}: HTTP {status}: {message}", file=sys.stderr)
        return EXIT_ERROR
    if action == "status" and not (args.json or getattr(args, "status_json", False)) and "json" in ctype:
        try:
            report = json.loads(payload)
        except ValueError:
            report = None
        if isinstance(report, dict):
            from epochbot.app.commands.ctl_table import print_status

            print_status(report)
            return EXIT_OK
    _print_body(payload, ctype, args.json or getattr(args, "status_json", False))
    return EXIT_OK


def _confirm(action: str, symbol: str | None, no_pause: bool) -> bool:
    what = {
        "cancel-all": f"Cancel every working order{' of ' + symbol.upper() if symbol else ''}",
        "flatten": f"Close {f'the {symbol.upper()} position' if symbol else 'every open position'} "
        "with a reduce-only market order",
    }[action]
    pause = "" if no_pause else " and pause the strategy"
    if not sys.stdin.isatty():
        print(f"ctl {action}: confirmation needed and stdin is not a terminal: pass --yes", file=sys.stderr)
        return False
    try:
        answer = input(f"{what}{pause}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="epochbot")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ctl", *(argv or [])])
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
