"""Risk events an operator must hear about, as log records: a circuit breaker tripping, a loss
limit latching. Found by comparing the risk state with what was last reported, so it needs no
hook inside the trader and catches every path (live fills, fills imported at startup, funding).

Each alert is ``(level, message, fields)`` with the cause and the until-time (UTC).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from epochbot.trading.money import decimal_str

if TYPE_CHECKING:
    from epochbot.trading.readout import TraderReadout

__all__ = ["RiskAlerts"]


class RiskAlerts:
    def __init__(self, known_breakers: dict[str, int] | None = None) -> None:
        """``known_breakers``: symbol -> until already reported (restored at startup and logged)."""
        self._breakers: dict[str, int] = dict(known_breakers or {})
        self._latched = (False, False)

    def poll(self, trader: TraderReadout) -> list[tuple[str, str, dict[str, Any]]]:
        from epochbot.trading.risk import format_utc_time
        from epochbot.trading.state_view import breaker_cause

        state = trader.risk.state
        limits = trader.risk.limits
        out: list[tuple[str, str, dict[str, Any]]] = []
        for symbol, until in sorted(state.breakers.items()):
            if self._breakers.get(symbol) != until:
                out.append(
                    (
                        "warn",
                        "circuit breaker tripped",
                        {
                            "symbol": symbol,
                            "cause": breaker_cause(limits),
                            "until": format_utc_time(until),
                            "effect": "exits only",
                        },
                    )
                )
        self._breakers = dict(state.breakers)
        session, daily = state.session_latched, state.daily_latched
        if session and not self._latched[0]:
            out.append(
                (
                    "warn",
                    "session loss limit reached",
                    {"session_pnl": decimal_str(state.session_pnl), "effect": "exits only"},
                )
            )
        if daily and not self._latched[1]:
            out.append(
                (
                    "warn",
                    "daily loss limit reached",
                    {"daily_pnl": decimal_str(state.daily_pnl), "effect": "exits only until the next UTC day"},
                )
            )
        self._latched = (session, daily)
        return out
