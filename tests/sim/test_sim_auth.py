"""Signed-request authentication of the embedded simulator, by Binance's documented rules."""

from __future__ import annotations

import pytest

from epochbot.sim.auth import Credentials, SimApiError, load_accounts, sign, verify_api_key, verify_signed

NOW = 1_700_000_000_000
ACCOUNTS = load_accounts("alice:alice-secret-XYZ,bob:bob-secret-QRS")


def signed_query(params: str, secret: str = "alice-secret-XYZ") -> str:
    return f"{params}&signature={sign(secret, params)}"


def verify(query: str = "", body: str = "", key: str | None = "alice", now: int = NOW):
    return verify_signed(api_key=key, query_string=query, body=body, accounts=ACCOUNTS, now_ms=now)


def test_default_spec_gives_the_single_paper_account():
    accounts = load_accounts(None)

    assert accounts == {"sim-key": Credentials("sim-key", "sim-secret", "acct-1")}
    assert load_accounts("") == accounts


def test_accounts_are_numbered_in_the_order_given():
    assert [c.account_id for c in ACCOUNTS.values()] == ["acct-1", "acct-2"]
    assert ACCOUNTS["bob"].secret == "bob-secret-QRS"


@pytest.mark.parametrize(
    "spec", ["alice", "alice:", ":s3cr3t-value", "a b:s3cr3t-value", "k:s3cr3t-value,k:s3cr3t-value"]
)
def test_malformed_spec_is_rejected_without_revealing_a_secret(spec):
    with pytest.raises(ValueError) as info:
        load_accounts(spec)

    assert "s3cr3t" not in str(info.value)


def test_credentials_repr_masks_the_secret():
    text = repr(ACCOUNTS["alice"]) + str(ACCOUNTS["alice"])

    assert "alice-secret-XYZ" not in text
    assert "***" in text


def test_valid_signature_in_query_returns_account_and_params_without_signature():
    query = signed_query(f"symbol=BTCUSDT&side=BUY&quantity=0.001&timestamp={NOW}")

    creds, params = verify(query)

    assert creds.account_id == "acct-1"
    assert params == {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "timestamp": str(NOW)}


def test_total_params_is_query_concatenated_with_body_without_separator():
    query, body = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
        f"quantity=1&price=0.1&recvWindow=5000&timestamp={NOW}",
    )
    signature = sign("alice-secret-XYZ", query + body)

    creds, params = verify(query, f"{body}&signature={signature}")

    assert creds.api_key == "alice"
    assert params["timeInForce"] == "GTC" and params["price"] == "0.1"


def test_signature_of_another_secret_is_rejected_with_minus_1022():
    query = signed_query(f"symbol=BTCUSDT&timestamp={NOW}", secret="bob-secret-QRS")

    with pytest.raises(SimApiError) as info:
        verify(query)

    assert info.value.to_json() == {"code": -1022, "msg": "Signature for this request is not valid."}
    assert "secret" not in info.value.msg


def test_tampered_parameter_breaks_the_signature():
    query = signed_query(f"symbol=BTCUSDT&quantity=1&timestamp={NOW}").replace("quantity=1", "quantity=9")

    with pytest.raises(SimApiError) as info:
        verify(query)

    assert info.value.code == -1022


def test_missing_signature_is_a_missing_mandatory_parameter():
    with pytest.raises(SimApiError) as info:
        verify(f"symbol=BTCUSDT&timestamp={NOW}")

    assert info.value.code == -1102 and "signature" in info.value.msg


def test_missing_timestamp_is_rejected_with_minus_1102():
    with pytest.raises(SimApiError) as info:
        verify(signed_query("symbol=BTCUSDT"))

    assert info.value.code == -1102 and "timestamp" in info.value.msg


@pytest.mark.parametrize(
    ("timestamp", "recv_window", "accepted"),
    [
        (NOW - 5000, None, True),
        (NOW - 5001, None, False),
        (NOW + 1000, None, True),
        (NOW + 1001, None, False),
        (NOW - 59_000, "60000", True),
        (NOW - 100, "50", False),
    ],
)
def test_timestamp_must_fall_inside_the_recv_window(timestamp, recv_window, accepted):
    params = f"symbol=BTCUSDT&timestamp={timestamp}" + (f"&recvWindow={recv_window}" if recv_window else "")

    if accepted:
        verify(signed_query(params))
    else:
        with pytest.raises(SimApiError) as info:
            verify(signed_query(params))
        assert info.value.to_json() == {
            "code": -1021,
            "msg": "Timestamp for this request is outside of the recvWindow.",
        }


def test_recv_window_above_60000_is_rejected():
    with pytest.raises(SimApiError) as info:
        verify(signed_query(f"timestamp={NOW}&recvWindow=60001"))

    assert info.value.code == -1131


def test_missing_api_key_is_minus_2014_with_http_401():
    with pytest.raises(SimApiError) as info:
        verify(signed_query(f"timestamp={NOW}"), key=None)

    assert (info.value.code, info.value.http_status) == (-2014, 401)


def test_unknown_api_key_is_minus_2015_with_http_401():
    with pytest.raises(SimApiError) as info:
        verify(signed_query(f"timestamp={NOW}"), key="mallory")

    assert (info.value.code, info.value.http_status) == (-2015, 401)


def test_api_key_only_endpoints_resolve_the_account():
    assert verify_api_key("bob", ACCOUNTS).account_id == "acct-2"
    with pytest.raises(SimApiError):
        verify_api_key("", ACCOUNTS)


def test_parameter_sent_in_both_query_and_body_takes_the_query_value():
    # rest-api.md: "If a parameter sent in both the query string and request body, the query
    # string parameter will be used." The signature still covers query + body.
    query, body = "symbol=BTCUSDT", f"symbol=ETHUSDT&timestamp={NOW}"
    signature = sign("alice-secret-XYZ", query + body)

    _, params = verify(query, f"{body}&signature={signature}")

    assert params["symbol"] == "BTCUSDT"


def test_parameter_sent_twice_in_the_query_string_is_rejected():
    query = f"symbol=BTCUSDT&symbol=ETHUSDT&timestamp={NOW}"

    with pytest.raises(SimApiError) as info:
        verify(signed_query(query))

    assert info.value.code == -1101


def test_api_error_carries_status_and_headers():
    error = SimApiError(-1003, "Too many requests.", 429, {"Retry-After": "1"})

    assert (error.http_status, error.headers, error.to_json()["code"]) == (429, {"Retry-After": "1"}, -1003)
