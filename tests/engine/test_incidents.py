"""Incidents: when the state became untrustworthy, and how long it took to be correct again."""

from __future__ import annotations

from epochbot.engine.incidents import Incidents

MS = 1_000_000


def test_an_incident_lasts_from_its_first_cause_to_the_correct_state():
    incidents = Incidents()

    incidents.open(10 * MS)
    incidents.open(15 * MS)  # a second cause while the first is open moves nothing
    ttcr = incidents.close(40 * MS)

    assert ttcr == 30.0
    assert list(incidents.ttcr_ms) == [30.0]
    assert incidents.started_ns is None


def test_closing_without_an_open_incident_records_nothing():
    incidents = Incidents()

    assert incidents.close(5 * MS) is None
    assert not incidents.ttcr_ms


def test_confidence_below_the_normal_floor_opens_an_incident():
    incidents = Incidents()

    incidents.on_confidence(0.95, 1 * MS, normal_at=0.8)  # degraded but still normal: no incident
    untouched = incidents.started_ns
    incidents.on_confidence(0.5, 2 * MS, normal_at=0.8)

    assert untouched is None
    assert incidents.started_ns == 2 * MS


def test_full_confidence_never_opens_an_incident_even_with_a_floor_above_one():
    incidents = Incidents()

    incidents.on_confidence(1.0, 1 * MS, normal_at=1.5)

    assert incidents.started_ns is None


def test_the_history_of_incidents_is_bounded():
    incidents = Incidents(history=3)

    for i in range(5):
        incidents.open(0)
        incidents.close((i + 1) * MS)

    assert list(incidents.ttcr_ms) == [3.0, 4.0, 5.0]
