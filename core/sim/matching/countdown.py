"""The dead-man switch: ``POST /fapi/v1/countdownCancelAll`` deadlines, one per account and symbol.

Binance: "Cancel all open orders of the specified symbol at the end of the specified countdown. The
endpoint should be called repeatedly as heartbeats so that the existing countdown time can be
canceled and replaced by a new one. [...] If this endpoint is called with an countdownTime of 0,
the countdown timer will be stopped. The system will check all countdowns approximately every 10
milliseconds". Here a heartbeat replaces the deadline (``now + countdownTime``), 0 removes it; the
venue asks `due` on every step of the symbol's market generator (every ``tick_s``, with the
generator's clock) and cancels the symbol's open orders of each account whose deadline passed.
A countdown fires once: after it fired, nothing is armed until the next heartbeat.
"""

from __future__ import annotations

__all__ = ["Countdowns"]


class Countdowns:
    """Armed countdowns: (account id, symbol) -> deadline (ms, the venue's clock)."""

    def __init__(self) -> None:
        self._deadlines: dict[tuple[str, str], int] = {}

    def arm(self, account_id: str, symbol: str, countdown_ms: int, now_ms: int) -> None:
        """A heartbeat: the deadline becomes ``now_ms + countdown_ms``; 0 stops the countdown."""
        if countdown_ms <= 0:
            self._deadlines.pop((account_id, symbol), None)
        else:
            self._deadlines[(account_id, symbol)] = now_ms + countdown_ms

    def deadline(self, account_id: str, symbol: str) -> int | None:
        return self._deadlines.get((account_id, symbol))

    def due(self, symbol: str, now_ms: int) -> list[str]:
        """The accounts whose countdown on ``symbol`` has run out by ``now_ms`` (they are disarmed)."""
        fired = [acct for (acct, sym), deadline in self._deadlines.items() if sym == symbol and deadline <= now_ms]
        for acct in fired:
            del self._deadlines[(acct, symbol)]
        return fired
