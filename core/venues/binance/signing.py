"""Request signing for Binance: HMAC-SHA256, RSA (PKCS#1 v1.5, SHA-256) and Ed25519 keys.

Binance accepts three key types ("SIGNED endpoint security"):

* HMAC: the secret is a plain string; the signature is the lowercase hex HMAC-SHA256.
* RSA: the secret is a PEM private key; the signature is base64 of PKCS#1 v1.5 over SHA-256.
* Ed25519: the secret is a PEM private key; the signature is base64 of the Ed25519 signature.
  Only Ed25519 keys may ``session.logon`` on the WebSocket API (and so use
  ``userDataStream.subscribe``).

What is signed:

* REST: *totalParams*, the query string concatenated with the body, exactly as sent.
  Base64 signatures contain ``+/=`` and are percent-encoded in the query string.
* WebSocket API: every parameter except ``signature``, sorted by name, as ``name=value`` joined
  by ``&`` (booleans as ``true``/``false``), not percent-encoded (`ws_payload`).

The key type is told by the secret itself (a PEM block is RSA or Ed25519, anything else is an
HMAC secret), so configuration needs no extra field. Secrets never appear in a repr or error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["Signer", "ws_payload"]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ws_payload(params: dict[str, Any]) -> str:
    """The WebSocket API signature payload of ``params`` (``signature`` itself excluded)."""
    return "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")


class Signer:
    """Signs payloads with one API key's secret; ``key_type`` is ``hmac``, ``rsa`` or ``ed25519``."""

    __slots__ = ("api_key", "key_type", "_secret", "_private")

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key = api_key
        self._secret = secret
        self._private: Ed25519PrivateKey | RSAPrivateKey | None = None
        if "PRIVATE KEY-----" in secret:
            from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            try:
                key = load_pem_private_key(secret.strip().encode(), password=None)
            except (ValueError, TypeError):
                raise ValueError(
                    "api_secret looks like a PEM private key but cannot be read (unencrypted PKCS#8 expected)"
                ) from None
            if isinstance(key, ed25519.Ed25519PrivateKey):
                self.key_type = "ed25519"
            elif isinstance(key, rsa.RSAPrivateKey):
                self.key_type = "rsa"
            else:
                raise ValueError("api_secret: only Ed25519 and RSA private keys are accepted by Binance")
            self._private = key
        else:
            self.key_type = "hmac"

    def __repr__(self) -> str:
        return f"Signer(api_key={self.api_key!r}, key_type={self.key_type!r}, secret='***')"

    def sign(self, payload: str) -> str:
        """The signature of ``payload`` as Binance expects it for this key type."""
        if self.key_type == "hmac":
            return hmac.new(self._secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

        key = self._private
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return base64.b64encode(key.sign(payload.encode())).decode()
        if isinstance(key, rsa.RSAPrivateKey):
            return base64.b64encode(key.sign(payload.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
        raise AssertionError(f"signer of key type {self.key_type} holds no private key")  # a defect of ours

    def sign_ws(self, params: dict[str, Any], timestamp_ms: int, recv_window_ms: int | None = None) -> dict[str, Any]:
        """``params`` plus ``apiKey``, ``timestamp`` (and ``recvWindow``) and their ``signature``."""
        out = dict(params)
        out["apiKey"] = self.api_key
        out["timestamp"] = int(timestamp_ms)
        if recv_window_ms is not None:
            out["recvWindow"] = int(recv_window_ms)
        out["signature"] = self.sign(ws_payload(out))
        return out
