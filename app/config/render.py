"""`epochbot config show`: the merged settings as TOML or JSON, every secret masked.

Our own TOML writer: the standard library reads TOML but does not write it, and the output shows
unset optionals as ``# key = (unset)`` comments, which no writer library emits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from .settings import Settings

__all__ = ["MASK", "masked_dict", "render_settings", "secret_values"]

MASK = "********"


def secret_values(settings: Settings) -> list[str]:
    """The configured secret strings (for log redaction); never print this list."""
    out: list[str] = []
    for value in (settings.api_key, settings.api_secret, settings.control.token):
        if value is not None and value.get_secret_value():
            out.append(value.get_secret_value())
    return out


def masked_dict(settings: Settings) -> dict[str, Any]:
    """JSON-ready dict of the settings with every secret replaced by ``MASK``."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return MASK
        if isinstance(value, BaseModel):
            return {k: walk(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, Mapping):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, (Path, Decimal)):  # a money limit stays exact: the decimal string
            return str(value)
        return value

    data: dict[str, Any] = walk(settings)
    return data


def render_settings(settings: Settings, fmt: Literal["toml", "json"] = "toml") -> str:
    """The merged configuration as TOML (or JSON), secrets masked. Unset optionals are omitted
    from TOML (it has no null) and shown as comments."""
    data = masked_dict(settings)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    return _to_toml(data)


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_scalar(v)}" for k, v in value.items() if v is not None) + " }"
    return json.dumps(str(value))


def _toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else '"' + key.replace('"', '\\"') + '"'


def _to_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict) and key != "keys":  # sections become tables; key bindings stay inline
            tables.append((key, value))
        elif value is None:
            lines.append(f"# {_toml_key(key)} = (unset)")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_scalar(value)}")
    for key, table in tables:
        lines.append("")
        lines.append(f"[{key}]")
        for k, v in table.items():
            if v is None:
                lines.append(f"# {_toml_key(k)} = (unset)")
            else:
                lines.append(f"{_toml_key(k)} = {_toml_scalar(v)}")
    return "\n".join(lines) + "\n"
