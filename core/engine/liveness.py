"""Liveness: is a silent stream dead, or is the market just quiet? Sans-I/O, time from the caller.

Theory of operation
-------------------
*Expected arrival.* Every tracked stream (a symbol's diff stream, and its USD-M ``markPrice@1s``)
learns its own inter-arrival gaps with two EWMAs, TCP-RTO style: ``mean`` (1/8) and ``dev``
(1/4 of the absolute error). Its stall threshold is ``factor * (mean + 4 * dev)`` bounded to
``[floor_ms, max_ms]``; a stream with fewer than ``min_samples`` gaps has no history and uses the
configured ceiling (the old fixed silence threshold). Memory is O(1) per stream. A gap that is
itself far beyond the threshold (a quiet period) is learned capped at twice the threshold, so a
naturally slow stream adapts within a few arrivals while one long quiet spell cannot blind us.

Silence is measured from the reader's receive time of the stream's last frame up to the point
our own queue has been read through: the runtime's timer tick says how old the oldest market
event still waiting in the inbox is (``check(now, backlog_ns)``), and everything received before
it has been seen, so frames received but not yet processed are never read as silence. Without
that figure (a replay, a unit test) the queue delay of the most recent market event stands in.
A check that comes late (the loop was blocked) judges nothing.

*States per stream* (transitions only here)::

    ok --silence > threshold--> suspected --probe: venue moved--> moved
    moved --nothing arrived within the grace--> DEAD (replace the session)
    suspected --probe: venue did not move--> quiet --re-probe with back-off--> quiet | moved
    suspected|quiet|moved --any arrival--> ok
    suspected --probe failed and silence > ceiling--> DEAD

*Grace.* A venue that pushes its diffs every 100 ms is, between two pushes, always a few update
ids ahead of the last diff it sent: its REST book moves continuously, the stream speaks in
batches. So "the venue moved past us" alone proves nothing when the silence is short; the diff
carrying those ids may be on its way (a busy connection, a venue pushing hundreds of symbols a
little late). The stream is dead only if nothing of it arrives within one expected inter-arrival
(its learned mean gap; with no gap learned yet, the silence already lasted the whole ceiling and
only ``grace_min_ms`` is added) after the venue answered (midway through the
request), counted on our read-through point, and the venue is still ahead of us then: a second
probe sent at the end of the grace asks (its answer judges at once, not at the next tick; if it
fails, the tick judges). A probe answered after the grace already passed judges at once.

A heartbeat stream (``markPrice@1s``: it must arrive whatever the market does) that has history
and falls silent is DEAD at once, without a probe, when no other symbol's heartbeat arrived since
it was due either (the route is silent); while others arrive it gets one expected beat of grace
(a venue pushing hundreds of symbols' beats at one instant is sometimes late for one of them).
Only one session-level verdict is returned.

*Probe.* ``check`` returns the symbols to probe: a cheap REST depth (small limit) whose
``lastUpdateId`` is compared with the last update id this stream delivered (or, before any diff
arrived this session, with the previous probe's id). Moved past us: the stream is dead unless
something of it arrives within the grace (above). Not moved: the book is exact, the market is
quiet. At most ``max_probes_in_flight`` at once, so hundreds of silent symbols cost a handful of
requests before the first "moved" answer replaces the session.

*Session start.* A new session's streams have no arrival yet; the first one is expected within
``ceiling + transport latency last seen`` (stale timestamps are latency, never silence), doubled
for every consecutive replacement that did not produce a healthy session (``first_wait_ms``).

`ReplacementGovernor` gives every replacement cause a back-off: a replacement that comes before
the previous session stayed healthy for ``healthy_ms`` raises a streak (delay doubles, capped),
and a sliding window caps attempts far below Binance's 300 connections / 5 min / IP.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["LivenessConfig", "Liveness", "LivenessVerdict", "ReplacementGovernor", "StreamLiveness"]

_MS = 1_000_000
DEPTH = "depth"
HEARTBEAT = "markPrice"


@dataclass(frozen=True, slots=True)
class LivenessConfig:
    ceiling_ms: float = 1500.0  # a stream with no history (the configured silence threshold)
    floor_ms: float = 200.0  # never suspect a stream earlier than this
    max_ms: float = 30_000.0  # never wait longer than this for a stream with history
    factor: float = 1.5
    min_samples: int = 8
    probe_backoff_ms: float = 1000.0  # quiet market: re-probe after this, doubling ...
    probe_backoff_max_ms: float = 30_000.0  # ... up to this
    probe_timeout_ms: float = 3000.0
    max_probes_in_flight: int = 2
    late_check_ms: float = 250.0  # a check this long after the previous one judges nothing
    grace_min_ms: float = 20.0  # a "moved" answer waits at least this for the diff in flight
    first_wait_max_ms: float = 60_000.0


@dataclass(slots=True)
class StreamLiveness:
    symbol: str
    kind: str
    last_ns: int = 0  # last arrival (recv) or session start
    mean_ms: float = 0.0
    dev_ms: float = 0.0
    samples: int = 0
    arrived: bool = False  # since the session started
    last_id: int = 0  # depth: final update id of the last diff this session
    status: str = "ok"  # ok | suspected | quiet | moved
    suspected_ns: int = 0
    probe_request: int = 0
    probe_sent_ns: int = 0
    probe_ref_id: int = 0  # the id the next probe is compared against when no diff arrived
    next_probe_ns: int = 0
    probe_backoff_ms: float = 0.0
    probes: int = 0
    moved_deadline_ns: int = 0  # moved: dead if nothing arrives before our read-through passes this
    moved_to: int = 0  # moved: the venue's lastUpdateId
    moved_silence_ms: float = 0.0

    def grace_ms(self, config: LivenessConfig) -> float:
        """One expected inter-arrival: how long a diff the venue already has may still take."""
        if self.samples < config.min_samples:  # no rhythm yet: the silence already lasted the ceiling
            return config.grace_min_ms
        return min(config.ceiling_ms, max(config.grace_min_ms, self.mean_ms))

    def threshold_ms(self, config: LivenessConfig) -> float:
        if self.samples < config.min_samples:
            return config.ceiling_ms
        t = config.factor * (self.mean_ms + 4.0 * self.dev_ms)
        return min(config.max_ms, max(config.floor_ms, t))

    def learn(self, gap_ms: float, config: LivenessConfig) -> None:
        gap_ms = min(gap_ms, 2.0 * self.threshold_ms(config))
        if self.samples == 0:
            self.mean_ms, self.dev_ms = gap_ms, gap_ms / 2
        else:
            err = gap_ms - self.mean_ms
            self.mean_ms += err / 8.0
            self.dev_ms += (abs(err) - self.dev_ms) / 4.0
        self.samples += 1


@dataclass(frozen=True, slots=True)
class LivenessVerdict:
    """What one check decided: probes to send, or the session is dead (``dead`` says why)."""

    probes: tuple[tuple[str, int], ...] = ()  # (symbol, request id)
    delay_ms: float = 0.0  # send the probes this much later (a confirmation after the grace)
    dead: str = ""
    detected_ns: int = 0


_NOTHING = LivenessVerdict()


class Liveness:
    def __init__(self, config: LivenessConfig) -> None:
        self.config = config
        self.streams: dict[tuple[str, str], StreamLiveness] = {}
        self._depth: dict[str, StreamLiveness] = {}
        self.active = False  # a subscribed session exists
        self.session_ns = 0
        self.first_wait_ms = config.ceiling_ms
        self._last_check_ns = 0
        self._last_check_gap_ns = 0
        self._backlog_ns = 0  # queue delay of the most recent market event
        self._seen_ns = 0  # read-through point from the last check's backlog figure (0: unknown)
        self.saturated = False  # set by the engine: our loop has no time to spare (core/engine/lag.py)
        self._heartbeat_ns = 0  # newest heartbeat arrival of any symbol
        self._seq = 0
        self.counters = {
            "suspected": 0,
            "moved": 0,
            "probes": 0,
            "probe_failures": 0,
            "quiet": 0,
            "dead": 0,
            "heartbeat_dead": 0,
        }

    # ------------------------------------------------------------------ inputs

    def track(self, symbol: str) -> None:
        """Expect ``symbol``'s diff stream (arrival or not)."""
        if symbol not in self._depth:
            self._depth[symbol] = self.streams[(symbol, DEPTH)] = StreamLiveness(symbol, DEPTH, last_ns=self.session_ns)

    def start_session(self, now: int, first_wait_ms: float) -> None:
        """A new session is subscribed: every stream starts over from ``now`` (history kept)."""
        self.active = True
        self.session_ns = now
        self.first_wait_ms = min(self.config.first_wait_max_ms, max(self.config.ceiling_ms, first_wait_ms))
        self._last_check_ns = now
        self._last_check_gap_ns = 0
        self._seen_ns = 0
        for s in self.streams.values():
            s.last_ns = now
            s.arrived = False
            s.last_id = 0
            self._reset(s)

    def stop_session(self) -> None:
        self.active = False
        for s in self.streams.values():
            self._reset(s)

    def on_depth(self, symbol: str, final_id: int, recv_ns: int, process_ns: int) -> None:
        # The hot path (one call per diff): the common case inlined, the rest in _arrive.
        s = self._depth.get(symbol)
        if s is None:
            self.track(symbol)
            s = self._depth[symbol]
        self._backlog_ns = process_ns - recv_ns if process_ns > recv_ns else 0
        if final_id > s.last_id:
            s.last_id = final_id
        last = s.last_ns
        cfg = self.config
        if s.arrived and s.status == "ok" and s.samples >= cfg.min_samples and recv_ns > last:
            mean = s.mean_ms
            gap = (recv_ns - last) / _MS
            if gap > cfg.floor_ms:  # maybe beyond the cap: learn() applies it exactly
                s.learn(gap, cfg)
                s.last_ns = recv_ns
                return
            err = gap - mean
            s.mean_ms = mean + err * 0.125
            s.dev_ms += ((err if err >= 0 else -err) - s.dev_ms) * 0.25
            s.samples += 1
            s.last_ns = recv_ns
            return
        self._arrive(s, recv_ns, process_ns)

    def on_heartbeat(self, symbol: str, recv_ns: int, process_ns: int) -> None:
        if recv_ns > self._heartbeat_ns:
            self._heartbeat_ns = recv_ns
        key = (symbol, HEARTBEAT)
        s = self.streams.get(key)
        if s is None:
            s = self.streams[key] = StreamLiveness(symbol, HEARTBEAT, last_ns=recv_ns)
            s.arrived = True
            return
        self._arrive(s, recv_ns, process_ns)

    def _arrive(self, s: StreamLiveness, recv_ns: int, process_ns: int) -> None:
        self._backlog_ns = process_ns - recv_ns if process_ns > recv_ns else 0
        if s.arrived:
            gap = recv_ns - s.last_ns
            if gap > 0:
                s.learn(gap / _MS, self.config)
        s.arrived = True
        if recv_ns > s.last_ns:
            s.last_ns = recv_ns
        if s.status != "ok":
            self._reset(s)

    def _reset(self, s: StreamLiveness) -> None:
        s.status = "ok"
        s.suspected_ns = 0
        s.probe_request = 0
        s.probe_ref_id = 0
        s.next_probe_ns = 0
        s.probe_backoff_ms = 0.0
        s.probes = 0
        s.moved_deadline_ns = 0
        s.moved_to = 0

    # ------------------------------------------------------------------ judgement

    def seen_through(self, now: int) -> int:
        """Every frame received before this instant has been processed (as far as we know)."""
        if self._seen_ns:
            return min(now, self._seen_ns)
        return now - self._backlog_ns

    def silence_ms(self, s: StreamLiveness, now: int) -> float:
        return max(0, self.seen_through(now) - s.last_ns) / _MS

    def depth_silence_ms(self, symbol: str, now: int) -> float:
        s = self._depth.get(symbol)
        return self.silence_ms(s, now) if s is not None else 0.0

    def limit_ms(self, s: StreamLiveness) -> float:
        if not s.arrived:  # nothing on this session yet: its first frame may take a while
            return max(self.first_wait_ms, s.threshold_ms(self.config))
        return s.threshold_ms(self.config)

    def check(self, now: int, backlog_ns: int = -1) -> LivenessVerdict:
        """Called on every timer tick while a subscribed session exists. ``backlog_ns``: age of
        the oldest market event still queued behind this tick (0: none; -1: not known)."""
        if backlog_ns >= 0:
            self._seen_ns = now - backlog_ns
        elif self._seen_ns:
            self._seen_ns = 0
        if not self.active:
            return _NOTHING
        # Late: much later than the previous check and than late_check_ms (the loop was blocked).
        gap = now - self._last_check_ns
        late = (
            self._last_check_gap_ns > 0 and gap > self.config.late_check_ms * _MS and gap > 3 * self._last_check_gap_ns
        )
        self._last_check_ns = now
        self._last_check_gap_ns = gap
        if late:  # the loop itself was blocked: what looks like silence may sit in our queue
            return _NOTHING
        cfg = self.config
        in_flight = 0
        probes: list[tuple[str, int]] = []
        due: list[StreamLiveness] = []
        for s in self.streams.values():
            if s.probe_request:
                if now - s.probe_sent_ns >= cfg.probe_timeout_ms * _MS:
                    self._probe_failed(s, now)
                else:
                    in_flight += 1
            silence = self.silence_ms(s, now)
            limit = self.limit_ms(s)
            if s.status == "ok":
                if silence <= limit:
                    continue
                if s.kind == HEARTBEAT:
                    # Judged only once it has beaten on this session with a known rhythm; before
                    # that the symbol's diff stream (probed) speaks for the connection. Not judged
                    # while our own loop is saturated: its frames may be waiting in our socket.
                    if not (s.arrived and s.samples >= cfg.min_samples) or self.saturated:
                        continue
                    # Other symbols' heartbeats kept arriving (half a beat or more after this
                    # one's last): the route is up, this beat is late at the venue (hundreds of
                    # symbols pushed at one instant). Dead one expected beat later (the grace);
                    # a silent route at once.
                    due_ns = s.last_ns + int(limit * _MS)
                    grace = s.grace_ms(cfg)
                    route_up = self._heartbeat_ns > s.last_ns + int(0.5 * s.mean_ms * _MS)
                    if route_up and silence <= limit + grace:
                        continue
                    self.counters["heartbeat_dead"] += 1
                    self.counters["dead"] += 1
                    beats = f" while other heartbeats arrived (grace {grace:.0f} ms)" if route_up else ""
                    return LivenessVerdict(
                        dead=f"heartbeat {s.symbol} {s.kind} silent {silence:.0f} ms "
                        f"(expected within {limit:.0f} ms){beats}",
                        detected_ns=due_ns,
                    )
                s.status = "suspected"
                s.suspected_ns = now
                self.counters["suspected"] += 1
                due.append(s)
            elif s.status == "suspected" and not s.probe_request:
                if s.probes and silence > max(cfg.ceiling_ms, limit) * 4:  # probes keep failing: cannot tell, act
                    self.counters["dead"] += 1
                    return LivenessVerdict(
                        dead=f"{s.symbol} {s.kind} silent {silence:.0f} ms and the venue cannot be asked",
                        detected_ns=s.suspected_ns,
                    )
                if now >= s.next_probe_ns:
                    due.append(s)
            elif s.status == "quiet" and not s.probe_request and now >= s.next_probe_ns:
                due.append(s)
            elif s.status == "moved" and not s.probe_request and self.seen_through(now) >= s.moved_deadline_ns:
                return self._dead_moved(s, now)
        for s in due:
            if in_flight >= cfg.max_probes_in_flight:
                break
            target = self._depth.get(s.symbol)
            if target is None or target.probe_request:
                continue
            self._seq += 1
            target.probe_request = self._seq
            target.probe_sent_ns = now
            if s is not target and target.status == "ok":
                target.status, target.suspected_ns = "suspected", now
            in_flight += 1
            self.counters["probes"] += 1
            probes.append((s.symbol, self._seq))
        return LivenessVerdict(probes=tuple(probes)) if probes else _NOTHING

    def on_probe(
        self,
        symbol: str,
        request_id: int,
        last_update_id: int | None,
        now: int,
        latency_ms: float = 0.0,
        backlog_ns: int = -1,
    ) -> LivenessVerdict:
        """The venue's answer (``None``: the probe failed). ``latency_ms``: the session's current
        transport latency; while the silence is shorter than it, what the venue moved may still
        be in flight to us, so a "moved" answer is asked again rather than believed.
        ``backlog_ns``: as for `check`, the age of the oldest market event queued behind it.

        A first "moved" answer returns the confirming probe, to be sent after ``delay_ms`` (the
        grace): its answer judges the stream at the end of the grace, not at the next tick."""
        s = self._depth.get(symbol)
        if s is None or request_id != s.probe_request:
            return _NOTHING
        if backlog_ns >= 0:
            self._seen_ns = now - backlog_ns
        s.probe_request = 0
        s.probes += 1
        if last_update_id is None:
            self._probe_failed(s, now)
            return _NOTHING
        if s.status == "ok":  # the stream spoke while we asked
            return _NOTHING
        if s.status == "moved":  # the confirmation, one grace later, and nothing arrived since
            if self.seen_through(now) < s.moved_deadline_ns:
                return _NOTHING  # frames received before the deadline still wait for us: the tick judges
            if last_update_id > (s.last_id or s.probe_ref_id):
                s.moved_to = max(s.moved_to, last_update_id)
                return self._dead_moved(s, now)
        ref = s.last_id or s.probe_ref_id
        if ref and last_update_id > ref and s.status != "moved":
            silence = self.silence_ms(s, now)
            if latency_ms > 0 and silence < latency_ms:
                s.next_probe_ns = now + int(max(self.config.floor_ms, latency_ms - silence) * _MS)
                return _NOTHING
            # The venue is ahead: dead only if the diff carrying that is not on its way (grace).
            self.counters["moved"] += 1
            s.status = "moved"
            s.moved_to = last_update_id
            s.probe_ref_id = ref
            s.moved_silence_ms = silence
            # From when the venue answered: midway between our request and its answer.
            served = (s.probe_sent_ns + now) // 2 if 0 < s.probe_sent_ns <= now else now
            deadline = s.moved_deadline_ns = served + int(s.grace_ms(self.config) * _MS)
            if not s.suspected_ns:
                s.suspected_ns = now
            if self.seen_through(now) >= deadline:
                return self._dead_moved(s, now)
            self._seq += 1
            self.counters["probes"] += 1
            s.probe_request = self._seq
            s.probe_sent_ns = deadline  # sent then (the timeout counts from there)
            return LivenessVerdict(probes=((symbol, self._seq),), delay_ms=(deadline - now) / _MS)
        if not ref:
            # No diff this session and no earlier probe: this answer is the reference, ask
            # again soon (the stream's own expected gap) to see whether the venue moves.
            s.probe_ref_id = last_update_id
            s.next_probe_ns = now + int(max(self.config.floor_ms, s.threshold_ms(self.config)) * _MS)
            return _NOTHING
        if s.status != "quiet":
            self.counters["quiet"] += 1
            s.status = "quiet"
        s.probe_ref_id = last_update_id
        back = s.probe_backoff_ms = min(
            self.config.probe_backoff_max_ms,
            s.probe_backoff_ms * 2 if s.probe_backoff_ms else self.config.probe_backoff_ms,
        )
        s.next_probe_ns = now + int(back * _MS)
        hb = self.streams.get((symbol, HEARTBEAT))
        if hb is not None and hb.status == "suspected":
            hb.status = "quiet"
        return _NOTHING

    def _dead_moved(self, s: StreamLiveness, now: int) -> LivenessVerdict:
        self.counters["dead"] += 1
        silence = self.silence_ms(s, now)
        grace = s.grace_ms(self.config)
        return LivenessVerdict(
            dead=f"stream stalled: {s.symbol} silent {silence:.0f} ms while the venue moved to update id {s.moved_to} "
            f"(ours {s.last_id or s.probe_ref_id}; nothing arrived within the {grace:.0f} ms grace)",
            detected_ns=s.suspected_ns or now,
        )

    def _probe_failed(self, s: StreamLiveness, now: int) -> None:
        self.counters["probe_failures"] += 1
        s.probe_request = 0
        back = s.probe_backoff_ms = min(
            self.config.probe_backoff_max_ms, s.probe_backoff_ms * 2 if s.probe_backoff_ms else 250.0
        )
        s.next_probe_ns = now + int(back * _MS)

    # ------------------------------------------------------------------ confidence inputs

    def unexplained_silence_ms(self, now: int) -> float:
        """Longest silence beyond what its stream normally shows (its mean gap plus four
        deviations; the limit while it has no gap learned) and not explained by a quiet market:
        what the silence factor judges, so a 1 s heartbeat between two beats costs nothing."""
        worst = 0.0
        for s in self.streams.values():
            if s.status == "quiet":
                continue
            # A stream without a learned gap yet is expected within its limit (the ceiling).
            v = self.silence_ms(s, now) - (s.mean_ms + 4.0 * s.dev_ms if s.samples else self.limit_ms(s))
            if v > worst:
                worst = v
        return worst

    def suspected(self) -> int:
        return sum(1 for s in self.streams.values() if s.status == "suspected" or s.status == "moved")

    def quiet_ms(self, now: int) -> float:
        """How long the longest-quiet stream has been quiet (0: no quiet stream)."""
        worst = 0.0
        for s in self.streams.values():
            if s.status == "quiet":
                worst = max(worst, self.silence_ms(s, now))
        return worst

    def quiet_symbols(self) -> list[str]:
        return sorted({s.symbol for s in self.streams.values() if s.status == "quiet"})

    def view(self, now: int) -> dict[str, dict[str, object]]:
        """Per-stream state for status endpoints and tests."""
        return {
            f"{s.symbol}@{s.kind}": {
                "status": s.status,
                "silence_ms": round(self.silence_ms(s, now), 1),
                "threshold_ms": round(self.limit_ms(s), 1),
                "mean_gap_ms": round(s.mean_ms, 1),
                "samples": s.samples,
            }
            for s in self.streams.values()
        }


