"""What the strategy loop does when a handler raises on an event: data errors are repaired,
defects are fatal.

Decoders validate every field the engine reads (`epochbot.venues.binance.wire`,
`epochbot.model.trade_checks`), so a handler raising is rare; when it happens anyway, what it
raised decides:

* a **data error** (`epochbot.model.errors.DataError` and its family: a decimal the codec cannot
  represent, a frame, snapshot or trading event that fails its checks): the event carried
  something the handler could not use. It is dropped, counted in ``handler_data_errors``,
  logged with a truncated sample, and repaired by its route: a market event of a known symbol
  resyncs that book (like a malformed depth frame), a trading event naming one of our orders
  reconciles that order from the venue's records (`VenueDataError`), anything else is only
  counted;
* anything else is a **defect** in our code - an invariant violation (`INVARIANT_VIOLATIONS`:
  an illegal book or order state transition, a failed assertion) or any other exception (an
  ``AttributeError`` or ``KeyError`` of an engine or strategy bug). The handler may have left
  its state half updated, so nothing can be trusted: trading stops at once (the mode latches
  halted, the engine stops, the loop ends with exit code 3, and the runtime cancels every
  working order on the way out), with the traceback and the state in the log (`defect_report`).

`handle_failure` is pure (the engine and the event in, commands out) and shared with the offline
replay, so a journal whose input made a handler raise replays to the same repaired - or stopped
- state. The live loop adds the journal row (`epochbot.runtime.loop`).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from epochbot.book.book import IllegalTransition
from epochbot.engine.engine import FATAL_EXIT_CODE, Engine
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.errors import DataError
from epochbot.trading.orders import IllegalOrderTransition

if TYPE_CHECKING:
    from epochbot.trading.trader import Trader

__all__ = ["INVARIANT_VIOLATIONS", "defect_report", "handle_failure", "is_data_error"]

INVARIANT_VIOLATIONS: tuple[type[BaseException], ...] = (IllegalTransition, IllegalOrderTransition, AssertionError)


def _log(engine: Engine, level: str, msg: str, **fields: object) -> None:
    engine.log_event(level, msg, **fields)


def _go_fatal(engine: Engine, why: str) -> Iterable[ev.Command]:
    return engine.go_fatal(engine.clock(), why)


def is_data_error(exc: BaseException) -> bool:
    return isinstance(exc, DataError)


def _sample(event) -> str:
    try:
        text = repr(event)
    except Exception:  # noqa: BLE001 - a repr that raises is itself hostile data
        text = f"<{type(event).__name__}>"
    return text if len(text) <= 300 else text[:300] + "..."


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def handle_failure(engine: Engine, event, exc: Exception) -> list:
    """The commands that follow a handler raising ``exc`` on ``event`` (see the module doc)."""
    if is_data_error(exc):
        return _repair(engine, event, exc)
    return _stop(engine, event, exc)


def defect_report(engine: Engine, event, exc: BaseException) -> dict:
    """What a defect leaves behind for the operator: the exception with its traceback and the
    state the handler left (epoch, mode, state hash, books, working orders, positions)."""
    try:
        state_hash = engine.state_hash()
    except Exception as again:  # noqa: BLE001 - the state may be too broken to hash: say so
        state_hash = f"unavailable: {_why(again)}"
    trader = cast("Trader | None", engine.trader)  # the runtime and the replay install a Trader
    report: dict = {
        "event": type(event).__name__,
        "event_kind": getattr(event, "kind", ""),
        "error": _why(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "epoch": engine.epoch,
        "mode": engine.mode.value,
        "state_hash": state_hash,
        "books": {symbol: state.book.state.value for symbol, state in sorted(engine.symbols.items())},
    }
    if trader is not None:
        try:
            report["working_orders"] = [o.client_order_id for o in trader.orders.working()][:50]
            report["positions"] = {symbol: trader.portfolio.qty(symbol) for symbol in sorted(trader.filters)}
        except Exception as again:  # noqa: BLE001 - as above
            report["trader"] = f"unavailable: {_why(again)}"
    return report


def _stop(engine: Engine, event, exc: Exception) -> list:
    kind = "invariant violated" if isinstance(exc, INVARIANT_VIOLATIONS) else "defect"
    why = f"{kind} handling {type(event).__name__}: {_why(exc)}"
    stop = [ev.CloseConnection(epoch=engine.epoch, reason="fatal"), ev.Stop(reason=why, exit_code=FATAL_EXIT_CODE)]
    if engine.fatal is not None:  # already stopping (the shutdown drain): the first cause stands
        _log(
            engine, "critical", "another defect after the fatal stop", reason=why, **_report_fields(engine, event, exc)
        )
        return stop
    _log(engine, "critical", f"{kind}: trading stopped", reason=why, **_report_fields(engine, event, exc))
    try:
        return list(_go_fatal(engine, why))
    except Exception as again:  # noqa: BLE001 - the fatal path met the defect again (a strategy hook): stop anyway
        engine.fatal = engine.fatal or why  # go_fatal latched the stop before the hook raised
        _log(engine, "critical", "fatal stop raised: trading stopped all the same", error=_why(again))
        return stop


def _report_fields(engine: Engine, event, exc: BaseException) -> dict:
    report = defect_report(engine, event, exc)
    report.pop("event_kind", None)
    report.pop("error", None)  # the reason says it
    return report


def _repair(engine: Engine, event, exc: Exception) -> list:
    why = _why(exc)
    engine.counters["handler_data_errors"] = engine.counters.get("handler_data_errors", 0) + 1
    sample = _sample(event)
    _log(
        engine,
        "error",
        "event handler failed: dropped as a data error",
        event=type(event).__name__,
        error=why,
        sample=sample,
        count=engine.counters["handler_data_errors"],
    )
    kind = getattr(event, "kind", "")
    try:
        if kind == "market":
            symbol = getattr(event, "symbol", "")
            if event.epoch != engine.epoch:
                return []
            return list(
                engine.handle(
                    ev.MalformedFrame(
                        epoch=engine.epoch,
                        recv_ts=event.recv_ts,
                        reason=f"handler failed: {why}",
                        sample=sample,
                        event="depthUpdate" if type(event) is ev.DepthDiff else type(event).__name__,
                        symbol=symbol if isinstance(symbol, str) else "",
                    )
                )
            )
        trader = cast("Trader | None", engine.trader)
        if kind == "trading":
            coid = getattr(event, "client_order_id", "")
            if isinstance(coid, str) and coid and trader is not None and type(event) is not tev.VenueDataError:
                return list(
                    engine.handle(
                        tev.VenueDataError(
                            ts_ns=trader.now_ns,
                            recv_ts=event.recv_ts,
                            client_order_id=coid,
                            reason=why,
                            sample=sample,
                        )
                    )
                )
    except DataError as again:  # the repair met bad data again: counted, nothing more to do
        engine.counters["handler_data_errors"] += 1
        _log(engine, "error", "repair after a data error failed", error=_why(again))
    except Exception as again:  # noqa: BLE001 - the repair itself hit a defect: stop trusting the state
        return _stop(engine, event, again)
    return []
