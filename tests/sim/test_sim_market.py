"""The seeded market generator: deterministic, uncrossed, deep, on the grids, Binance id rules."""

from epochbot.sim.market import SymbolMarket, default_spec, fixed


def _run(market, symbol, seed, n):
    m = SymbolMarket(default_spec(market, symbol, seed), seed)
    return m, [m.next_depth_event(1_000 + i) for i in range(n)]


def test_same_seed_gives_the_same_stream():
    _, a = _run("usdm", "BTCUSDT", 7, 500)
    _, b = _run("usdm", "BTCUSDT", 7, 500)
    assert [(e.first_id, e.last_id, e.bids, e.asks) for e in a] == [(e.first_id, e.last_id, e.bids, e.asks) for e in b]


def test_different_seeds_or_symbols_differ():
    _, a = _run("usdm", "BTCUSDT", 7, 50)
    _, b = _run("usdm", "BTCUSDT", 8, 50)
    _, c = _run("usdm", "ETHUSDT", 7, 50)
    assert [e.bids for e in a] != [e.bids for e in b]
    assert [e.bids for e in a] != [e.bids for e in c]


def test_book_stays_uncrossed_deep_and_on_grid():
    for market in ("usdm", "spot"):
        for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            m, _ = _run(market, sym, 3, 3000)
            m.check_invariants()


def test_update_ids_chain_like_binance():
    m, evs = _run("usdm", "ETHUSDT", 7, 300)
    for prev, ev in zip(evs, evs[1:], strict=False):
        assert ev.first_id == prev.last_id + 1
        assert ev.prev_id == prev.last_id
        assert ev.first_id <= ev.last_id
    assert m.update_id == evs[-1].last_id


def test_gap_skips_ids_but_changes_the_book():
    m = SymbolMarket(default_spec("usdm", "BTCUSDT", 7), 7)
    a = m.next_depth_event(1)
    b = m.next_depth_event(2, skip=3)
    assert b.first_id == a.last_id + 4
    assert b.prev_id == a.last_id + 3


def test_applying_every_diff_to_a_snapshot_reproduces_the_book():
    m = SymbolMarket(default_spec("spot", "BTCUSDT", 7), 7)
    last, bids, asks = m.snapshot(100000)
    book_b, book_a = dict(bids), dict(asks)
    for i in range(500):
        ev = m.next_depth_event(i)
        for side, changes in ((book_b, ev.bids), (book_a, ev.asks)):
            for p, q in changes.items():
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)
    assert book_b == m.bid_levels and book_a == m.ask_levels


def test_default_filters_match_the_brief():
    u = default_spec("usdm", "BTCUSDT", 7)
    s = default_spec("spot", "BTCUSDT", 7)
    assert (u.tick_size, u.step_size) == ("0.10", "0.001")
    assert (s.tick_size, s.step_size) == ("0.01000000", "0.00001000")
    assert default_spec("usdm", "ETHUSDT", 7).tick_size == "0.01"
    assert default_spec("spot", "ETHUSDT", 7).step_size == "0.00010000"
    assert fixed(0, 3) == "0.000" and fixed(2712340, 2) == "27123.40"


def test_market_implements_bookview():
    m = SymbolMarket(default_spec("usdm", "BTCUSDT", 7), 7)
    bids, asks = list(m.bids()), list(m.asks())
    assert bids[0][0] == m.best_bid and asks[0][0] == m.best_ask
    assert bids[0][0] > bids[1][0] and asks[0][0] < asks[1][0]
    assert m.best_bid < m.mark_price() < m.best_ask or m.mark_price() in (m.best_bid, m.best_ask)


def test_other_symbols_get_a_generic_profile_scaled_by_price():
    from epochbot.sim.calibration import direct_recordings, stats

    for market in ("usdm", "spot"):
        recs = direct_recordings(market, ["SOLUSDT", "DOGEUSDT"], 3.0)
        for symbol, rec in recs.items():
            s = stats(rec)
            # A mid-cap alt: the same moves in bp, a touch of a few bp at most, trades every second.
            assert 0.5 <= s["move_10s_p50"] <= 8.0 and 1.0 <= s["move_60s_p50"] <= 25.0, (market, symbol, s)
            assert s["spread_bp_p50"] <= 3.0, (market, symbol, s)
            assert 0.5 <= s["trades_per_s"] <= 30.0, (market, symbol, s)
