"""Types of the optional C accelerator (``core/book/_fastbook.c``); `epochbot.book.book` is the
pure-Python reference for every function here.

Levels are the venue's ``[price, qty]`` decimal strings; units are integers at a symbol's scale;
packed units are bytes of native int64 ``(price, qty)`` pairs. An apply returns
``(tick, bid_top, bid_lost, ask_top, ask_lost)``, or None when a value needs more than 64 bits
(the caller then takes the general path).
"""

from collections.abc import Sequence

from epochbot.model.events import DepthDiff

_Levels = Sequence[Sequence[str]]
_Units = list[tuple[int, int]]
_Applied = tuple[int | None, int | None, bool, int | None, bool]

def levels_to_units(levels: _Levels, price_decimals: int, qty_decimals: int, /) -> _Units: ...
def apply_side(side: dict[int, int], pairs: _Units, is_bid: bool, best: int | None, /) -> tuple[int | None, bool]: ...
def grid_tick(pairs: _Units, tick: int, /) -> int: ...
def apply_levels(
    bids: dict[int, int],
    asks: dict[int, int],
    bid_levels: _Levels,
    ask_levels: _Levels,
    price_decimals: int,
    qty_decimals: int,
    tick: int | None,
    best_bid: int | None,
    best_ask: int | None,
    /,
) -> _Applied | None: ...
def apply_units(
    bids: dict[int, int],
    asks: dict[int, int],
    bid_units: bytes,
    ask_units: bytes,
    tick: int | None,
    best_bid: int | None,
    best_ask: int | None,
    /,
) -> _Applied | None: ...
def decode_depth(
    raw: bytes | str, scales: dict[str, tuple[int, int]], /
) -> tuple[str, int, int, int, int | None, bytes, bytes, tuple[int, int]] | None: ...
def bind_depth_type(cls: type[DepthDiff], names: Sequence[str], /) -> None: ...
def decode_depth_event(
    raw: bytes | str, scales: dict[str, tuple[int, int]], epoch: int, recv_ts: int, /
) -> DepthDiff | None: ...
