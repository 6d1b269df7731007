import pytest

from epochbot.app.console.tui import ConsoleApp
from tests.tui.fixtures import FakeSource, degraded_snapshot, normal_snapshot


def make_app(snapshot=None, **kwargs) -> tuple[ConsoleApp, FakeSource]:
    source = FakeSource(snapshot if snapshot is not None else normal_snapshot())
    kwargs.setdefault("install_signal_handlers", False)
    kwargs.setdefault("symbols", ("BTCUSDT", "ETHUSDT"))
    kwargs.setdefault("venue", "sim")
    return ConsoleApp(source, **kwargs), source


@pytest.fixture
def normal():
    return normal_snapshot()


@pytest.fixture
def degraded():
    return degraded_snapshot()
