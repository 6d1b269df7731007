"""Replay a capture through the same engine that runs live.

The driver plays the venue's part from the recording: ``open`` rows start a new epoch,
``ws`` rows are decoded and fed as market events stamped with the row's receive time, and
``rest`` depth rows answer the engine's ``FetchSnapshot`` requests for that symbol in recorded
order (an answer recorded before the engine asked waits in a per-symbol queue; a request made
before its answer was recorded waits for it). ``exchangeInfo`` rows fix each symbol's exact
tick and lot scale. The clock is the capture's own receive time, so a replay is deterministic:
the same file gives the same final state hash.

Malformed rows and frames are reported with their line numbers and skipped; they never reach
a book half-parsed.
"""

from __future__ import annotations

import sys
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC
from typing import IO, TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import orjson

from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.model.capture import CaptureError, read_capture
from epochbot.model.trade_events import Fill
from epochbot.runtime.data_errors import handle_failure
from epochbot.venues.binance.exchange_info import ExchangeInfoError, parse_exchange_info
from epochbot.venues.binance.wire import Ack, FrameError, ServerShutdown, decode_frame, decode_snapshot
from epochbot.views.report import orders_report, symbols_report

if TYPE_CHECKING:
    from epochbot.trading.trader import Trader

__all__ = ["ManualClock", "ReplayResult", "replay_file", "replay_path", "replay_stream"]


@dataclass
class ReplayResult:
    engine: Engine
    events: int = 0
    malformed: list[dict] = field(default_factory=list)
    rows: int = 0
    version: int = 1
    run: str = ""  # version 2: the run replayed
    runs: list[dict] = field(default_factory=list)  # version 2 directory: every run found
    files: list[str] = field(default_factory=list)
    stopped_at: dict | None = None  # --until: where the replay stopped
    rows_until_epoch: dict[int, int] = field(default_factory=dict)  # version 2: epoch -> its last row index
    timeline: list = field(default_factory=list)  # LogRecords (when asked for)

    def report(self, depth: int = 20) -> dict:
        from epochbot.views.report import iso
        from epochbot.views.snapshot import percentiles

        engine = self.engine
        out = {
            "version": self.version,
            "events": self.events,
            "discarded_stale_epoch": engine.counters["discarded_stale_epoch"],
            "state_hash": engine.state_hash(),
            "symbols": symbols_report(engine, depth),
            "epochs": engine.epoch,
            "epoch_history": epochs_report(engine),
            "book_resyncs": [
                {
                    "symbol": r.symbol,
                    "cause": r.cause,
                    "epoch": r.epoch,
                    "at": iso(r.detected_ns),
                    "resync_ms": r.resync_ms,
                }
                for r in list(engine.book_resyncs)[-50:]
            ],
            "modes": [
                {"mode": c.mode.value, "at": iso(c.at_ns), "cause": c.cause, "source": c.source}
                for c in list(engine.modes.history)[-50:]
            ],
            "time_to_correct_resync_ms": percentiles(engine.ttcr_ms),
            "confidence_min": engine.confidence_min,
            "mode": engine.mode.value,
            "orders": orders_report(engine.trader),
            "fatal": engine.fatal,
            "malformed": self.malformed,
        }
        if self.version == 2:
            out.update(run=self.run, runs=self.runs, files=self.files)
        if self.stopped_at is not None:
            out["stopped_at"] = self.stopped_at
        return out


def epochs_report(engine: Engine) -> list[dict]:
    from epochbot.views.report import iso

    return [
        {
            "epoch": e.epoch,
            "cause": e.cause,
            "opened_at": iso(e.opened_ns or e.requested_ns),
            "closed_at": iso(e.closed_ns),
            "close_cause": e.close_cause or None,
            "resync_ms": e.resync_ms,
            "phases_ms": e.phases_ms(),
        }
        for e in engine.epochs
    ]


