"""Driver inputs of a version 2 journal that are not events: the trading setup and the price
history the runtime hands the engine before the loop starts (docs/capture-format.md).

``trading_row``/``history_row`` build the JSON rows from what the runtime used; `build_trader`
and `history_from_row` give a replay the same objects back, so the trader it builds starts in
the state the live one started in (session id, restored fills, risk state, adopted orders).
"""

from __future__ import annotations

from typing import Any

from epochbot.model.capture import decode_value, encode_dataclass, encode_value

__all__ = [
    "build_trader",
    "decode_engine_config",
    "encode_engine_config",
    "history_from_row",
    "history_row",
    "trading_row",
]


def trading_row(
    strategy: str,
    params: dict,
    session: int,
    limits,
    venue_filters: dict,
    market: str,
    mode,
    risk_state: dict | None,
    stored_fills,
    imported_fills,
    open_orders,
    now_ns: int,
    keep_fills: int | None = None,
    adopted=(),
) -> dict:
    from dataclasses import asdict

    return {
        "k": "trading",
        "p": now_ns,
        "strategy": strategy,
        "params": encode_value(dict(params)),
        "session": session,
        "limits": encode_value(asdict(limits)),
        "market": market,
        "mode": mode.value,
        "filters": {s: encode_value(asdict(f)) for s, f in sorted(venue_filters.items())},
        "risk_state": risk_state,
        "stored_fills": [encode_dataclass(f)["f"] for f in stored_fills],
        "imported_fills": [encode_dataclass(f)["f"] for f in imported_fills],
        "open_orders": [encode_dataclass(o)["f"] for o in open_orders],
        "keep_fills": keep_fills,
        "adopted": [asdict(a) for a in adopted],  # venue orders unknown to storage, taken over at start
    }


def history_row(history: dict) -> dict:
    return {
        "k": "history",
        "candles": {s: [encode_dataclass(c)["f"] for c in candles] for s, candles in history.items()},
    }


def history_from_row(row: dict) -> dict:
    from epochbot.model.records import Candle

    return {
        s: [Candle(**{k: decode_value(v) for k, v in c.items()}) for c in cs]
        for s, cs in row.get("candles", {}).items()
    }


def build_trader(row: dict):
    """(trader, commands) as the runtime's ``_start_trading`` left them for this row."""
    from epochbot.model import trade_events as tev
    from epochbot.model.modes import Mode
    from epochbot.trading.filters import SymbolFilters
    from epochbot.trading.orders import OrderTransition
    from epochbot.trading.risk import RiskLimits, RiskState
    from epochbot.trading.strategy import get_strategy
    from epochbot.trading.trader import Trader

    market = row["market"]
    filters = {}
    for symbol, raw in row["filters"].items():
        f = decode_value(raw)
        filters[symbol] = SymbolFilters.from_strings(
            symbol,
            f["tick_size"],
            f["step_size"],
            f.get("min_qty", "0"),
            f.get("max_qty", "0"),
            f["min_notional"],
            market,
        )
    limits = RiskLimits(**decode_value(row["limits"]))
    risk_state = RiskState.from_dict(row["risk_state"]) if row.get("risk_state") else None
    params = decode_value(row["params"])
    trader = Trader(
        get_strategy(row["strategy"], params),
        filters,
        session=row["session"],
        limits=limits,
        risk_state=risk_state,
        mode=Mode(row["mode"]),
    )
    if row.get("keep_fills") is not None:
        trader.keep_fills = row["keep_fills"]
    # The exchangeInfo status of each symbol at start (new orders only while TRADING), as the
    # runtime sets it; later changes arrive as journaled SymbolStatus events.
    status = {s: decode_value(raw).get("status", "TRADING") for s, raw in row["filters"].items()}
    if hasattr(trader, "symbol_status"):
        trader.symbol_status = {s: st for s, st in status.items() if st != "TRADING"}

    def fills(key: str) -> list:
        return [tev.Fill(**{k: decode_value(v) for k, v in f.items()}) for f in row.get(key, [])]

    stored, imported = fills("stored_fills"), fills("imported_fills")
    trader.restore_fills(stored)
    for fill in imported:
        trader.import_fill(fill)
    open_orders = [OrderTransition(**{k: decode_value(v) for k, v in o.items()}) for o in row.get("open_orders", [])]
    commands = trader.orders.adopt_open_orders(open_orders, row["p"])
    if row.get("adopted"):
        from epochbot.trading.adoption import Adoption

        for a in row["adopted"]:
            commands += trader.orders.adopt_venue_order(Adoption(**a), row["p"])
        trader.records.extend(trader.orders.drain_journal())
    for fill in (*stored, *imported):  # as epochbot.runtime.runtime does after the adoptions
        order = trader.orders.orders.get(fill.client_order_id)
        if order is not None and fill.trade_id and fill.trade_id not in order.fill_ids:
            order.fill_ids.add(fill.trade_id)
            order.booked_qty += fill.qty
    return trader, commands


def encode_engine_config(config) -> dict:
    """`epochbot.engine.engine.EngineConfig` -> JSON (for the version 2 header)."""
    from dataclasses import fields

    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "venue":
            out["venue"] = value.value if hasattr(value, "value") else str(value)
        elif f.name == "confidence":
            out["confidence"] = {name: [fc.warn, fc.critical, fc.weight] for name, fc in value.factors.items()}
        elif f.name == "modes":
            out["modes"] = {g.name: getattr(value, g.name) for g in fields(value)}
        else:
            out[f.name] = encode_value(value)
    return out


def decode_engine_config(data: dict, **overrides):
    """The `EngineConfig` a version 2 header describes (unknown keys are ignored, so a journal
    of a newer build still replays with this build's defaults for what it does not know)."""
    from dataclasses import fields

    from epochbot.book.book import VenueRules
    from epochbot.engine.confidence import ConfidenceConfig, FactorConfig
    from epochbot.engine.engine import EngineConfig
    from epochbot.engine.modes import ModeConfig

    known = {f.name for f in fields(EngineConfig)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            continue
        if name == "venue":
            kwargs["venue"] = VenueRules(value)
        elif name == "confidence":
            kwargs["confidence"] = ConfidenceConfig({k: FactorConfig(*v) for k, v in value.items()})
        elif name == "modes":
            mode_known = {f.name for f in fields(ModeConfig)}
            kwargs["modes"] = ModeConfig(**{k: v for k, v in value.items() if k in mode_known})
        else:
            kwargs[name] = decode_value(value)
    kwargs.update(overrides)
    return EngineConfig(**kwargs)
