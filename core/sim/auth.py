"""Request authentication for the embedded Binance simulator, by Binance's documented rules.

Pure functions: the caller passes the raw query string, the raw body, the ``X-MBX-APIKEY``
header and the current time in milliseconds; nothing here reads a clock or a socket.

Rules (Binance "SIGNED (TRADE, USER_DATA and MARGIN) Endpoint security"):

- The API key travels in the ``X-MBX-APIKEY`` header. Missing or malformed -> ``-2014``,
  unknown -> ``-2015`` (both HTTP 401 here).
- ``signature`` is the lowercase hex HMAC-SHA256 of *totalParams*, keyed by the secret (HMAC
  keys), or base64 of an RSA (PKCS#1 v1.5, SHA-256) or Ed25519 signature over the same payload
  (asymmetric keys: the account holds the public key, `verify_signature`).
  "totalParams is defined as the query string concatenated with the request body", with
  no separator, and without the ``signature`` parameter itself. The signature may be sent in
  the query string or in the body. A mismatch is ``-1022``.
- ``timestamp`` is mandatory (``-1102``). ``recvWindow`` defaults to 5000 and may not exceed
  60000 (``-1131``). The request is rejected with ``-1021`` when
  ``timestamp < now - recvWindow`` or ``timestamp > now + 1000``.

Secrets never appear in a repr, an exception message or a log line produced here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "Credentials",
    "SimApiError",
    "load_accounts",
    "sign",
    "verify_api_key",
    "verify_signature",
    "verify_signed",
]

DEFAULT_API_KEY = "sim-key"
DEFAULT_SECRET = "sim-secret"

RECV_WINDOW_DEFAULT_MS = 5000
RECV_WINDOW_MAX_MS = 60000
# Binance accepts timestamps up to one second ahead of its own clock.
FUTURE_TOLERANCE_MS = 1000

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_TIMESTAMP_PATTERN = re.compile(r"^[0-9]{1,20}$")


class SimApiError(Exception):
    """A Binance-style API error: ``{"code": -1022, "msg": "..."}`` with its HTTP status."""

    def __init__(self, code: int, msg: str, http_status: int = 400, headers: dict | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.headers = dict(headers) if headers else {}

    def to_json(self) -> dict:
        return {"code": self.code, "msg": self.msg}


@dataclass(frozen=True)
class Credentials:
    """One paper account's API key. The secret is masked in ``repr``.

    ``key_type`` is ``hmac`` (``secret`` is the shared secret), ``ed25519`` or ``rsa``
    (``secret`` is the base64 DER SubjectPublicKeyInfo of the account's public key: Binance
    holds only the public half of an asymmetric key).
    """

    api_key: str
    secret: str = field(repr=False)
    account_id: str
    key_type: str = "hmac"

    def __repr__(self) -> str:
        return (
            f"Credentials(api_key={self.api_key!r}, key_type={self.key_type!r}, secret='***', "
            f"account_id={self.account_id!r})"
        )


def verify_signature(creds: Credentials, payload: str, signature: str) -> bool:
    """Whether ``signature`` signs ``payload`` with ``creds``' key (constant time for HMAC)."""
    if creds.key_type == "hmac":
        given = signature.lower()
        return given.isascii() and hmac.compare_digest(sign(creds.secret, payload).encode(), given.encode())
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        raw = base64.b64decode(signature, validate=True)
        key = load_der_public_key(base64.b64decode(creds.secret))
        if creds.key_type == "ed25519":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(raw, payload.encode())
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(raw, payload.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError, binascii.Error, AttributeError):
        return False
    return True


