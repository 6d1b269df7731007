"""`epochbot ctl status` as tables (rich): what an operator reads first, from the /status report.

Only values present in the report are shown; a section the daemon does not carry (no trader:
``"trading": {"enabled": false}``) says so instead of showing zeros.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from epochbot.app.daemon.summary import money

__all__ = ["print_status", "render_status"]


def render_status(report: dict, console: Console) -> None:
    head = Table.grid(padding=(0, 2))
    head.add_row(
        "venue",
        str(report.get("venue")),
        "epoch",
        str(report.get("epoch")),
        "mode",
        str(report.get("mode")) + (" (paused)" if report.get("paused") else ""),
        "confidence",
        f"{float(report.get('confidence', 0.0)):.2f}",
    )
    console.print(head)
    if report.get("fatal"):
        console.print(f"[bold red]FATAL: {report['fatal']}[/]")
    reasons = report.get("reasons") or []
    if reasons:
        console.print("reasons: " + "; ".join(reasons))

    books = Table(title="books", title_justify="left")
    for col in ("symbol", "state", "bid", "ask", "last update id", "gaps", "resyncs"):
        books.add_column(col, justify="right" if col not in ("symbol", "state") else "left")
    for symbol, info in sorted((report.get("symbols") or {}).items()):
        bid = info["bids"][0][0] if info.get("bids") else "-"
        ask = info["asks"][0][0] if info.get("asks") else "-"
        books.add_row(
            symbol,
            info.get("state", "?"),
            bid,
            ask,
            str(info.get("last_update_id")),
            str(info.get("gaps")),
            str(info.get("book_resyncs")),
        )
    console.print(books)

    t = report.get("trading") or {}
    if not t.get("enabled"):
        console.print("trading: off (this daemon runs no strategy)")
        return
    q = t.get("quote_asset", "")
    pnl = t.get("pnl", {})
    money_t = Table(title=f"PnL ({q})", title_justify="left")
    kinds = ("net", "session", "daily", "realized", "unrealized", "fees", "funding")
    for kind in kinds:
        money_t.add_column(kind, justify="right")
    money_t.add_row(*(money(pnl.get(k, "0"), 4) for k in kinds))
    console.print(money_t)

    positions = Table(title="positions", title_justify="left")
    for col in ("symbol", "qty", "entry", f"unrealized {q}", f"realized {q}"):
        positions.add_column(col, justify="left" if col == "symbol" else "right")
    for p in t.get("positions", []):
        positions.add_row(
            p["symbol"], p["qty"], p["entry_price"], money(p["unrealized_pnl"], 4), money(p["realized_pnl"], 4)
        )
    console.print(positions if t.get("positions") else "positions: none")

    breakers = Table(title="breakers", title_justify="left")
    for col in ("name", "state", "cause", "until"):
        breakers.add_column(col)
    for b in t.get("breakers", []):
        breakers.add_row(
            b["name"], "[bold red]TRIPPED[/]" if b["tripped"] else "ok", b.get("cause") or "", b.get("until") or ""
        )
    console.print(breakers)

    working = t.get("working_orders", [])
    if working:
        orders = Table(title=f"working orders ({len(working)})", title_justify="left")
        for col in ("id", "symbol", "side", "type", "price", "qty", "filled", "status"):
            orders.add_column(col, justify="right" if col in ("price", "qty", "filled") else "left")
        for o in working:
            orders.add_row(
                o["client_order_id"], o["symbol"], o["side"], o["type"], o["price"], o["qty"], o["filled"], o["status"]
            )
        console.print(orders)
    else:
        console.print("working orders: none")
    outcomes = t.get("orders_by_outcome", {})
    console.print(
        f"fills {t.get('fill_count', 0)} | orders placed {outcomes.get('placed', 0)}, filled "
        f"{outcomes.get('FILLED', 0)}, "
        f"canceled {outcomes.get('CANCELED', 0)}, rejected {outcomes.get('REJECTED', 0)}, expired "
        f"{outcomes.get('EXPIRED', 0)} | "
        f"refused by gates {t.get('refusals', 0)}"
    )
    fills = t.get("recent_fills", [])[:10]
    if fills:
        table = Table(title="recent fills", title_justify="left")
        for col in ("at", "symbol", "side", "qty", "price", "fee", "maker"):
            table.add_column(col, justify="right" if col in ("qty", "price", "fee") else "left")
        for f in fills:
            table.add_row(
                (f.get("at") or "")[11:23],
                f["symbol"],
                f["side"],
                f["qty"],
                f["price"],
                f"{f['fee']} {f.get('fee_asset', '')}",
                "yes" if f.get("maker") else "no",
            )
        console.print(table)


def print_status(report: dict, file=None) -> None:
    out = file or sys.stdout
    console = Console(file=out, width=max(100, Console(file=out).width), highlight=False, soft_wrap=False)
    render_status(report, console)