@dataclass
class ReplacementGovernor:
    """Back-off for every replacement cause, and a hard cap on the connection rate.

    ``delay_ms(now, healthy)``: ``healthy`` says whether the session being replaced was synced and
    stayed so for ``healthy_ms``. A healthy session resets the streak (the next replacement may be
    immediate); an unhealthy one doubles the delay (``base_ms`` .. ``max_ms``). Independently, no
    more than ``max_in_window`` replacements fall in any ``window_ms``.
    """

    base_ms: float = 250.0
    max_ms: float = 60_000.0
    healthy_ms: float = 1_500.0
    window_ms: float = 300_000.0
    max_in_window: int = 100
    streak: int = 0
    times: deque[int] = field(default_factory=deque)

    def delay_ms(self, now: int, healthy: bool) -> float:
        if healthy:
            self.streak = 0
        else:
            self.streak += 1
        delay = 0.0 if self.streak == 0 else min(self.max_ms, self.base_ms * 2 ** min(30, self.streak - 1))
        window = int(self.window_ms * _MS)
        times = self.times
        while times and now - times[0] >= window:
            times.popleft()
        if len(times) >= self.max_in_window:
            delay = max(delay, (times[0] + window - now) / _MS)
        times.append(now + int(delay * _MS))
        return delay
