"""The layers of the configuration, as pydantic-settings sources.

`Settings.settings_customise_sources` returns them highest first; pydantic-settings deep-merges
what each returns over the ones below it and validates the result once::

    command-line flags  >  EPOCHBOT_* environment  >  TOML file (--config)  >  secrets file  >  defaults

pydantic-settings does the merging, the ``__`` nesting and JSON decoding of the environment, the
TOML parsing and the case-insensitive field matching. What is ours, and why:

- `CommandLineSource` is pydantic-settings' `InitSettingsSource` over the flags our own argparse
  parser collected (`command_line_flags`), plus the refusal of secrets. pydantic-settings'
  `CliSettingsSource` would generate a flag for every field (``--sim.seed``, ``--api_key`` too)
  in its own parser; the command line is a curated set of short flags beside sub-commands, so it
  stays argparse and enters here as init values.
- `EnvironmentSource` is `EnvSettingsSource` reading a given mapping (tests and `ctl` pass one)
  rather than ``os.environ``, and naming the variable when its JSON does not decode.
- `ConfigFileSource` is `TomlConfigSettingsSource` that refuses a missing or unreadable file and
  any secret, each in one line (pydantic-settings skips a missing file silently).
- `SecretsFileSource` is ours: its path comes from the layers above it (``secrets_file`` may be a
  flag, a variable or a TOML key), it refuses a file that group/others can read, and it admits the
  secrets only. pydantic-settings' ``secrets_dir`` (a file per field) is a different format.

A load (`load_settings`) passes its file and environment to the sources through `loading`, a
context variable: ``settings_customise_sources`` is a class method and has no other way in.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from .errors import ENV_PREFIX, SECRET_PATHS, ConfigError, refused_on_command_line, secret_refused

__all__ = [
    "CommandLineSource",
    "ConfigFileSource",
    "EnvironmentSource",
    "LoadRequest",
    "SecretsFileSource",
    "command_line_flags",
    "env_value",
    "layers",
    "loading",
]


@dataclass(frozen=True)
class LoadRequest:
    """What one load reads besides the flags: the ``--config`` file and the environment."""

    config_path: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)


_REQUEST: ContextVar[LoadRequest | None] = ContextVar("epochbot_settings_load", default=None)


@contextmanager
def loading(request: LoadRequest) -> Iterator[None]:
    """Settings built inside this block read ``request``'s file and environment."""
    token = _REQUEST.set(request)
    try:
        yield
    finally:
        _REQUEST.reset(token)


