"""Startup: orders at the venue that the journal does not know.

With write-ahead orders (`epochbot.runtime.order_gateway`) every order this program sends is in the journal
before it leaves the process, so an order of ours unknown to the journal means the journal was
lost, replaced, or shared with another instance. Before trading, the runtime lists the venue's
open orders and its recent order history (``openOrders`` and ``allOrders`` per symbol) and hands
them to `plan`, which decides per order:

* ours (client id matches `OUR_CLIENT_ID`) and unknown to the journal:
  - open: ``"cancel"`` (default: nobody manages it, so it must not keep working) or ``"adopt"``
    (the order manager takes it over as a working order: it counts in the working-order count
    and the gates, and is cancelled like any other at a clean stop) or ``"ignore"``;
  - closed (filled, cancelled, expired): recorded in the journal with its final state, so the
    journal knows every order of ours the venue has (its fills are imported by trade id);
* not ours: never touched, unless ``foreign="cancel"`` (then open ones are cancelled, not
  journaled as ours).

Every decision is returned as an `Adoption` so the runtime can log each one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Adoption", "OUR_CLIENT_ID", "POLICIES", "plan"]

OUR_CLIENT_ID = re.compile(r"^eb[0-9a-f]+-[0-9a-f]+$")
POLICIES = ("cancel", "adopt", "ignore")
_OPEN = ("NEW", "PARTIALLY_FILLED", "PENDING_NEW")


@dataclass(frozen=True, slots=True)
class Adoption:
    action: str  # "cancel" | "adopt" | "record" | "ignore" | "cancel-foreign"
    symbol: str
    client_order_id: str
    venue_order_id: str
    status: str
    side: str
    order_type: str
    qty: str
    price: str
    executed: str
    tif: str
    reduce_only: bool
    time_ms: int


def plan(
    venue_orders: list[dict[str, Any]], known_ids: set[str], *, unknown: str = "cancel", foreign: str = "ignore"
) -> list[Adoption]:
    """Decide what to do with each venue order (rows of openOrders/allOrders; duplicates by
    ``(symbol, orderId)`` are merged, the last row wins). Orders the journal knows are skipped."""
    if unknown not in POLICIES:
        raise ValueError(f"unknown-orders policy must be one of {POLICIES}, got {unknown!r}")
    if foreign not in ("ignore", "cancel"):
        raise ValueError(f"foreign-orders policy must be ignore or cancel, got {foreign!r}")
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in venue_orders:
        if not isinstance(row, dict):
            continue
        merged[(str(row.get("symbol", "")), str(row.get("orderId", "")))] = row
    out: list[Adoption] = []
    for (symbol, venue_id), row in merged.items():
        coid = str(row.get("clientOrderId", ""))
        status = str(row.get("status", ""))
        if status == "PURGED" or not symbol:
            continue
        is_open = status in _OPEN
        ours = bool(OUR_CLIENT_ID.match(coid))
        if ours and coid in known_ids:
            continue
        if ours:
            action = (
                ("cancel" if unknown == "cancel" else "adopt" if unknown == "adopt" else "ignore")
                if is_open
                else "record"
            )
        else:
            if not (is_open and foreign == "cancel"):
                continue
            action = "cancel-foreign"
        out.append(
            Adoption(
                action,
                symbol,
                coid,
                venue_id,
                status,
                str(row.get("side", "")),
                str(row.get("type", "")),
                str(row.get("origQty", "0")),
                str(row.get("price", "0")),
                str(row.get("executedQty", "0")),
                str(row.get("timeInForce", "") or ""),
                bool(row.get("reduceOnly", False)),
                _int(row.get("updateTime") or row.get("time") or 0),
            )
        )
    return out


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
