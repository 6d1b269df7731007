"""The command router: each command to its handler by type; Stop ends the batch with its code."""

from __future__ import annotations

import pytest

from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.runtime.commands import CommandRouter
from tests.runtime.fakes import LogSpy


def router(log=None):
    seen: list = []
    table = {
        ev.FetchSnapshot: lambda c: seen.append(("fetch", c.symbol)),
        tev.QueryOrder: lambda c: seen.append(("query", c.client_order_id)),
    }
    return CommandRouter(table, log=log or LogSpy()), seen


def test_each_command_goes_to_the_handler_of_its_type_in_order():
    r, seen = router()

    code = r.execute([ev.FetchSnapshot(symbol="A"), tev.QueryOrder(symbol="A", client_order_id="eb1-1")])

    assert code is None and seen == [("fetch", "A"), ("query", "eb1-1")]


def test_stop_returns_its_exit_code_and_the_commands_after_it_are_not_executed():
    r, seen = router()

    code = r.execute([ev.FetchSnapshot(symbol="A"), ev.Stop(reason="x", exit_code=3), ev.FetchSnapshot(symbol="B")])

    assert code == 3 and r.exit_code == 3 and seen == [("fetch", "A")]


def test_a_command_without_a_handler_is_logged_not_dropped_silently():
    log = LogSpy()
    r, seen = router(log)

    r.execute([ev.ProbeVenue(symbol="A")])

    assert seen == [] and log.find("command not supported by this runtime") == {"command": "ProbeVenue"}


def test_stop_cannot_be_given_a_handler():
    with pytest.raises(ValueError):
        CommandRouter({ev.Stop: lambda c: None}, log=LogSpy())
