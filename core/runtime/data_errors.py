"""What the strategy loop does when a handler raises on an event.

Decoders validate every field the engine reads (`epochbot.venues.binance.wire`,
`epochbot.model.trade_checks`), so a handler raising is rare; when it happens anyway it is either

* a **data error**: the event carried something the handler could not use (any exception that
  is not an invariant violation). The event is dropped, counted in ``handler_data_errors``,
  logged with a truncated sample, and repaired by its route: a market event of a known symbol
  resyncs that book (like a malformed depth frame), a trading event naming one of our orders
  reconciles that order from the venue's records (`VenueDataError`), anything else is only
  counted; or
* an **invariant violation** (`FATAL`: an illegal book or order state transition, a failed
  assertion): the state can no longer be trusted, so trading stops and the process exits 3,
  exactly like the engine's own fatal path.

Used by `epochbot.runtime.runtime.Runtime._consume`; the engine itself stays unaware of it.
"""

from __future__ import annotations

from epochbot.book.book import IllegalTransition
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.trading.orders import IllegalOrderTransition

__all__ = ["FATAL", "handle_failure", "is_fatal"]

FATAL: tuple[type[BaseException], ...] = (IllegalTransition, IllegalOrderTransition, AssertionError)


def is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, FATAL)


def _sample(event) -> str:
    try:
        text = repr(event)
    except Exception:  # a repr that raises is itself hostile data
        text = f"<{type(event).__name__}>"
    return text if len(text) <= 300 else text[:300] + "..."


def handle_failure(engine, event, exc: Exception) -> list:
    """The commands that follow a handler raising ``exc`` on ``event`` (see the module doc)."""
    why = f"{type(exc).__name__}: {str(exc)[:200]}"
    if is_fatal(exc):
        now = engine.clock()
        return list(engine.go_fatal(now, f"invariant violated handling {type(event).__name__}: {why}"))
    engine.counters["handler_data_errors"] = engine.counters.get("handler_data_errors", 0) + 1
    sample = _sample(event)
    engine.log_event(
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
        if kind == "trading":
            coid = getattr(event, "client_order_id", "")
            if isinstance(coid, str) and coid and engine.trader is not None and type(event) is not tev.VenueDataError:
                return list(
                    engine.handle(
                        tev.VenueDataError(
                            ts_ns=engine.trader.now_ns,
                            recv_ts=event.recv_ts,
                            client_order_id=coid,
                            reason=why,
                            sample=sample,
                        )
                    )
                )
    except Exception as again:  # the repair itself failed: stop trusting the state
        if is_fatal(again):
            return list(engine.go_fatal(engine.clock(), f"repair after a data error violated an invariant: {again}"))
        engine.counters["handler_data_errors"] += 1
        engine.log_event(
            "error", "repair after a data error failed", error=f"{type(again).__name__}: {str(again)[:200]}"
        )
    return []
