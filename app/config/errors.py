"""`ConfigError` and the one-line rendering of a validation failure."""

from __future__ import annotations

from pydantic import ValidationError

ENV_PREFIX = "EPOCHBOT_"
# Dotted paths of the secrets: refused in the config file and on the command line, never echoed.
SECRET_PATHS = ("api_key", "api_secret", "control.token")


class ConfigError(ValueError):
    """An invalid configuration; ``str()`` is one line, safe to print (never contains a secret)."""


def env_name(dotted: str) -> str:
    """The environment variable of a dotted setting path (``control.token`` -> ``EPOCHBOT_CONTROL__TOKEN``)."""
    return ENV_PREFIX + dotted.replace(".", "__").upper()


def secret_refused(secret: str, where: str) -> ConfigError:
    """The error for a secret found ``where`` it must not be (the command line, a config file)."""
    return ConfigError(f"{secret}: secrets are not accepted {where}; use {env_name(secret)} or secrets_file")


def refused_on_command_line(secret: str) -> ConfigError:
    return secret_refused(secret, "on the command line (visible in ps and shell history)")


def one_line(exc: ValidationError) -> str:
    """Every error of ``exc`` as ``field.path: problem`` on one line, joined by ``; ``.

    The offending value is echoed to help the operator, except where the field is (or might be,
    for a misspelt name) a secret.
    """
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        value = err.get("input")
        secret = any(loc == s or loc.startswith(s + ".") for s in SECRET_PATHS) or "token" in loc or "secret" in loc
        if err["type"] == "extra_forbidden":
            secret = True  # a misspelt secret name must not be echoed either
        if not secret and "got " not in msg and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            msg = f"{msg}, got {value!r}"
        if not loc:
            parts.append(msg)
        elif msg.startswith(loc.split(".")[-1] + ":") or msg.startswith(loc + ":"):
            parts.append(msg)
        else:
            parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
