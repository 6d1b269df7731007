"""Trading: strategy API, order lifecycle, pre-trade gates, positions/PnL, bars and backtest.

Everything here is sans-I/O and clock-free: time comes from event timestamps or an explicit
``now_ns`` argument, money is exact (integers, `Decimal`, or `Fraction` where an average price
makes a rational unavoidable), and every component is driven by the single strategy loop.

Units: prices are integer *price units* and quantities integer *lots* of a symbol's
`epochbot.model.numeric.UnitCodec` scale (``price_units / 10**price_decimals`` is the price);
`SymbolFilters` carries that scale together with Binance's trading filters.
"""