def sign(secret: str, total_params: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``total_params`` keyed by ``secret`` (what clients send)."""
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


def load_accounts(spec: str | None) -> dict[str, Credentials]:
    """Parse ``"KEY:SECRET[,KEY2:SECRET2]"`` into credentials keyed by API key.

    An asymmetric key is given by its public half: ``KEY:ed25519:<base64 DER public key>`` or
    ``KEY:rsa:<base64 DER public key>`` (what ``openssl pkey -pubout -outform DER | base64``
    prints; no secret at all is then configured in the simulator).

    Account ids are ``acct-1``, ``acct-2``... in the order given. ``None`` or ``""`` gives the
    single default paper account (``sim-key`` / ``sim-secret`` / ``acct-1``).

    Raises:
        ValueError: for a malformed spec. The message names the entry by position and never
            includes a secret.
    """
    if spec is None or not spec.strip():
        return {DEFAULT_API_KEY: Credentials(DEFAULT_API_KEY, DEFAULT_SECRET, "acct-1")}
    accounts: dict[str, Credentials] = {}
    for n, entry in enumerate(spec.split(","), start=1):
        key, colon, secret = entry.strip().partition(":")
        if not colon or not key or not secret:
            raise ValueError(f"sim account entry #{n} is not of the form KEY:SECRET")
        if not _KEY_PATTERN.match(key):
            raise ValueError(f"sim account entry #{n}: API key has characters outside [A-Za-z0-9_.-]")
        if any(ch.isspace() for ch in secret):
            raise ValueError(f"sim account entry #{n} ({key}): secret contains whitespace")
        if key in accounts:
            raise ValueError(f"sim account entry #{n}: API key {key} is listed twice")
        key_type, _, public = secret.partition(":")
        if key_type in ("ed25519", "rsa") and public:
            _check_public_key(n, key, key_type, public)
            accounts[key] = Credentials(key, public, f"acct-{n}", key_type)
        else:
            accounts[key] = Credentials(key, secret, f"acct-{n}")
    return accounts


def _check_public_key(n: int, key: str, key_type: str, public: str) -> None:
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        loaded = load_der_public_key(base64.b64decode(public, validate=True))
    except (ValueError, binascii.Error):
        raise ValueError(f"sim account entry #{n} ({key}): not a base64 DER public key") from None
    wanted = ed25519.Ed25519PublicKey if key_type == "ed25519" else rsa.RSAPublicKey
    if not isinstance(loaded, wanted):
        raise ValueError(f"sim account entry #{n} ({key}): the public key is not {key_type}")


def verify_api_key(api_key: str | None, accounts: dict[str, Credentials]) -> Credentials:
    """Resolve the ``X-MBX-APIKEY`` header (for USER_STREAM endpoints that need only the key)."""
    if not api_key or not _KEY_PATTERN.match(api_key):
        raise SimApiError(-2014, "API-key format invalid.", 401)
    creds = accounts.get(api_key)
    if creds is None:
        raise SimApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return creds


def _strip_signature(raw: str) -> tuple[str, list[str]]:
    """Remove every ``signature=`` component from a raw urlencoded string, keeping the rest byte-exact."""
    kept: list[str] = []
    signatures: list[str] = []
    if not raw:
        return "", signatures
    for piece in raw.split("&"):
        if piece.startswith("signature="):
            signatures.append(piece[len("signature=") :])
        else:
            kept.append(piece)
    return "&".join(kept), signatures


def _missing(name: str) -> SimApiError:
    return SimApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def verify_signed(
    *,
    api_key: str | None,
    query_string: str,
    body: str,
    accounts: dict[str, Credentials],
    now_ms: int,
) -> tuple[Credentials, dict[str, str]]:
    """Authenticate a SIGNED request.

    Args:
        api_key: the ``X-MBX-APIKEY`` header, or None when absent.
        query_string: the raw (still percent-encoded) query string, without ``?``.
        body: the raw ``application/x-www-form-urlencoded`` body ("" when none).
        accounts: from ``load_accounts``.
        now_ms: the simulator's clock.

    Returns:
        The caller's credentials and the merged query+body parameters without ``signature``.

    Raises:
        SimApiError: -2014/-2015 (key), -1101 (a parameter twice in the query string or twice in
            the body; in both, the query string's wins), -1102 (missing
            timestamp/signature), -1100/-1131 (bad timestamp/recvWindow), -1022 (bad
            signature), -1021 (outside recvWindow).
    """
    creds = verify_api_key(api_key, accounts)

    query_unsigned, query_sigs = _strip_signature(query_string or "")
    body_unsigned, body_sigs = _strip_signature(body or "")
    signatures = query_sigs + body_sigs

    # rest-api.md: "If a parameter sent in both the query string and request body, the query
    # string parameter will be used." Twice within one of them is -1101.
    params: dict[str, str] = {}
    for raw in (body_unsigned, query_unsigned):
        seen: set[str] = set()
        for name, value in parse_qsl(raw, keep_blank_values=True):
            if name in seen:
                raise SimApiError(-1101, f"Duplicate values for parameter '{name}'.")
            seen.add(name)
            params[name] = value

    timestamp_text = params.get("timestamp", "")
    if not timestamp_text:
        raise _missing("timestamp")
    if not _TIMESTAMP_PATTERN.match(timestamp_text):
        raise SimApiError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.")
    recv_window_text = params.get("recvWindow")
    if recv_window_text is None or recv_window_text == "":
        recv_window = RECV_WINDOW_DEFAULT_MS
    elif _TIMESTAMP_PATTERN.match(recv_window_text):
        recv_window = int(recv_window_text)
    else:
        raise SimApiError(-1100, "Illegal characters found in parameter 'recvWindow'; legal range is '^[0-9]{1,20}$'.")
    if recv_window > RECV_WINDOW_MAX_MS:
        raise SimApiError(-1131, "recvWindow must be less than 60000")

    if len(signatures) != 1 or not signatures[0]:
        if len(signatures) > 1:
            raise SimApiError(-1101, "Duplicate values for parameter 'signature'.")
        raise _missing("signature")
    given = signatures[0] if creds.key_type == "hmac" else unquote(signatures[0])
    if not verify_signature(creds, query_unsigned + body_unsigned, given):
        raise SimApiError(-1022, "Signature for this request is not valid.")

    timestamp = int(timestamp_text)
    if timestamp < now_ms - recv_window or timestamp > now_ms + FUTURE_TOLERANCE_MS:
        raise SimApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
    return creds, params
