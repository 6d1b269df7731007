"""How each simulated symbol's market behaves, calibrated to real Binance data (issue 19).

A `MarketProfile` describes a market in units that carry across prices: basis points of the
price for moves, spreads and depth, quote-asset notional for sizes, and counts per second for
activity. `SymbolMarket` (``epochbot.sim.market``) turns it into ticks and lots for the symbol's
own grids, so one profile reads the same on spot (BTCUSDT tick 0.01) and USD-M (tick 0.10).

Where the numbers come from (``bench/sim_calibration.py`` measures both sides; README,
Measurements, has the table):

* BTCUSDT and ETHUSDT, spot: the real 346 s capture ``binance-spot-2024-08-08.jsonl.gz``
  (trade rate and sizes, touch size, depth profile, diff sizes) and, for volatility, the real
  USD-M figures of issue 19 (median |mid move| 1.8-1.9 bp over 10 s, 6.4-7.1 bp over 60 s;
  the spot capture agrees: 1.8 and 7.4 bp).
* BTCUSDT and ETHUSDT, USD-M: the same volatility; a one-tick touch; trade prints towards the
  issue's 62/s (@trade) figure; the book deeper and denser than spot's (USD-M trades several
  times spot's volume). No USD-M capture is at hand, so the depth numbers are an estimate.
* NKNUSDT (the thin alt): the real 30 s capture ``binance-spot-2021-10-12.jsonl`` (a 4-5 tick
  touch at 2.8 bp a tick, a trade every few seconds at most, one or two levels per diff, a
  sparse book).
* Any other symbol: `generic_profile`, a mid-cap alt, the same in bp and notional whatever its
  price (``default_spec`` seeds a price and a tick for it).

The price process (``epochbot.sim.market.PricePath``): the mid moves in jumps (a taker sweeps
the touch, or makers pull it, and the book re-quotes around the new price) arriving at
``jump_rate_per_s`` times an *activity* level that wanders (log-normal, mean 1, ``activity_sd``,
relaxing over ``activity_tau_s``), so the market has quiet and busy stretches, and the trade rate
and quote churn follow the same activity. ``revert_share`` of a jump's variance is an overshoot
that reverts over ``revert_tau_s``, and trend legs (``drift_bp_per_s`` for about ``drift_tau_s``,
each in a random direction) give the 60 s moves their real size relative to the 10 s ones: a
random walk would make them sqrt(6) times the 10 s move, Binance's are 3.5-4 times, and its 60 s
moves are more regular than a random walk's (p90/p50 1.6 in the 2024 capture, 2.4 for a normal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MarketProfile", "generic_profile", "profile_for"]


@dataclass(frozen=True)
class MarketProfile:
    """A symbol's market in price-free units (bp of the price, quote notional, per second)."""

    # price: jumps at a rate that follows activity, plus a slowly varying drift
    jump_rate_per_s: float
    jump_bp: float  # standard deviation of one jump
    revert_share: float  # the share of a jump's variance that reverts (an overshoot)
    revert_tau_s: float  # how fast an overshoot reverts
    drift_bp_per_s: float  # speed of a trend leg (0.8x-1.2x)
    drift_tau_s: float  # length of a trend leg (0.5x-1.5x)
    activity_sd: float  # sd of log activity
    activity_tau_s: float
    # the touch
    min_spread_bp: float  # makers keep at least this spread (and at least one tick)
    wide_spread_p: float  # a re-quoted touch is wider than the minimum this often
    improve_p: float  # per 100 ms, the chance a maker closes a spread wider than the minimum
    touch_notional: float  # median size of a level at the touch
    # trades: taker orders (each price level it takes is one aggTrade print)
    takers_per_s: float
    taker_notional: float  # median size
    taker_sigma: float  # log sd (prints are heavy-tailed: many small, a few large)
    # depth
    near_bp: float  # the near book (dense, larger levels) reaches this far from the touch
    levels_per_bp_near: float
    levels_per_bp_far: float
    level_notional_near: float  # median level size
    level_notional_far: float
    # quote churn: level edits per second (diff sizes)
    quotes_per_s: float
    quote_mean_bp: float  # mean distance of an edit from the touch
    ladder_p: float = 0.0  # per 100 ms, the chance a maker re-sizes a run of levels at once
    sweep_trade_p: float = 1.0  # the chance a jump is a taker's sweep (else makers just pull)
    ladder_levels: tuple[int, int] = (20, 90)  # how many


BTC_VOL: dict[str, Any] = {
    "jump_rate_per_s": 0.6,
    "jump_bp": 1.3,
    "revert_share": 0.9,
    "revert_tau_s": 10.0,
    "drift_bp_per_s": 0.11,
    "drift_tau_s": 150.0,
    "activity_sd": 0.65,
    "activity_tau_s": 40.0,
}
ETH_VOL: dict[str, Any] = {**BTC_VOL, "jump_bp": 1.6, "drift_bp_per_s": 0.10}