class ManualClock:
    """A clock that says what the driver set: the recorded receive time of the current row."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _guarded(engine):
    """engine.handle with the live loop's repair of a handler failure (epochbot.runtime.data_errors), so a
    journal whose input made a handler raise replays to the same repaired state."""
    handle = engine.handle

    def guarded(event):
        try:
            return handle(event)
        except Exception as exc:  # noqa: BLE001 - the runtime's loop guard, the same policy in replay (runtime.data_errors)
            return handle_failure(engine, event, exc)

    return guarded


def replay_file(path: str, **kwargs) -> ReplayResult:
    """Replay a capture file (version 1 or 2, ``.gz`` or not) or a journal directory."""
    return replay_path(path, **kwargs)


def replay_stream(stream: IO[bytes], *, on_malformed=None) -> ReplayResult:
    header, rows = read_capture(stream)
    rules = VenueRules.SPOT if header.venue == "binance-spot" else VenueRules.USDM
    clock = ManualClock()
    engine = Engine(EngineConfig(venue=rules, track_new_symbols=True, snapshot_on_subscribe=False), clock)
    result = ReplayResult(engine)
    outstanding: dict[str, int] = {}
    answers: dict[str, deque] = defaultdict(deque)
    handle = engine.handle
    # symbol -> (price_decimals, qty_decimals) once an exchangeInfo row fixed the book's codec:
    # its depth frames are then decoded straight to integer units (see decode_frame).
    scales: dict[str, tuple[int, int]] = {}

    def bad(line: int, reason: str) -> None:
        item = {"line": line, "reason": reason}
        result.malformed.append(item)
        if on_malformed is not None:
            on_malformed(item)

    def run(commands) -> None:
        for command in commands:
            if type(command) is ev.FetchSnapshot:
                queued = answers.get(command.symbol)
                if queued:
                    deliver(command.symbol, command.request_id, queued.popleft())
                else:
                    outstanding[command.symbol] = command.request_id

    def deliver(symbol: str, request_id: int, answer: tuple) -> None:
        last_id, bids, asks, exch_ts = answer
        event = ev.SnapshotReady(
            epoch=engine.epoch,
            recv_ts=clock.now,
            symbol=symbol,
            request_id=request_id,
            last_update_id=last_id,
            bids=bids,
            asks=asks,
            exchange_ts=exch_ts,
        )
        run(handle(event))

    open_epoch = None
    for row in rows:
        result.rows += 1
        if isinstance(row, CaptureError):
            bad(row.line, row.reason)
            continue
        now = int(row.ts * 1e9)
        clock.now = now
        kind = row.kind
        if kind == "ws":
            try:
                event = decode_frame(row.data, engine.epoch, now, scales)
            except FrameError as exc:
                bad(row.line, str(exc))
                run(handle(ev.MalformedFrame(epoch=engine.epoch, recv_ts=now, reason=str(exc), sample=row.data[:200])))
                continue
            if event is None or type(event) is Ack:
                continue
            if type(event) is ServerShutdown:
                run(handle(ev.ServerShutdownNotice(epoch=engine.epoch, recv_ts=now, reason="serverShutdown")))
                continue
            result.events += 1
            commands = handle(event)
            if commands:
                run(commands)
        elif kind == "rest":
            _on_rest(row, engine, outstanding, answers, deliver, bad, scales)
        elif kind == "open":
            if row.epoch is not None and row.epoch == open_epoch:
                # An older epochbot journal: one open row per route (USD-M /public and
                # /market) of the same session, tagged with its epoch: one connection.
                continue
            open_epoch = row.epoch
            # Snapshot answers recorded for the previous connection cannot bridge this one
            # (answers recorded before the first connection are kept: they may bridge it).
            outstanding.clear()
            if engine.epoch:
                answers.clear()
            if engine.epoch == 0 or engine.session_open:
                run(engine.begin_session("startup" if engine.epoch == 0 else "capture: connection opened"))
            run(handle(ev.SessionOpened(epoch=engine.epoch, recv_ts=now, url=row.url)))
            # A combined-stream URL subscribes on connect: the open row is the subscription.
            run(handle(ev.SubscriptionConfirmed(epoch=engine.epoch, recv_ts=now)))
        elif kind == "close":
            run(handle(ev.Disconnected(epoch=engine.epoch, recv_ts=now, reason=row.data or "closed")))
    return result


def _on_rest(row, engine: Engine, outstanding, answers, deliver, bad, scales: dict | None = None) -> None:
    parts = urlsplit(row.url)
    path = parts.path
    if path.endswith("/depth"):
        symbol = (parse_qs(parts.query).get("symbol") or [""])[0].upper()
        if not symbol:
            bad(row.line, "depth snapshot row without a symbol in its url")
            return
        try:
            answer = decode_snapshot(row.data)
        except FrameError as exc:
            bad(row.line, str(exc))
            return
        request_id = outstanding.pop(symbol, 0)
        if request_id:
            deliver(symbol, request_id, answer)
        else:
            answers[symbol].append(answer)
    elif path.endswith("/exchangeInfo"):
        try:
            info = parse_exchange_info(row.data)
        except ExchangeInfoError as exc:
            bad(row.line, str(exc))
            return
        for symbol, listed in info.filters.items():
            engine.handle(listed.spec())
            if scales is None:
                continue
            state = engine.symbols.get(symbol)
            codec = state.book.codec if state is not None else None
            if codec is not None:  # the scale the book now has, read back
                scales[symbol] = (codec.price_decimals, codec.qty_decimals)


def print_malformed(item: dict) -> None:
    print(f"replay: line {item['line']}: skipped: {item['reason']}", file=sys.stderr)


# ================================================================================ version 2


def open_capture(path: str):
    """A binary stream of a capture file, transparently gunzipped for ``.gz``."""
    if str(path).endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _header_of(path: str) -> dict:
    from epochbot.model.capture import CaptureFormatError

    with open_capture(path) as stream:
        first = stream.readline()
    try:
        header = orjson.loads(first)
        header["capture"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise CaptureFormatError(f"{path}: line 1: not a capture header: {exc}") from None
    return header


def journal_runs(directory: str) -> list[dict]:
    """The runs in a journal directory, oldest first: ``{"run", "files", "parts", "version"}``.
    Files are taken in name order (the journal numbers them); a version 2 run is every file
    whose header names it, a version 1 file is a run of its own."""
    import os

    from epochbot.model.capture import CaptureFormatError

    names = sorted(n for n in os.listdir(directory) if n.endswith((".jsonl", ".jsonl.gz")))
    runs: list[dict] = []
    by_id: dict[str, dict] = {}
    for name in names:
        path = os.path.join(directory, name)
        try:
            header = _header_of(path)
        except (CaptureFormatError, OSError):
            continue
        if header.get("capture") == 2 and header.get("run"):
            run = by_id.get(header["run"])
            if run is None:
                run = by_id[header["run"]] = {"run": header["run"], "files": [], "parts": [], "version": 2}
                runs.append(run)
            run["files"].append(path)
            run["parts"].append(int(header.get("part", 1)))
        else:
            runs.append({"run": name, "files": [path], "parts": [1], "version": int(header.get("capture", 1))})
    return runs


def parse_until(text: str | None, start_ns: int = 0):
    """``--until``: ``None``; ("epoch", N) for an integer or ``eN``; ("time", ns) for an ISO-8601
    time, a time of day ``HH:MM[:SS[.fff]]`` (UTC, on the run's first day, as ``--timeline``
    prints it), unix seconds (a number > 1e9) or ``+S`` seconds after the run's start. A time
    written to some precision includes all of its last unit: ``01:12:27.312`` stops after every
    input of that millisecond (so the one an order was placed on is included)."""
    import re
    from datetime import datetime

    if text is None:
        return None
    t = text.strip()
    if t.lower().startswith("e") and t[1:].isdigit():
        return ("epoch", int(t[1:]))
    if t.isdigit() and int(t) < 1_000_000_000:
        return ("epoch", int(t))
    if t.startswith("+"):
        return ("time", start_ns + int(float(t[1:]) * 1e9))

    def inclusive(stamp: datetime, fraction: str) -> int:
        ns = int(stamp.replace(microsecond=0).timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
        digits = min(len(fraction), 9)
        return ns + 10 ** (9 - digits) - 1

    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?", t)
    if m:
        day = datetime.fromtimestamp(start_ns / 1e9, tz=UTC)
        stamp = day.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=int(m.group(3) or 0), microsecond=0)
        fraction = m.group(4) or ""
        if m.group(3) is None:  # HH:MM: the whole minute
            return ("time", int(stamp.timestamp()) * 1_000_000_000 + 60 * 1_000_000_000 - 1)
        return ("time", inclusive(stamp, fraction))
    try:
        value = float(t)
    except ValueError:
        m = re.search(r"[T ]\d{1,2}:\d{2}:\d{2}(?:\.(\d+))?", t)
        fraction = (m.group(1) or "") if m else ""
        base = re.sub(r"(:\d{2})\.\d+", r"\1", t).replace("Z", "+00:00")
        stamp = datetime.fromisoformat(base)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return ("time", inclusive(stamp, fraction))
    return ("time", int(value * 1e9))


def replay_path(
    path: str, *, run: str | None = None, until: str | None = None, timeline: bool = False, on_malformed=None
) -> ReplayResult:
    """Replay a capture file, a ``.gz`` capture, or a journal directory.

    A directory replays one run (default: the last one; ``run`` picks another by id or 1-based
    index): its files in order. Version 1 files replay as before (`replay_stream`); ``until``
    and ``timeline`` need version 2 (a journal recorded by the engine)."""
    import os

    from epochbot.model.capture import CaptureFormatError

    runs_info: list[dict] = []
    if os.path.isdir(path):
        runs_info = journal_runs(path)
        if not runs_info:
            raise CaptureFormatError("no capture or journal files in this directory")
        chosen = runs_info[-1]
        if run is not None:
            matches = [r for r in runs_info if r["run"] == run]
            if not matches and run.isdigit() and 1 <= int(run) <= len(runs_info):
                matches = [runs_info[int(run) - 1]]
            if not matches:
                raise CaptureFormatError(f"no run {run!r} (runs: {', '.join(r['run'] for r in runs_info)})")
            chosen = matches[0]
        files = chosen["files"]
    else:
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        files = [path]
        header = _header_of(path)
        if header.get("capture") == 2:
            runs_info = [
                {"run": header.get("run", ""), "files": files, "parts": [int(header.get("part", 1))], "version": 2}
            ]
            chosen = runs_info[0]
        else:
            chosen = {"run": "", "files": files, "parts": [1], "version": 1}
    if chosen["version"] != 2:
        if until is not None or timeline:
            raise CaptureFormatError("--until and --timeline need a journal recorded by epochbot (capture version 2)")
        with open_capture(files[0]) as stream:
            result = replay_stream(stream, on_malformed=on_malformed)
        result.files = list(files)
        return result
    parts = chosen["parts"]
    if parts != list(range(1, len(parts) + 1)):
        missing = "its first file" if parts[0] != 1 else "a file in the middle"
        raise CaptureFormatError(
            f"run {chosen['run']}: {missing} was pruned (journal.keep / journal.max_mb too small for the run); "
            f"parts present: {parts[0]}..{parts[-1]}: an exact replay needs every input from the start"
        )
    stop_before = None
    target = None
    if until is not None:
        target = parse_until(until, _header_of(files[0]).get("created_ns", 0))
        if target[0] == "epoch":
            # Stop just before the input that ended that epoch: find it in a first pass.
            probe = _replay_v2(files, None, False, None)
            stop_before = probe.rows_until_epoch.get(target[1])
    result = _replay_v2(files, target, timeline, on_malformed, stop_before)
    result.runs = [{"run": r["run"], "files": len(r["files"]), "version": r["version"]} for r in runs_info]
    result.run = chosen["run"]
    return result


def _replay_v2(files: list[str], target, timeline: bool, on_malformed, stop_before: int | None = None) -> ReplayResult:
    from epochbot.model.capture import V2_KINDS, CaptureFormatError, decode_event
    from epochbot.runtime.journal_inputs import build_trader, decode_engine_config, history_from_row

    clock = ManualClock()
    engine: Engine | None = None
    result: ReplayResult | None = None
    trader: Trader | None = None  # the journal's trader, once its "trading" row built it
    scales: dict[str, tuple[int, int]] = {}
    rows_until_epoch: dict[int, int] = {}
    index = 0
    malformed: list[dict] = []
    stopped = None
    until_ns = target[1] if target is not None and target[0] == "time" else None
    until_epoch = target[1] if target is not None and target[0] == "epoch" else None
    log: list = []
    loads = orjson.loads
    WS_PREFIX = b'{"k":"ws","e":'
    skip_kinds = (Ack, ServerShutdown)

    def bad(line: int, reason: str, file: str) -> None:
        item = {"line": line, "reason": reason, "file": file}
        malformed.append(item)
        if on_malformed is not None:
            on_malformed(item)

    for path in files:
        with open_capture(path) as stream:
            try:
                header = loads(stream.readline())
                if header.get("capture") != 2:
                    raise CaptureFormatError(f"{path}: not a version 2 journal file")
            except (orjson.JSONDecodeError, AttributeError) as exc:
                raise CaptureFormatError(f"{path}: line 1: not a capture header: {exc}") from None
            if engine is None:
                clock.now = int(header.get("created_ns", 0))
                config = decode_engine_config(
                    header.get("engine", {}),
                    venue=VenueRules.SPOT if header.get("venue") == "binance-spot" else VenueRules.USDM,
                )
                engine = Engine(config, clock)
                result = ReplayResult(engine, version=2, files=list(files))
            handle = _guarded(engine)
            if result is None:  # pragma: no cover - made with the engine just above
                raise AssertionError("replay result missing")
            counting = stop_before is not None or until_ns is not None
            for number, line in enumerate(stream, start=2):
                result.rows += 1
                index += 1
                if counting:
                    if stop_before is not None and index >= stop_before:
                        stopped = {"row": index, "file": path, "line": number, "reason": f"end of epoch {until_epoch}"}
                        break
                before_epoch = engine.epoch
                # Fast path: a market row as EngineJournal writes it, the frame embedded verbatim.
                if line.startswith(WS_PREFIX):
                    cut = line.find(b',"f":')
                    if cut > 0:
                        try:
                            e_text, r_text, p_text = line[14:cut].split(b",")
                            epoch, recv, proc = int(e_text), int(r_text[4:]), int(p_text[4:])
                            raw = line[cut + 5 :].rstrip()[:-1]
                        except ValueError:
                            bad(number, "unreadable market row", path)
                            continue
                        if until_ns is not None and proc > until_ns:
                            stopped = {"row": index, "file": path, "line": number, "reason": "time reached"}
                            break
                        clock.now = proc
                        try:
                            event = decode_frame(raw, epoch, recv, scales)
                        except FrameError as exc:
                            bad(number, str(exc), path)
                            continue
                        if event is not None and type(event) not in skip_kinds:
                            event.recv_ts = recv
                            result.events += 1
                            handle(event)
                        if engine.epoch != before_epoch:
                            rows_until_epoch.setdefault(before_epoch, index)
                        if timeline:
                            log.extend(engine.drain_log())
                        elif engine.pending_log:
                            engine.pending_log.clear()
                        continue
                if not line.strip():
                    continue
                try:
                    r = loads(line)
                    kind = r["k"]
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    bad(number, f"unreadable row: {exc}", path)
                    continue
                if kind not in V2_KINDS:
                    bad(number, f"unknown row kind {kind!r}", path)
                    continue
                p = r.get("p")
                if until_ns is not None and p is not None and p > until_ns:
                    stopped = {"row": index, "file": path, "line": number, "reason": "time reached"}
                    break
                try:
                    if p is not None:
                        clock.now = p
                    if kind == "ws":
                        data = r.get("d")
                        if data is None and isinstance(r.get("f"), dict):
                            data = orjson.dumps(r["f"])
                        if not isinstance(data, (str, bytes)):
                            bad(number, "market row without its frame", path)
                            continue
                        try:
                            event = decode_frame(data, r["e"], r["r"], scales)
                        except FrameError as exc:
                            bad(number, str(exc), path)
                            continue
                        if event is None or type(event) in skip_kinds:
                            continue
                        event.recv_ts = r["r"]
                        result.events += 1
                        handle(event)
                    elif kind == "ev":
                        event = decode_event(r["t"], r["f"])
                        handle(event)
                        extra = r.get("x")
                        if extra and engine.epochs and engine.epochs[-1].epoch == extra.get("epoch"):
                            # What live measured with the wall clock inside the handler.
                            engine.epochs[-1].rebuild_ns += int(extra.get("rebuild_ns", 0))
                            engine.epochs[-1].validate_ns += int(extra.get("validate_ns", 0))
                        if type(event) is ev.SymbolSpec:
                            state = engine.symbols.get(event.symbol)
                            codec = state.book.codec if state is not None else None
                            if codec is not None:
                                scales[event.symbol] = (codec.price_decimals, codec.qty_decimals)
                    elif kind == "start":
                        engine.start()
                    elif kind == "trading":
                        trader, _ = build_trader(r)
                        engine.trader = trader
                    elif kind == "import":  # a venue fill imported at the clean stop (trader.import_fill)
                        fill = decode_event("Fill", r["f"])
                        if trader is not None and isinstance(fill, Fill):
                            trader.import_fill(fill)
                    elif kind == "defect":  # what live reported; the event before made this replay meet it too
                        pass
                    elif kind == "history":
                        history = history_from_row(r)
                        for symbol, candles in history.items():
                            engine.market.add_candles(symbol, candles)
                        if trader is not None:
                            for symbol, candles in history.items():
                                trader.warm_up(symbol, candles)
                except (KeyError, TypeError, ValueError) as exc:
                    bad(number, f"unusable {kind} row: {type(exc).__name__}: {exc}", path)
                    continue
                if engine.epoch != before_epoch:
                    rows_until_epoch.setdefault(before_epoch, index)
                if timeline:
                    log.extend(engine.drain_log())
                elif engine.pending_log:
                    engine.pending_log.clear()
            if stopped is not None:
                break
    if engine is None or result is None:  # pragma: no cover - a journal run always has a first file
        raise ValueError("empty journal run")
    result.malformed = malformed
    result.timeline = log
    result.stopped_at = None
    if stopped is not None or target is not None:
        from epochbot.views.report import iso

        result.stopped_at = {**(stopped or {"reason": "end of journal"}), "at": iso(clock.now), "epoch": engine.epoch}
    result.rows_until_epoch = rows_until_epoch
    return result
