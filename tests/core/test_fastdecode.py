"""epochbot.book._fastbook.decode_depth (depthUpdate frames straight to integer units) against orjson.

* parity: random valid frames (spot and USD-M, wrapped and bare, any key order, any JSON
  whitespace, 0-40 levels, deletions, padded decimals) give the same DepthDiff fields, and a book
  fed the C units ends exactly like a book fed the orjson strings (outcomes, levels, best prices,
  tick, update id), including levels finer than the scale (C declines, the book reports BAD_LEVEL);
* anything unusual (truncation, escapes, exponents, floats, junk, wrong types, missing and
  duplicate keys, overflow, unknown symbol) makes the C decoder return None and decode_frame
  behave exactly as without scales; on arbitrary mutations of valid frames, whatever C accepts
  orjson parses to the same values;
* unit levels at a scale other than the book's codec are never applied as units: they go back
  to exact strings (mismatched codec, inferred codec, C path off);
* a replay of the real capture with exchangeInfo rows gives the same state hash with the C
  decoder on and off.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochbot.book.book as book_mod
from epochbot.book.book import BookState, OrderBook, VenueRules, unit_levels_as_strings
from epochbot.model import events as ev
from epochbot.model.numeric import UnitCodec, parse_units
from epochbot.venues.binance import wire
from epochbot.venues.binance.wire import FrameError, decode_frame

fb = pytest.importorskip("epochbot.book._fastbook")
decode_depth = fb.decode_depth

WS = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  ", "  "])


# ----------------------------------------------------------------------------- frame builder


def fmt(units: int, decimals: int, extra_zeros: int = 0, junk_digit: int = 0) -> str:
    """units at `decimals`, printed with `extra_zeros` more fractional zeros (or a non-zero
    digit beyond the scale when junk_digit)."""
    if decimals == 0:
        s = str(units)
        frac = ""
    else:
        digits = str(units).rjust(decimals + 1, "0")
        s, frac = digits[:-decimals], digits[-decimals:]
    frac += "0" * extra_zeros
    if junk_digit:
        frac += str(junk_digit)
    return f"{s}.{frac}" if frac else s


def render(pairs, w) -> str:
    """JSON object text from (key, json_text) pairs with whitespace drawn from w()."""
    parts = [f'{w()}"{k}"{w()}:{w()}{v}{w()}' for k, v in pairs]
    return "{" + ",".join(parts) + w() + "}" if parts else "{" + w() + "}"


def levels_text(levels, w) -> str:
    if not levels:
        return "[" + w() + "]"
    return "[" + ",".join(f'{w()}[{w()}"{p}"{w()},{w()}"{q}"{w()}]{w()}' for p, q in levels) + "]"


@st.composite
def level_strings(draw, pd: int, qd: int, n_max: int = 40, junk: bool = False):
    n = draw(st.integers(0, n_max))
    out = []
    for _ in range(n):
        p = draw(st.integers(1, 10 ** min(pd + 6, 17)))
        q = 0 if draw(st.integers(0, 3)) == 0 else draw(st.integers(1, 10 ** min(qd + 5, 17)))
        pz = draw(st.integers(0, 3))
        qz = draw(st.integers(0, 3))
        bad = junk and draw(st.integers(0, 30)) == 0
        out.append((fmt(p, pd, pz, draw(st.integers(1, 9)) if bad else 0), fmt(q, qd, qz)))
    return out


@st.composite
def depth_frames(draw, symbol: str, pd: int, qd: int, U: int, u: int, pu: int | None, usdm: bool, junk: bool = False):
    w = lambda: draw(WS)  # noqa: E731
    bids = draw(level_strings(pd, qd, junk=junk))
    asks = draw(level_strings(pd, qd, junk=junk))
    fields = [
        ("e", '"depthUpdate"'),
        ("E", str(draw(st.integers(0, 2**62)))),
        ("s", f'"{symbol}"'),
        ("U", str(U)),
        ("u", str(u)),
        ("b", levels_text(bids, w)),
        ("a", levels_text(asks, w)),
    ]
    if usdm:
        fields.append(("T", str(draw(st.integers(0, 2**62)))))
        fields.append(("pu", "null" if pu is None else str(pu)))
    order = draw(st.permutations(fields))
    body = render(order, w)
    if draw(st.booleans()):
        wrapper = [("stream", f'"{symbol.lower()}@depth@100ms"'), ("data", body)]
        if draw(st.booleans()):
            wrapper.reverse()
        body = render(wrapper, w)
    text = w() + body + w()
    return (text.encode() if draw(st.booleans()) else text), bids, asks


def book_at(pd: int, qd: int, rules: VenueRules, tick: int | None = None) -> OrderBook:
    book = OrderBook("BTCUSDT", rules, codec=UnitCodec(pd, qd), tick=tick)
    book.on_diff(ev.DepthDiff(1, "BTCUSDT", 1, 1, None, [], [], 0, 0))
    assert book.on_snapshot(100, [], []).value == "synced"
    return book


def book_view(book: OrderBook):
    return (
        book.state,
        dict(book.bids),
        dict(book.asks),
        book.best_bid,
        book.best_ask,
        book.tick,
        book.last_update_id,
        book.check_invariants(),
    )


def same_diff(a: ev.DepthDiff, b: ev.DepthDiff) -> None:
    assert (a.epoch, a.symbol, a.first_id, a.final_id, a.prev_final_id, a.exchange_ts, a.recv_ts) == (
        b.epoch,
        b.symbol,
        b.first_id,
        b.final_id,
        b.prev_final_id,
        b.exchange_ts,
        b.recv_ts,
    )


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("rules", [VenueRules.SPOT, VenueRules.USDM])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_c_units_and_orjson_strings_leave_identical_books(rules, data):
    usdm = rules is VenueRules.USDM
    pd = data.draw(st.integers(0, 8), label="pd")
    qd = data.draw(st.integers(0, 8), label="qd")
    junk = data.draw(st.booleans(), label="junk")
    tick = data.draw(st.sampled_from([None, 1, 10]), label="tick")
    scales = {"BTCUSDT": (pd, qd)}
    fast_book, slow_book = book_at(pd, qd, rules, tick), book_at(pd, qd, rules, tick)
    fast_book.tick = slow_book.tick = tick or 1
    last = 100
    for _ in range(data.draw(st.integers(1, 8), label="frames")):
        U = last + 1
        u = U + data.draw(st.integers(0, 3))
        raw, bids, asks = data.draw(depth_frames("BTCUSDT", pd, qd, U, u, last if usdm else None, usdm, junk))
        fast = decode_frame(raw, 1, 7, scales)
        slow = decode_frame(raw, 1, 7)
        same_diff(fast, slow)
        assert slow.scale is None and (slow.bids, slow.asks) == (
            [list(level) for level in bids],
            [list(level) for level in asks],
        )
        clean = not any(parse_fails(p, pd) for p, _ in bids + asks)
        assert (fast.scale == (pd, qd)) == clean, "C declined a clean frame or accepted a bad one"
        if clean:
            want = [(parse_units(p, pd), parse_units(q, qd)) for p, q in bids]
            assert list(struct.iter_unpack("=qq", fast.bids)) == want
        assert fast_book.on_diff(fast) == slow_book.on_diff(slow)
        assert book_view(fast_book) == book_view(slow_book)
        if fast_book.state is not BookState.SYNCED:
            break
        last = u


def parse_fails(text: str, decimals: int) -> bool:
    try:
        parse_units(text, decimals)
    except ValueError:
        return True
    return False


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_decode_depth_fields_equal_orjson(data):
    pd = data.draw(st.integers(0, 8))
    qd = data.draw(st.integers(0, 8))
    usdm = data.draw(st.booleans())
    U = data.draw(st.integers(0, 2**63 - 1))
    u = data.draw(st.integers(U, 2**63 - 1))
    pu = data.draw(st.one_of(st.none(), st.integers(0, 2**63 - 1))) if usdm else None
    raw, bids, asks = data.draw(depth_frames("ETHUSDT", pd, qd, U, u, pu, usdm))
    got = decode_depth(raw, {"ETHUSDT": (pd, qd)})
    msg = orjson.loads(raw)
    msg = msg.get("data", msg)
    assert got is not None
    sym, E, gU, gu, gpu, gb, ga, scale = got
    assert (sym, E, gU, gu, gpu, scale) == (msg["s"], msg["E"], msg["U"], msg["u"], msg.get("pu"), (pd, qd))
    for side, units in (("b", gb), ("a", ga)):
        assert list(struct.iter_unpack("=qq", units)) == [
            (parse_units(p, pd), parse_units(q, qd)) for p, q in msg[side]
        ]


# ----------------------------------------------------------------------------- malformed

GOOD = (
    '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700,"T":1699,"s":"BTCUSDT","U":10,"u":12,"pu":9,'
    '"b":[["27123.40","1.000"]],"a":[["27123.50","0.000"]]}}'
)
SCALES = {"BTCUSDT": (2, 3)}

MALFORMED = [
    GOOD[:-1],  # truncated
    GOOD[:60],
    GOOD + "x",  # trailing junk
    GOOD + "{}",
    GOOD.replace('"BTCUSDT"', '"BTC\\u0055SDT"'),  # escaped string
    GOOD.replace('"27123.40"', '"27123.4\\u0030"'),
    GOOD.replace('"depthUpdate"', '"depth\\u0055pdate"'),
    GOOD.replace('"27123.40"', '"2.712340e4"'),  # exponent
    GOOD.replace('"27123.40"', "27123.40"),  # number, not a string
    GOOD.replace('"1.000"', "1"),
    GOOD.replace('"27123.40"', '"-27123.40"'),  # sign
    GOOD.replace('"27123.40"', '"+27123.40"'),
    GOOD.replace('"27123.40"', '".5"'),
    GOOD.replace('"27123.40"', '"27123.401"'),  # finer than the scale
    GOOD.replace('"27123.40"', '"27 123.40"'),
    GOOD.replace('"27123.40"', '""'),
    GOOD.replace('"27123.40"', '"99999999999999999999.00"'),  # beyond 64 bits
    GOOD.replace('"E":1700', '"E":1.7e3'),  # float where an int is expected
    GOOD.replace('"E":1700', '"E":"1700"'),  # wrong type
    GOOD.replace('"U":10', '"U":10.0'),
    GOOD.replace('"U":10', '"U":-10'),
    GOOD.replace('"U":10', '"U":010'),  # leading zero: not JSON
    GOOD.replace('"U":10', '"U":99999999999999999999'),  # overflow
    GOOD.replace('"U":10', '"U":13'),  # U > u
    GOOD.replace('"pu":9', '"pu":"9"'),
    GOOD.replace('"pu":9', '"pu":true'),
    GOOD.replace('"U":10,', ""),  # missing key
    GOOD.replace('"s":"BTCUSDT",', ""),
    GOOD.replace('"b":[["27123.40","1.000"]],', ""),
    GOOD.replace('"U":10', '"U":10,"U":10'),  # duplicate keys
    GOOD.replace('"s":"BTCUSDT"', '"s":"BTCUSDT","s":"ETHUSDT"'),
    GOOD.replace('"data":{', '"data":{"a":[],'),
    GOOD.replace('"stream":"btcusdt@depth@100ms",', '"stream":"x","stream":"y",'),
    GOOD.replace('"b":[["27123.40","1.000"]]', '"b":[["27123.40","1.000","2"]]'),  # 3-item level
    GOOD.replace('"b":[["27123.40","1.000"]]', '"b":[["27123.40"]]'),
    GOOD.replace('"b":[["27123.40","1.000"]]', '"b":[["27123.40","1.000"],]'),  # trailing comma
    GOOD.replace('"b":[["27123.40","1.000"]]', '"b":{"27123.40":"1.000"}'),
    GOOD.replace('"b":[["27123.40","1.000"]]', '"b":null'),
    GOOD.replace('"T":1699', '"T":{"x":1}'),  # unknown-ish field of a non-trivial type
    GOOD.replace('"T":1699', '"X":[1,2]'),
    GOOD.replace('"T":1699', '"X":1.5'),
    GOOD.replace('"e":"depthUpdate"', '"e":"aggTrade"'),
    GOOD.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"'),  # no scale for the symbol
    GOOD.replace('"s":"BTCUSDT"', '"s":7'),
    GOOD.replace('"stream":', '"extra":1,"stream":'),  # unknown wrapper key
    GOOD.replace('"data":{', '"data":[{').replace("}}", "}]}"),
    GOOD.replace(",", ",\x00", 1),  # control character
    GOOD.replace('"btcusdt@depth@100ms"', '"btcusdt\x01"'),
    GOOD.replace('"btcusdt@depth@100ms"', '"btcusdt\u00e9"'),  # non-ASCII
    "",
    "   ",
    "null",
    "[]",
    "{}",
    '{"result":null,"id":1}',
    "not json",
]


def outcome(raw, scales):
    try:
        e = decode_frame(raw, 1, 5, scales)
    except FrameError as exc:
        return ("FrameError", str(exc))
    if type(e) is not ev.DepthDiff:
        return ("other", e)
    return ("diff", e.symbol, e.first_id, e.final_id, e.prev_final_id, e.exchange_ts, e.bids, e.asks, e.scale)


def test_good_frame_is_decoded_by_c():
    assert decode_depth(GOOD, SCALES) is not None
    assert decode_depth(GOOD.encode(), SCALES) is not None
    assert decode_frame(GOOD, 1, 0, SCALES).scale == (2, 3)


@pytest.mark.parametrize("raw", MALFORMED)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_unusual_frames_fall_back_to_orjson_unchanged(raw, as_bytes):
    if as_bytes:
        raw = raw.encode()
    assert decode_depth(raw, SCALES) is None
    assert fb.decode_depth_event(raw, SCALES, 1, 5) is None
    assert outcome(raw, SCALES) == outcome(raw, None)


def test_non_text_and_bad_scales_are_declined():
    assert decode_depth(memoryview(GOOD.encode()), SCALES) is None
    assert decode_depth(GOOD, {"BTCUSDT": (2,)}) is None
    assert decode_depth(GOOD, {"BTCUSDT": (-1, 3)}) is None
    assert decode_depth(GOOD, {"BTCUSDT": ("2", 3)}) is None
    assert decode_depth(GOOD, {"BTCUSDT": (40, 3)}) is None
    assert decode_depth(GOOD, {"BTCUSDT": (17, 3)}) is None  # 27123.40 at 17 decimals overflows
    assert decode_depth(GOOD, None) is None


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_whatever_c_accepts_orjson_parses_to_the_same_values(data):
    raw = GOOD.encode()
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(raw)))
        op = data.draw(st.sampled_from(["cut", "insert", "replace", "delete"]))
        b = bytes([data.draw(st.sampled_from(b'0123456789.,:[]{}" e-+\\nulx\x00\xff'))])
        raw = {
            "cut": raw[:i],
            "insert": raw[:i] + b + raw[i:],
            "replace": raw[:i] + b + raw[i + 1 :],
            "delete": raw[:i] + raw[i + 1 :],
        }[op]
    got = decode_depth(raw, SCALES)
    slow = outcome(raw, None)
    assert (fb.decode_depth_event(raw, SCALES, 1, 5) is None) == (got is None)
    if got is None:
        assert outcome(raw, SCALES) == slow
        return
    msg = orjson.loads(raw)  # C accepted: orjson must too, with the same meaning
    msg = msg.get("data", msg)
    sym, E, U, u, pu, gb, ga, scale = got
    assert (sym, E, U, u, pu) == (msg["s"], msg["E"], msg["U"], msg["u"], msg.get("pu"))
    for side, units in (("b", gb), ("a", ga)):
        assert list(struct.iter_unpack("=qq", units)) == [(parse_units(p, 2), parse_units(q, 3)) for p, q in msg[side]]


# ----------------------------------------------------------------------------- scale mismatch


def unit_diff(first, final, bids, asks, scale, pu=None):
    pack = lambda levels: b"".join(struct.pack("=qq", p, q) for p, q in levels)  # noqa: E731
    return ev.DepthDiff(1, "BTCUSDT", first, final, pu, pack(bids), pack(asks), 0, 0, scale)


def string_diff(first, final, bids, asks, scale, pu=None):
    return ev.DepthDiff(
        1,
        "BTCUSDT",
        first,
        final,
        pu,
        unit_levels_as_strings(unit_diff(0, 0, bids, [], scale).bids, scale),
        unit_levels_as_strings(unit_diff(0, 0, asks, [], scale).bids, scale),
        0,
        0,
    )


@pytest.mark.parametrize("book_scale", [(1, 3), (3, 3), (2, 2), (2, 4), (0, 0)])
@pytest.mark.parametrize("use_c", [True, False])
def test_units_at_another_scale_are_applied_as_their_exact_strings(book_scale, use_c, monkeypatch):
    monkeypatch.setattr(book_mod, "USE_FASTBOOK", use_c)
    calls = []
    real = fb.apply_units
    monkeypatch.setattr(fb, "apply_units", lambda *a: calls.append(a) or real(*a))
    scale = (2, 3)
    bids = [(2712340, 1000), (2712300, 0), (2712000, 1500)]  # 27123.40, 27123.00 (delete), 27120.00
    asks = [(2712350, 2000), (2712500, 0)]
    a, b = book_at(*book_scale, VenueRules.SPOT), book_at(*book_scale, VenueRules.SPOT)
    assert a.on_diff(unit_diff(101, 101, bids, asks, scale)) == b.on_diff(string_diff(101, 101, bids, asks, scale))
    assert book_view(a) == book_view(b)
    assert calls == [], "units at another scale reached apply_units"


def test_units_at_the_book_scale_use_apply_units(monkeypatch):
    calls = []
    real = fb.apply_units
    monkeypatch.setattr(fb, "apply_units", lambda *a: calls.append(a) or real(*a))
    a, b = book_at(2, 3, VenueRules.SPOT), book_at(2, 3, VenueRules.SPOT)
    bids, asks = [(2712340, 1000)], [(2712350, 2000)]
    assert a.on_diff(unit_diff(101, 101, bids, asks, (2, 3))) == b.on_diff(string_diff(101, 101, bids, asks, (2, 3)))
    assert book_view(a) == book_view(b) and len(calls) == 1


def test_buffered_unit_diffs_bridge_a_snapshot_and_infer_a_codec():
    scale = (2, 3)
    bids, asks = [(2712340, 1000)], [(2712350, 2000), (2712360, 0)]
    a = OrderBook("BTCUSDT", VenueRules.SPOT)  # no codec: inferred from snapshot + buffer
    b = OrderBook("BTCUSDT", VenueRules.SPOT)
    for book, make in ((a, unit_diff), (b, string_diff)):
        book.on_diff(make(100, 101, bids, asks, scale))
        book.on_diff(make(102, 102, [(2712340, 0)], [(2712330, 5)], scale))
        assert book.on_snapshot(100, [["27123.10", "1.000"]], []).value == "synced"
    assert book_view(a) == book_view(b)
    assert (a.codec.price_decimals, a.codec.qty_decimals) == (2, 3)


def test_tick_beyond_64_bits_takes_the_general_path():
    a, b = book_at(2, 3, VenueRules.SPOT), book_at(2, 3, VenueRules.SPOT)
    a.tick = b.tick = 10**30
    bids, asks = [(2712340, 1000)], [(2712350, 2000)]
    a.on_diff(unit_diff(101, 101, bids, asks, (2, 3)))
    b.on_diff(string_diff(101, 101, bids, asks, (2, 3)))
    assert book_view(a) == book_view(b)


def test_c_built_depth_diff_equals_the_python_built_one(monkeypatch):
    assert wire._decode_depth_event is not None, "C no longer builds DepthDiff (DepthDiff changed?)"
    got = decode_frame(GOOD, 3, 99, SCALES)
    monkeypatch.setattr(wire, "_decode_depth_event", None)
    want = decode_frame(GOOD, 3, 99, SCALES)
    assert type(got) is type(want) is ev.DepthDiff and got == want and got.scale == (2, 3)
    got.recv_ts = 5  # the transport stamps it afterwards
    assert got.recv_ts == 5 and got.process_ts == 0


def test_fast_decode_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(wire, "USE_FASTDECODE", False)
    assert decode_frame(GOOD, 1, 0, SCALES).scale is None


# ----------------------------------------------------------------------------- replay


CAPTURE = Path(__file__).resolve().parents[2].parent / "shared" / "captures" / "binance-spot-2021-10-12.jsonl"


@pytest.mark.skipif(not CAPTURE.exists(), reason="real capture not present")
def test_replay_with_exchange_info_same_hash_with_c_decoder_on_and_off(monkeypatch):
    from epochbot.offline.replay import replay_stream

    plain = replay_stream(io.BytesIO(CAPTURE.read_bytes()))
    codecs = {s: st.book.codec for s, st in plain.engine.symbols.items() if st.book.codec is not None}
    assert codecs
    info = {
        "symbols": [
            {
                "symbol": s,
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": fmt(1, c.price_decimals)},
                    {"filterType": "LOT_SIZE", "stepSize": fmt(1, c.qty_decimals)},
                ],
            }
            for s, c in codecs.items()
        ]
    }
    lines = CAPTURE.read_bytes().splitlines(keepends=True)
    ts = orjson.loads(lines[1])["ts"]
    row = (
        orjson.dumps(
            {
                "ts": ts,
                "kind": "rest",
                "url": "https://api.binance.com/api/v3/exchangeInfo",
                "data": orjson.dumps(info).decode(),
            }
        )
        + b"\n"
    )
    patched = b"".join([lines[0], row, *lines[1:]])
    used = []
    real = wire._decode_depth_event
    monkeypatch.setattr(
        wire, "_decode_depth_event", lambda *args: (lambda r: used.append(r is not None) or r)(real(*args))
    )
    fast = replay_stream(io.BytesIO(patched))
    depth_rows = patched.count(b"depthUpdate")
    assert sum(used) == depth_rows > 100, "the C decoder did not take every depth frame"
    monkeypatch.setattr(wire, "USE_FASTDECODE", False)
    slow = replay_stream(io.BytesIO(patched))
    for r in (fast, slow):
        assert not r.malformed or r.malformed == plain.malformed
    assert fast.report()["symbols"] == slow.report()["symbols"]
    assert fast.engine.state_hash() == slow.engine.state_hash()
    # Same books as without exchangeInfo at all (the scales are the inferred ones).
    for s in codecs:
        pa, fa = plain.engine.book(s), fast.engine.book(s)
        assert (pa.bids, pa.asks, pa.last_update_id, pa.state) == (fa.bids, fa.asks, fa.last_update_id, fa.state)
