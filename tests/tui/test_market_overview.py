"""The market overview and the fuzzy symbol picker at 200 symbols (Pilot and snapshots)."""

from __future__ import annotations

from epochbot.widgets.market_overview import MarketOverview, overview_rows
from epochbot.widgets.symbol_picker import SymbolPicker, fuzzy_rank
from tests.tui.conftest import make_app
from tests.tui.market_fixtures import INVALID, SYMBOLS, WAITING, market_snapshot

WIDE = (120, 40)
NARROW = (80, 24)


def _app():
    return make_app(market_snapshot(), symbols=SYMBOLS)[0]


async def _overview(pilot) -> MarketOverview:
    await pilot.pause(0.1)
    await pilot.press("o")
    await pilot.pause(0.1)
    screen = pilot.app.screen
    assert isinstance(screen, MarketOverview)
    return screen


def test_fuzzy_rank_puts_prefixes_and_exact_names_first():
    assert fuzzy_rank("eth", SYMBOLS)[:2] == ["ETHBTC", "ETHUSDT"]
    assert fuzzy_rank("ethusdt", SYMBOLS)[0] == "ETHUSDT"
    assert fuzzy_rank("c17", SYMBOLS)[0] == "C170USDT"  # a consecutive run beats scattered letters
    assert fuzzy_rank("c017", SYMBOLS)[0] == "C017USDT"
    assert fuzzy_rank("zzz", SYMBOLS) == []
    assert fuzzy_rank("", SYMBOLS) == list(SYMBOLS)


def test_overview_rows_compute_spread_mid_and_the_mid_change_exactly():
    mids: dict = {}
    overview_rows(market_snapshot(seq=1), mids)
    rows = {r.symbol: r for r in overview_rows(market_snapshot(seq=2, shift=50), mids)}

    btc = rows["BTCUSDT"]
    i = SYMBOLS.index("BTCUSDT")
    decimals = 1 + i % 4
    bid = (1000 + 37 * i) * 10**decimals // 10 + 50
    assert btc.spread_units == 1 + i % 5
    then = 2 * (bid - 50) + 1 + i % 5
    assert btc.change_bps == (100 * 10_000 / then)  # 50 ticks on each side of the mid's total
    assert rows["BTCUSDT"].position == "0.020" and rows["ETHUSDT"].position == "-1.500"
    assert rows["SOLUSDT"].state == "invalid" and rows["SOLUSDT"].spread == "-"
    assert rows[WAITING[0]].state == "buffering (weight)"
    assert float(btc.mid) == (2 * bid + 1 + i % 5) / 2 / 10**decimals


async def test_the_overview_lists_every_symbol_and_sorts_by_any_column():
    app = _app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await _overview(pilot)
        assert len(screen.visible_rows()) == 200

        await pilot.press("7")  # resyncs, biggest first
        top = [r.symbol for r in screen.visible_rows()[:3]]
        await pilot.press("2")  # state: invalid first
        by_state = [r.symbol for r in screen.visible_rows()[:3]]

    assert set(top) == set(INVALID)
    assert set(by_state) == set(INVALID)


async def test_the_overview_filters_by_fuzzy_symbol_state_and_problems():
    app = _app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await _overview(pilot)
        await pilot.press("slash", *"eth")
        eth = [r.symbol for r in screen.visible_rows()]
        await pilot.press("ctrl+a", "ctrl+k", *"!synced")
        not_synced = {r.symbol for r in screen.visible_rows()}
        await pilot.press("ctrl+a", "ctrl+k", "enter", "u")
        problems = {r.symbol for r in screen.visible_rows()}

    assert "ETHUSDT" in eth and "ETHBTC" in eth and "BTCUSDT" not in eth and len(eth) < 10
    assert not_synced == set(INVALID) | set(WAITING)
    assert set(INVALID) | set(WAITING) <= problems and "BTCUSDT" not in problems


async def test_enter_in_the_overview_shows_that_symbols_book():
    app = _app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await _overview(pilot)
        await pilot.press("7")  # the cursor stays on the current symbol, wherever it moves
        rows = [r.symbol for r in screen.visible_rows()]
        expected = rows[rows.index(app.symbol) + 1]
        await pilot.press("down", "enter")
        await pilot.pause(0.1)
        assert app.symbol == expected and not isinstance(app.screen, MarketOverview)


async def test_the_picker_finds_a_symbol_among_200_by_fuzzy_search():
    app = _app()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.1)
        await pilot.press("s")
        await pilot.pause(0.05)
        assert isinstance(app.screen, SymbolPicker)
        await pilot.press(*"dogeu", "enter")
        await pilot.pause(0.05)
        assert app.symbol == "DOGEUSDT"
        await pilot.press("s", *"c1", "down", "enter")
        await pilot.pause(0.05)
        second = fuzzy_rank("c1", SYMBOLS)[1]
        assert app.symbol == second


async def test_escape_leaves_the_symbol_unchanged():
    app = _app()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.1)
        before = app.symbol
        await pilot.press("s", *"eth", "escape")
        await pilot.pause(0.05)
        assert app.symbol == before and not isinstance(app.screen, SymbolPicker)


def test_overview_at_200_symbols_sorted_by_resyncs(snap_compare):
    async def run_before(pilot):
        await _overview(pilot)
        await pilot.press("7")
        await pilot.pause(0.1)

    assert snap_compare(_app(), terminal_size=WIDE, run_before=run_before)


def test_overview_at_80x24_filtered_to_problems(snap_compare):
    async def run_before(pilot):
        await _overview(pilot)
        await pilot.press("u")
        await pilot.pause(0.1)

    assert snap_compare(_app(), terminal_size=NARROW, run_before=run_before)


def test_picker_with_a_query_at_200_symbols(snap_compare):
    async def run_before(pilot):
        await pilot.pause(0.1)
        await pilot.press("s", *"usdt c0")
        await pilot.pause(0.1)

    assert snap_compare(_app(), terminal_size=NARROW, run_before=run_before)
