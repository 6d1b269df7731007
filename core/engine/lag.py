"""Falling behind is not a dead venue: the venue's lag and ours, told apart. Sans-I/O.

Two delays are measured on every market event (core/engine/telemetry.py):

* **transport latency** = receive time - the venue's event time (clock offset removed): the
  venue and the network, *provided the reader received the frame when it landed*;
* **queue delay** = processing time - receive time: our own inbox backlog, always ours.

A new connection cures a bad route or a venue connection that lags; it cures nothing when we are
the slow side, and it makes things worse (a new session costs snapshots, the load rises, the next
session lags too: a replacement loop). So:

* queue delay never replaces a session. It is reported (the ``queue_delay_ms`` confidence
  factor, a warning once per episode); shedding load is the operator's call.
* transport latency replaces the session only while the runtime's loop had time to spare
  (time-weighted ``loop_busy`` below ``busy_saturated`` over the window, and saturated for less
  than half of it): then frames were read as they landed and the lag is upstream. When the loop
  was saturated (our work, or the machine's other processes taking the CPU), frames waited in
  our socket before the reader stamped them, and the
  "transport" latency is our own backlog: reported, not acted on. Without a load figure (a
  replay of an older journal, tests) the latency is taken at its word, as before.
"""

from __future__ import annotations

from collections import deque

__all__ = ["LagJudge", "REPLACE", "LOCAL", "OK"]

OK, REPLACE, LOCAL = "", "replace", "local"
_S = 1_000_000_000


class LagJudge:
    def __init__(self, busy_saturated: float = 0.9, window_s: float = 10.0, min_count: int = 20) -> None:
        self.busy_saturated = busy_saturated
        self.window_ns = int(window_s * _S)
        self.min_count = min_count
        self._load: deque[tuple[int, float, int]] = deque()  # (at, busy share, interval ns)
        self._last_ns = 0
        self._time = 0
        self._busy_time = 0.0
        self._saturated_time = 0
        self.min_time_ns = _S // 2  # at least half a second of figures before judging
        self.episode = False  # a local-backlog episode is in progress (logged once)
        self.counters = {"local_backlog_episodes": 0, "latency_kept_local": 0}

    def on_load(self, now: int, busy: float) -> None:
        """The loop's busy share since the previous tick (negative: not known). Weighted by the
        time it covers: a held loop ticks rarely, an idle one often."""
        if busy < 0:
            self._last_ns = 0
            return
        last = self._last_ns
        self._last_ns = now
        if not last or now <= last:
            return
        dt = now - last
        load = self._load
        load.append((now, busy, dt))
        self._time += dt
        self._busy_time += busy * dt
        if busy >= self.busy_saturated:
            self._saturated_time += dt
        edge = now - self.window_ns
        while load and load[0][0] < edge:
            _, b, d = load.popleft()
            self._time -= d
            self._busy_time -= b * d
            if b >= self.busy_saturated:
                self._saturated_time -= d

    def busy(self) -> float:
        """Busy share over the window, time-weighted (0 with no figure)."""
        return min(1.0, max(0.0, self._busy_time / self._time)) if self._time > 0 else 0.0

    def saturated(self) -> bool:
        """Our loop had no time to spare over the window as a whole, or for at least half of it
        (then the median latency sample may well be ours)."""
        if self._time < self.min_time_ns:
            return False
        return self.busy() >= self.busy_saturated or self._saturated_time * 2 >= self._time

    def judge(
        self,
        transport_p50: float,
        transport_count: int,
        queue_p50: float,
        queue_count: int,
        transport_replace_ms: float,
        queue_warn_ms: float,
    ) -> tuple[str, str]:
        """(REPLACE | LOCAL | OK, why). LOCAL: we are behind; keep the session, say so."""
        local = ""
        if queue_count >= self.min_count and queue_p50 >= queue_warn_ms:
            local = f"queue delay p50 {queue_p50:.0f} ms (our own backlog)"
        lagging = transport_count >= self.min_count and transport_p50 >= transport_replace_ms
        if lagging and not local and self.saturated():
            self.counters["latency_kept_local"] += 1
            local = (
                f"transport latency p50 {transport_p50:.0f} ms while our loop was busy "
                f"{100 * self.busy():.0f} % of the time (frames waited for us, not for the venue)"
            )
        if local:
            return LOCAL, local
        self.episode = False
        if lagging:
            return REPLACE, f"transport latency p50 {transport_p50:.0f} ms"
        return OK, ""

    def start_episode(self) -> bool:
        """True the first time in an episode (log it once)."""
        if self.episode:
            return False
        self.episode = True
        self.counters["local_backlog_episodes"] += 1
        return True
