"""Configuration: one validated `Settings` object from four layers.

Precedence, lowest to highest::

    defaults  <  TOML file (--config PATH)  <  EPOCHBOT_* environment  <  command-line flags

Nested sections use ``__`` in the environment (``EPOCHBOT_CONFIDENCE__SILENCE_REPLACE_MS=2000``)
and a dotted ``--set section.key=value`` on the command line.

Secrets (``api_key``, ``api_secret``, ``control.token``) are `SecretStr` and come only from the
environment or from ``secrets_file`` (a TOML file that must not be readable by group/others). They
are refused in the config file (config files get copied, pasted and committed) and on the command
line (visible in ``ps`` and shell history). Nothing in this package ever formats a secret's value:
error messages name the field, never echo its input.

Any invalid value raises `ConfigError` whose message is one line naming the field and the
problem; the CLI prints ``config error: <message>`` and exits 78 (EX_CONFIG).

The package: settings.py (the models and `load_settings`), sources.py (the layers, as
pydantic-settings sources), render.py (``config show``, secrets masked), to_core.py (settings ->
the core's `RuntimeConfig`, `EngineConfig`, ...), errors.py (`ConfigError`).
"""

from .errors import ENV_PREFIX, ConfigError
from .render import MASK, masked_dict, render_settings, secret_values
from .settings import DEFAULT_KEYS, VENUE_NAMES, Settings, load_settings
from .sources import command_line_flags
from .to_core import SIM_STORAGE, engine_config, journal_config, sim_storage, to_runtime_config, trading_config

__all__ = [
    "DEFAULT_KEYS",
    "ENV_PREFIX",
    "MASK",
    "SIM_STORAGE",
    "VENUE_NAMES",
    "ConfigError",
    "Settings",
    "command_line_flags",
    "engine_config",
    "journal_config",
    "load_settings",
    "masked_dict",
    "render_settings",
    "secret_values",
    "sim_storage",
    "to_runtime_config",
    "trading_config",
]
