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
from typing import IO
from urllib.parse import parse_qs, urlsplit

import orjson

from core import events as ev
from core.book import VenueRules
from core.capture import CaptureError, read_capture
from core.engine import Engine, EngineConfig
from core.report import symbols_report
from core.venues.binance.wire import Ack, FrameError, ServerShutdown, decode_frame, decode_snapshot

__all__ = ["ManualClock", "ReplayResult", "replay_file", "replay_stream"]


@dataclass
class ReplayResult:
    engine: Engine
    events: int = 0
    malformed: list[dict] = field(default_factory=list)
    rows: int = 0

    def report(self, depth: int = 20) -> dict:
        engine = self.engine
        return {
            "events": self.events,
            "discarded_stale_epoch": engine.counters["discarded_stale_epoch"],
            "state_hash": engine.state_hash(),
            "symbols": symbols_report(engine, depth),
            "epochs": engine.epoch,
            "malformed": self.malformed,
        }


class ManualClock:
    """A clock that says what the driver set: the recorded receive time of the current row."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def replay_file(path: str, **kwargs) -> ReplayResult:
    with open(path, "rb") as stream:
        return replay_stream(stream, **kwargs)


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
        event = ev.SnapshotReady(epoch=engine.epoch, recv_ts=clock.now, symbol=symbol, request_id=request_id, last_update_id=last_id, bids=bids, asks=asks, exchange_ts=exch_ts)
        run(handle(event))

    for row in rows:
        result.rows += 1
        if type(row) is CaptureError:
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
            # Snapshot answers recorded for the previous connection cannot bridge this one.
            outstanding.clear()
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
            info = orjson.loads(row.data)
            for sym in info["symbols"]:
                filters = {f["filterType"]: f for f in sym.get("filters", [])}
                price, lot = filters.get("PRICE_FILTER"), filters.get("LOT_SIZE")
                if price and lot:
                    engine.handle(ev.SymbolSpec(symbol=sym["symbol"], tick_size=price["tickSize"], step_size=lot["stepSize"]))
                    state = engine.symbols.get(sym["symbol"]) if scales is not None else None
                    codec = state.book.codec if state is not None else None
                    if codec is not None:  # the scale the book now has, read back
                        scales[sym["symbol"]] = (codec.price_decimals, codec.qty_decimals)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            bad(row.line, f"bad exchangeInfo: {exc}")


def print_malformed(item: dict) -> None:
    print(f"replay: line {item['line']}: skipped: {item['reason']}", file=sys.stderr)
