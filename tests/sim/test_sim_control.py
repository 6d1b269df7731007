"""The control API's own checks (`/_sim/fault` and `/_sim/market` bodies), without a server."""

from __future__ import annotations

import orjson
import pytest

from epochbot.sim.control import ControlError, fault_spec, market_request


def test_a_fault_body_that_is_an_object_is_the_fault_description():
    assert fault_spec(b'{"kind": "gap", "skip": 3}') == {"kind": "gap", "skip": 3}


@pytest.mark.parametrize("raw", [b"[1]", b'"gap"', b"7", b"null"])
def test_a_fault_body_that_is_not_an_object_names_no_kind(raw):
    assert fault_spec(raw) == {"kind": None}


def test_a_fault_body_that_is_not_json_is_a_decode_error():
    with pytest.raises(orjson.JSONDecodeError):
        fault_spec(b"{bad")


def test_a_market_body_pauses_for_a_while_or_resumes():
    assert market_request(b'{"paused": true, "duration_s": 2.5}') == (True, 2.5)
    assert market_request(b'{"paused": false}') == (False, None)


@pytest.mark.parametrize(
    "raw",
    [b'{"paused": "yes"}', b'{"duration_s": 3}', b'{"paused": true, "speed": 1}', b"[true]", b'{"paused": 1}'],
)
def test_a_market_body_of_the_wrong_shape_is_refused_with_the_known_fields(raw):
    with pytest.raises(ControlError) as info:
        market_request(raw)

    assert info.value.body == {
        "error": 'body must be {"paused": true|false[, "duration_s": seconds]}',
        "known": ["paused", "duration_s"],
    }


@pytest.mark.parametrize("duration", [-1, 86_401, "5", True, 1e300])
def test_a_market_pause_duration_is_range_checked_like_a_fault_duration(duration):
    with pytest.raises(ControlError) as info:
        market_request(orjson.dumps({"paused": True, "duration_s": duration}))

    assert "duration_s" in info.value.body["error"] and info.value.body["known"] == ["paused", "duration_s"]


def test_a_market_body_that_is_not_json_says_why():
    with pytest.raises(ControlError) as info:
        market_request(b"nah")

    assert list(info.value.body) == ["error"] and "line 1" in info.value.body["error"]
