"""Frame delivery on its own, on a fake clock: fan-out, the frame faults, and latency that delays
without reordering (issue 19: a latency spell used to reorder frames when it ended)."""

from __future__ import annotations

from typing import Any

from epochbot.sim.conn import Connections, WsConn
from epochbot.sim.delivery import OUT_OF_ORDER_RELEASE_S, FrameDelivery
from epochbot.sim.faults import FaultBoard, StallScopes
from epochbot.sim.server import new_stats
from epochbot.sim.streams import parse_stream
from epochbot.sim.subscriptions import Subscriptions

NAME = "btcusdt@depth@100ms"


class FakeLoop:
    """Timers on an explicit clock: `advance` runs what is due, in time order."""

    def __init__(self) -> None:
        self.now = 100.0
        self._timers: list[tuple[float, int, Any, tuple[Any, ...]]] = []
        self._seq = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any, *args: Any) -> None:
        self._seq += 1
        self._timers.append((when, self._seq, callback, args))

    def call_later(self, delay: float, callback: Any, *args: Any) -> None:
        self.call_at(self.now + delay, callback, *args)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = sorted(t for t in self._timers if t[0] <= end)
            if not due:
                break
            timer = due[0]
            self._timers.remove(timer)
            self.now = max(self.now, timer[0])
            timer[2](*timer[3])
        self.now = end


class Rig:
    """One delivery with one subscribed raw connection (no socket: frames stay in its queue)."""

    def __init__(self, *, combined: bool = False) -> None:
        self.loop = FakeLoop()
        self.board = FaultBoard()
        self.stats = new_stats()
        stalls = StallScopes()
        self.subs = Subscriptions("usdm", ["BTCUSDT"])
        connections = Connections(
            stats=self.stats,
            faults=self.board,
            stalls=stalls,
            ping_interval_s=180,
            pong_timeout_s=600,
            max_lifetime_s=86400,
        )
        self.delivery = FrameDelivery(
            subscriptions=self.subs,
            connections=connections,
            faults=self.board,
            stalls=stalls,
            stats=self.stats,
            send_queue_limit=1000,
            scheduler=self.loop,
        )
        self.conn = WsConn(1, None, None, "public", combined)  # type: ignore[arg-type]  # no socket here
        spec = parse_stream(NAME, "usdm")
        assert spec is not None
        self.subs.add(self.conn, NAME, spec)

    def arm(self, kind: str, **params: Any) -> None:
        self.board.arm({"kind": kind, **params})  # durations run on the board's own (real) clock

    def send(self, *frames: int) -> None:
        for n in frames:
            self.delivery.deliver(NAME, b"%d" % n, "BTCUSDT", is_diff=True)

    def received(self) -> list[int]:
        out = [int(f) for f in self.conn.queue]
        self.conn.queue.clear()
        return out


def test_without_faults_a_frame_goes_straight_to_every_subscriber_and_is_counted():
    rig = Rig()

    rig.send(1, 2)

    assert rig.received() == [1, 2] and rig.stats["messages"] == {NAME: 2}


def test_a_combined_connection_gets_the_stream_wrapper():
    rig = Rig(combined=True)

    rig.delivery.deliver(NAME, b'{"u":1}', "BTCUSDT", is_diff=True)

    assert list(rig.conn.queue) == [b'{"stream":"btcusdt@depth@100ms","data":{"u":1}}']


def test_latency_holds_frames_for_its_delay_and_then_delivers_them_in_order():
    rig = Rig()
    rig.arm("latency", ms=300)

    rig.send(1)
    rig.loop.advance(0.1)
    rig.send(2)
    rig.loop.advance(0.19)
    assert rig.received() == []
    rig.loop.advance(0.02)  # frame 1 is due (300 ms), frame 2 not yet
    assert rig.received() == [1]
    rig.loop.advance(0.1)

    assert rig.received() == [2] and rig.delivery.delayed("BTCUSDT") == 0


def test_frames_after_a_latency_spell_wait_behind_the_delayed_ones_and_the_backlog_drains_in_order():
    rig = Rig()
    rig.arm("latency", ms=300, duration_s=60)
    rig.send(1, 2)  # delayed while the spell lasts
    rig.board.clear()  # the spell ends before they are due

    rig.send(3, 4)  # not delayed themselves, but behind 1 and 2
    assert rig.received() == [] and rig.delivery.delayed("BTCUSDT") == 4
    rig.loop.advance(0.3)

    assert rig.received() == [1, 2, 3, 4]
    rig.send(5)  # the backlog is gone: straight through again
    assert rig.received() == [5]


def test_a_second_latency_with_a_shorter_delay_never_overtakes_the_first():
    rig = Rig()
    rig.arm("latency", ms=500)
    rig.send(1)
    rig.board.clear()
    rig.arm("latency", ms=100)

    rig.send(2)
    rig.loop.advance(0.2)  # 2 would be due, but 1 is not
    assert rig.received() == []
    rig.loop.advance(0.3)

    assert rig.received() == [1, 2]


def test_other_symbols_are_not_held_behind_a_symbol_latency():
    rig = Rig()
    rig.arm("latency", symbol="ETHUSDT", ms=300)

    rig.send(1)

    assert rig.received() == [1]


def test_out_of_order_swaps_a_frame_with_its_successor():
    rig = Rig()
    rig.arm("out_of_order")

    rig.send(1, 2, 3)

    assert rig.received() == [2, 1, 3]


def test_a_held_frame_without_a_successor_still_arrives_late():
    rig = Rig()
    rig.arm("out_of_order")
    rig.send(1)
    assert rig.received() == []

    rig.loop.advance(OUT_OF_ORDER_RELEASE_S)

    assert rig.received() == [1]


def test_out_of_order_during_a_latency_spell_swaps_exactly_that_pair_and_nothing_else():
    rig = Rig()
    rig.arm("latency", ms=300)
    rig.send(1)
    rig.arm("out_of_order")

    rig.send(2, 3, 4)
    rig.loop.advance(0.3)

    assert rig.received() == [1, 3, 2, 4]


def test_duplicate_sends_the_frame_twice_in_place_even_behind_a_latency():
    rig = Rig()
    rig.arm("latency", ms=300)
    rig.send(1)
    rig.arm("duplicate")

    rig.send(2, 3)
    rig.loop.advance(0.3)

    assert rig.received() == [1, 2, 2, 3]


def test_malformed_and_truncated_frames_replace_the_payload():
    rig = Rig()
    rig.arm("malformed")
    rig.delivery.deliver(NAME, b'{"u":123456}', "BTCUSDT", is_diff=True)
    rig.arm("truncated")
    rig.delivery.deliver(NAME, b'{"u":123456}', "BTCUSDT", is_diff=True)

    assert list(rig.conn.queue) == [b'{"u",,}}garbage', b'{"u":1']


def test_a_stall_drops_frames_for_the_connections_it_silences_and_counts_them():
    rig = Rig()
    rig.arm("stall", scope="all", duration_s=5)

    rig.send(1, 2)

    assert rig.received() == [] and rig.stats["frames_dropped_stall"] == 2


def test_a_connection_that_closed_meanwhile_gets_nothing():
    rig = Rig()
    rig.arm("latency", ms=300)
    rig.send(1)
    rig.conn.closed = True

    rig.loop.advance(0.3)

    assert rig.received() == []
