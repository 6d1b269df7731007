"""Symbol scales from exchangeInfo: applied to the books before any session, kept for the transport."""

from __future__ import annotations

from epochbot.runtime.budget import BudgetConfig, WeightBudget
from epochbot.runtime.config import JournalConfig
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.scales import SymbolScales
from epochbot.venues.binance.rest import RestError
from tests.runtime.fakes import SYMBOL, VENUE, LogSpy, btc_filters, config, engine, venue_rest


def scales(fake_filters, *, weight_limit=None, published=None, journal=None):
    eng = engine(symbols=(SYMBOL, "NOPEUSDT"))
    log = LogSpy()
    rest, fake = venue_rest(log=log)
    fake.filters = fake_filters
    fake.weight_limit_1m = published
    budget = WeightBudget(BudgetConfig.for_market("usdm"))
    recorder = InputRecorder(journal, engine=eng, inbox=Inbox(10), venue=VENUE, symbols=(SYMBOL, "NOPEUSDT"))
    recorder.open()
    part = SymbolScales(
        config(symbols=(SYMBOL, "NOPEUSDT"), weight_limit=weight_limit),
        engine=eng,
        rest=rest,
        budget=budget,
        recorder=recorder,
        log=log,
    )
    return part, eng, budget, log, recorder


async def test_listed_symbols_get_their_exact_scale_and_the_venues_weight_limit_is_taken(tmp_path):
    part, eng, budget, log, recorder = scales(btc_filters(), published=1200, journal=JournalConfig(str(tmp_path)))

    filters = await part.prepare()
    recorder.journal.close()

    assert set(filters) == {SYMBOL}
    assert part.depth == {SYMBOL: (1, 3)} and eng.book(SYMBOL).codec.price_decimals == 1
    assert budget.config.limit == 1200 and log.find("request weight limit from exchangeInfo")["limit"] == 1200
    assert log.find("symbol not listed by the venue") == {"symbol": "NOPEUSDT"}
    assert '"t":"SymbolSpec"' in next(tmp_path.glob("*.jsonl")).read_text()  # journaled: replay applies it


async def test_a_configured_weight_limit_is_kept_and_a_missing_exchange_info_is_survived():
    part, _, budget, log, _ = scales(btc_filters(), weight_limit=600, published=1200)
    budget.config = BudgetConfig(limit=600)

    await part.prepare()
    assert budget.config.limit == 600

    part, eng, _, log, _ = scales(RestError(503, "busy"))
    assert await part.prepare() == {}
    assert part.depth == {} and eng.book(SYMBOL).codec is None
    assert "unavailable" in log.records[-1][1]