def layers(
    settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of one load, highest precedence first."""
    request = _REQUEST.get() or LoadRequest(config_path=_config_from_env(os.environ))
    flags = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
    out: list[PydanticBaseSettingsSource] = [
        CommandLineSource(settings_cls, flags),
        EnvironmentSource(settings_cls, request.environ),
    ]
    if request.config_path is not None:
        out.append(ConfigFileSource(settings_cls, request.config_path))
    out.append(SecretsFileSource(settings_cls))
    return tuple(out)


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """``EPOCHBOT_<name>`` from ``environ``, matched case-insensitively like every setting."""
    wanted = (ENV_PREFIX + name).upper()
    for key, value in environ.items():
        if key.upper() == wanted:
            return value
    return None


def _config_from_env(environ: Mapping[str, str]) -> Path | None:
    path = env_value(environ, "CONFIG")
    return Path(path) if path else None


def _get_path(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


# ---------------------------------------------------------------------- command line


def command_line_flags(named: Mapping[str, Any], assignments: Iterable[str] = ()) -> dict[str, Any]:
    """The command line's settings as a nested dict: ``--set KEY=VALUE`` items, then the named
    flags (``{"control.port": "0"}``) over them.

    Raises:
        ConfigError: a ``--set`` item without ``=`` or two flags that disagree on a section.
    """
    flags: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. confidence.silence_replace_ms=2000")
        _put(flags, key.strip(), value)
    for dotted, value in named.items():
        _put(flags, dotted, value)
    return flags


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: conflicts with another flag")
    node[parts[-1]] = value


class CommandLineSource(InitSettingsSource):
    """The command-line flags (a nested dict): the highest layer. Secrets are refused: a command
    line is visible in ``ps`` and in shell history."""

    def __init__(self, settings_cls: type[BaseSettings], flags: Mapping[str, Any]) -> None:
        for secret in SECRET_PATHS:
            if _get_path(flags, secret) is not None:
                raise refused_on_command_line(secret)
        super().__init__(settings_cls, dict(flags))


# ---------------------------------------------------------------------- environment


class EnvironmentSource(EnvSettingsSource):
    """``EPOCHBOT_*`` variables of ``environ`` (prefix, ``__`` nesting, case from the model config).

    Variables that name no setting (``EPOCHBOT_SIM_ACCOUNTS`` belongs to ``epochbot sim``,
    ``EPOCHBOT_CONFIG`` names the file) are ignored, as pydantic-settings does for any unknown name.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._undecodable: tuple[str, str] | None = None
        super().__init__(settings_cls)
        self._check_names(settings_cls)

    def _check_names(self, settings_cls: type[BaseSettings]) -> None:
        """Refuse ``EPOCHBOT_A____B`` and ``EPOCHBOT_A`` beside ``EPOCHBOT_A__B`` in words (pydantic-settings
        would report an empty or a non-dict setting)."""
        prefix, delimiter = ENV_PREFIX.lower(), str(self.env_nested_delimiter)
        paths: dict[tuple[str, ...], str] = {}
        for key in self._environ:
            lower = key.lower()
            if not lower.startswith(prefix):
                continue
            path = tuple(lower[len(prefix) :].split(delimiter))
            if path[0] not in settings_cls.model_fields:
                continue
            if any(not part for part in path):
                raise ConfigError(f"{key}: malformed variable name")
            paths[path] = key
        for path, key in paths.items():
            for cut in range(1, len(path)):
                outer = paths.get(path[:cut])
                if outer is not None and not self._environ[outer].lstrip().startswith("{"):  # JSON objects merge
                    raise ConfigError(f"{key}: conflicts with {outer.upper()}")

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The one hook EnvSettingsSource offers for where variables come from (it reads os.environ).
        if self.case_sensitive:
            return dict(self._environ)
        return {key.lower(): value for key, value in self._environ.items()}

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and not value.lstrip().startswith(("{", "[")):
            return value  # not meant as JSON: validation says what the field wants, naming it
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            self._undecodable = (field_name, value)
            raise

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SettingsError:
            raise ConfigError(f"{self._undecodable_name()}: invalid JSON") from None

    def _undecodable_name(self) -> str:
        """The variable whose JSON failed (EnvSettingsSource only says which top-level field)."""
        if self._undecodable is not None:
            last, value = self._undecodable
            suffix = last.lower()
            for key, candidate in self._environ.items():
                lower = key.lower()
                if candidate == value and lower.startswith(ENV_PREFIX.lower()) and lower.endswith(suffix):
                    return key.upper()
        return f"{ENV_PREFIX}*"


# ---------------------------------------------------------------------- files


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; every failure a one-line `ConfigError` starting with ``what``."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what}: no such file: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what}: is a directory: {path}") from None
    except PermissionError:
        raise ConfigError(f"{what}: permission denied: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: {path}: invalid TOML: {exc}") from None


class ConfigFileSource(TomlConfigSettingsSource):
    """The ``--config`` TOML file. It must exist, and must hold no secret (config files get
    copied, pasted and committed)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        if not path.is_file():  # pydantic-settings would skip it silently; an operator named it
            read_toml(path, "config")  # raises the one-line error for a missing file or a directory
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        path = Path(file_path)
        data = read_toml(path, "config")
        for secret in SECRET_PATHS:
            if _get_path(data, secret) is not None:
                raise secret_refused(secret, f"in the config file {path}")
        return data


class SecretsFileSource(PydanticBaseSettingsSource):
    """``secrets_file``: a TOML file with ``api_key``, ``api_secret`` and ``[control] token`` only,
    which group and others must not be able to read. Lowest layer: the environment overrides it,
    and the TOML file never shares a key with it (secrets are refused there). Its path is whatever
    the layers above it say ``secrets_file`` is."""

    ALLOWED = frozenset({"api_key", "api_secret", "control"})

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the whole file is read in __call__

    def __call__(self) -> dict[str, Any]:
        path = self.current_state.get("secrets_file")
        if not path:
            return {}
        return self.read(Path(path))

    @classmethod
    def read(cls, path: Path) -> dict[str, Any]:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"secrets_file: no such file: {path}") from None
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"secrets_file: {path} is accessible by group/others (mode {stat.S_IMODE(mode):o}); "
                f"run chmod 600 {path}"
            )
        data = read_toml(path, "secrets_file")
        for key, value in data.items():
            if key not in cls.ALLOWED or (
                key == "control" and (not isinstance(value, Mapping) or set(value) - {"token"})
            ):
                raise ConfigError(
                    f"secrets_file: only api_key, api_secret and [control] token belong there, found {key!r}"
                )
        return data
