"""The REST connection: opened on the running loop, refused without the venue's URLs."""

from __future__ import annotations

import pytest

from epochbot.runtime.config import VENUES
from epochbot.runtime.venue_rest import VenueRest
from tests.runtime.fakes import VENUE, LogSpy


async def test_the_client_is_there_once_opened_and_closed_with_its_session():
    rest = VenueRest(VENUE, timeout_s=1.0, retry_after_cap_s=30.0, log=LogSpy())
    with pytest.raises(RuntimeError):
        rest.client  # noqa: B018 - reading it before `open` is the defect under test

    client = rest.open()

    assert rest.client is client and client.base_url == VENUE.rest_url and client.retry_after_cap_s == 30.0
    await rest.close()


async def test_a_venue_without_urls_is_refused_with_a_clear_error():
    rest = VenueRest(VENUES["sim"], timeout_s=1.0, retry_after_cap_s=30.0, log=LogSpy())

    with pytest.raises(ValueError, match="no REST or WebSocket URL"):
        rest.open()