_PROFILES: dict[tuple[str, str], MarketProfile] = {
    ("spot", "BTCUSDT"): MarketProfile(
        **BTC_VOL,
        min_spread_bp=0.0,
        wide_spread_p=0.12,
        improve_p=0.6,
        touch_notional=60_000,
        takers_per_s=26.0,
        taker_notional=40.0,
        taker_sigma=3.0,
        near_bp=10.0,
        levels_per_bp_near=22.0,
        levels_per_bp_far=30.0,
        level_notional_near=5_500,
        level_notional_far=2_200,
        quotes_per_s=130.0,
        quote_mean_bp=3.0,
        ladder_p=0.15,
    ),
    ("usdm", "BTCUSDT"): MarketProfile(
        **BTC_VOL,
        min_spread_bp=0.0,
        wide_spread_p=0.08,
        improve_p=0.7,
        touch_notional=200_000,
        takers_per_s=45.0,
        taker_notional=300.0,
        taker_sigma=1.9,
        near_bp=10.0,
        levels_per_bp_near=40.0,
        levels_per_bp_far=30.0,
        level_notional_near=15_000,
        level_notional_far=8_000,
        quotes_per_s=150.0,
        quote_mean_bp=3.0,
        ladder_p=0.15,
    ),
    ("spot", "ETHUSDT"): MarketProfile(
        **ETH_VOL,
        min_spread_bp=0.0,
        wide_spread_p=0.05,
        improve_p=0.7,
        touch_notional=16_000,
        takers_per_s=13.0,
        taker_notional=25.0,
        taker_sigma=3.0,
        near_bp=10.0,
        levels_per_bp_near=12.7,
        levels_per_bp_far=10.0,
        level_notional_near=6_000,
        level_notional_far=3_500,
        quotes_per_s=110.0,
        quote_mean_bp=3.0,
        ladder_p=0.15,
    ),
    ("usdm", "ETHUSDT"): MarketProfile(
        **ETH_VOL,
        min_spread_bp=0.0,
        wide_spread_p=0.05,
        improve_p=0.7,
        touch_notional=60_000,
        takers_per_s=30.0,
        taker_notional=200.0,
        taker_sigma=1.9,
        near_bp=10.0,
        levels_per_bp_near=15.0,
        levels_per_bp_far=12.0,
        level_notional_near=9_000,
        level_notional_far=5_000,
        quotes_per_s=130.0,
        quote_mean_bp=3.0,
        ladder_p=0.15,
    ),
    ("spot", "NKNUSDT"): MarketProfile(
        jump_rate_per_s=0.25,
        jump_bp=7.0,
        revert_share=0.5,
        revert_tau_s=15.0,
        drift_bp_per_s=0.0,
        drift_tau_s=150.0,
        activity_sd=0.6,
        activity_tau_s=30.0,
        min_spread_bp=10.0,
        wide_spread_p=0.4,
        improve_p=0.15,
        touch_notional=800,
        takers_per_s=0.05,
        taker_notional=20.0,
        taker_sigma=1.5,
        near_bp=100.0,
        levels_per_bp_near=0.3,
        levels_per_bp_far=0.3,
        level_notional_near=1_000,
        level_notional_far=500,
        quotes_per_s=18.0,
        quote_mean_bp=40.0,
        sweep_trade_p=0.15,
    ),
    ("usdm", "NKNUSDT"): MarketProfile(
        jump_rate_per_s=0.3,
        jump_bp=6.0,
        revert_share=0.5,
        revert_tau_s=15.0,
        drift_bp_per_s=0.0,
        drift_tau_s=150.0,
        activity_sd=0.6,
        activity_tau_s=30.0,
        min_spread_bp=4.0,
        wide_spread_p=0.4,
        improve_p=0.2,
        touch_notional=3_000,
        takers_per_s=1.0,
        taker_notional=40.0,
        taker_sigma=1.5,
        near_bp=50.0,
        levels_per_bp_near=1.5,
        levels_per_bp_far=1.0,
        level_notional_near=1_500,
        level_notional_far=800,
        quotes_per_s=30.0,
        quote_mean_bp=20.0,
        sweep_trade_p=0.3,
    ),
}


def generic_profile(market: str) -> MarketProfile:
    """A mid-cap alt: about BTC's activity scaled down, in bp and notional whatever the price."""
    usdm = market == "usdm"
    return MarketProfile(
        jump_rate_per_s=0.6,
        jump_bp=1.8,
        revert_share=0.5,
        revert_tau_s=15.0,
        drift_bp_per_s=0.08,
        drift_tau_s=150.0,
        activity_sd=0.5,
        activity_tau_s=25.0,
        min_spread_bp=0.5,
        wide_spread_p=0.15,
        improve_p=0.5,
        touch_notional=8_000 if usdm else 4_000,
        takers_per_s=6.0 if usdm else 3.0,
        taker_notional=100.0 if usdm else 50.0,
        taker_sigma=1.8,
        near_bp=20.0,
        levels_per_bp_near=5.0,
        levels_per_bp_far=3.0,
        level_notional_near=2_000 if usdm else 1_000,
        level_notional_far=1_000 if usdm else 500,
        quotes_per_s=50.0,
        quote_mean_bp=5.0,
    )


def profile_for(market: str, symbol: str) -> MarketProfile:
    """The calibrated profile of a known symbol, else the generic one."""
    return _PROFILES.get((market, symbol.upper())) or generic_profile(market)
