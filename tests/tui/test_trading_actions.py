"""Cancel-all (X) and flatten (F) ask first, from keys and the palette; only "yes" sends."""

from __future__ import annotations

from epochbot.model.events import OperatorCancelAll, OperatorFlatten
from epochbot.widgets.confirm_action import ConfirmAction
from tests.tui.conftest import make_app

SIZE = (80, 24)


async def test_x_asks_and_n_cancels_nothing_is_sent():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmAction)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmAction)
    assert source.events == []


async def test_x_then_y_cancels_every_order_and_pauses():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("X")
        await pilot.press("y")
    assert source.events == [OperatorCancelAll(symbol=None, pause=True)]


async def test_enter_on_the_modal_does_not_confirm():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("F")
        await pilot.press("enter")  # focus starts on "Cancel"
    assert source.events == []


async def test_f_then_y_flattens_the_selected_symbol():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")  # the second symbol
        await pilot.press("F")
        await pilot.press("y")
    assert source.events == [OperatorFlatten(symbol="ETHUSDT", pause=True)]


async def test_the_palette_offers_both_actions_and_they_ask_too():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        commands = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Cancel all orders  [X]", "Flatten position  [F]"} <= commands  # with their keys
        await app.run_action("cancel_all")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmAction)
    assert source.events == []


async def test_without_a_trader_the_risk_pane_says_trading_is_off_instead_of_breaker_ok():
    import dataclasses

    from epochbot.views.snapshot import RiskView
    from tests.tui.fixtures import normal_snapshot

    snap = dataclasses.replace(normal_snapshot(), risk=RiskView(), trading=None, orders=(), positions=())
    app, source = make_app(snap)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        text = str(app.query_one("#risk-detail").render())
    assert text.startswith("trading off") and "breaker ok" not in text and "PnL session" not in text
