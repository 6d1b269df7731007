"""Configuration: layering, validation, secrets."""

from __future__ import annotations

import json
import os

import pytest

from epochbot.app.config import MASK, ConfigError, engine_config, load_settings, render_settings, to_runtime_config
from tests.app.conftest import TOKEN, run_cli

SECRET_KEY = "AKIAsecretkey0123456789"
SECRET_SECRET = "shhh-api-secret-9876543210"


def write(path, text: str, mode: int = 0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_defaults_apply_when_no_layer_sets_a_value():
    settings = load_settings(env={})

    assert settings.venue == "sim"
    assert settings.symbols == ("BTCUSDT", "ETHUSDT")
    assert settings.confidence.silence_replace_ms == 1500.0
    assert settings.control.port == 8780
    assert settings.control.token is None
    assert settings.status_interval_s == 5.0
    assert settings.keys["force_resync"] == "r" and settings.keys["quit"] == "q"


def test_each_layer_overrides_the_one_below_defaults_toml_env_flags(tmp_path):
    toml = write(
        tmp_path / "c.toml",
        'symbols = ["SOLUSDT"]\nstatus_interval_s = 2\nlog_level = "debug"\n[control]\nport = 9001\n',
    )
    env = {"EPOCHBOT_STATUS_INTERVAL_S": "3", "EPOCHBOT_CONTROL__PORT": "9002"}
    flags = {"control": {"port": 9003}}

    settings = load_settings(toml, flags, env)

    assert settings.symbols == ("SOLUSDT",)  # TOML over default
    assert settings.log_level == "debug"  # TOML over default
    assert settings.status_interval_s == 3.0  # env over TOML
    assert settings.control.port == 9003  # flag over env over TOML


def test_nested_environment_variables_use_double_underscore():
    env = {
        "EPOCHBOT_CONFIDENCE__SILENCE_REPLACE_MS": "2500",
        "EPOCHBOT_CONFIDENCE__FACTORS__MARKET_SILENCE_MS__WARN": "700",
        "EPOCHBOT_MODES__RECOVERY_HOLD_MS": "500",
        "EPOCHBOT_KEYS__QUIT": "x",
    }

    settings = load_settings(env=env)

    assert settings.confidence.silence_replace_ms == 2500.0
    assert settings.confidence.factors["market_silence_ms"].warn == 700.0
    assert settings.modes.recovery_hold_ms == 500.0
    assert settings.keys["quit"] == "x" and settings.keys["halt"] == "h"


def test_symbols_accept_a_comma_separated_string_from_env_or_flags():
    assert load_settings(env={"EPOCHBOT_SYMBOLS": "BTCUSDT, SOLUSDT"}).symbols == ("BTCUSDT", "SOLUSDT")
    assert load_settings(flags={"symbols": "ETHUSDT"}, env={}).symbols == ("ETHUSDT",)


def test_environment_names_of_other_tools_are_ignored():
    settings = load_settings(env={"EPOCHBOT_SIM_ACCOUNTS": "k:s", "PATH": "/bin"})

    assert settings.venue == "sim"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"EPOCHBOT_SYMBOLS": "btc usdt"}, "symbols: must be uppercase symbols like BTCUSDT, got 'btc usdt'"),
        (
            {"EPOCHBOT_CONFIDENCE__SILENCE_REPLACE_MS": "-5"},
            "confidence.silence_replace_ms: Input should be greater than 0, got '-5'",
        ),
        (
            {"EPOCHBOT_VENUE": "kraken"},
            "venue: Input should be 'sim', 'binance-spot', 'binance-usdm', 'binance-spot-testnet' or "
            "'binance-usdm-testnet', got 'kraken'",
        ),
        ({"EPOCHBOT_CONTROL__HOST": "0.0.0.0"}, "control.host: the control endpoint binds 127.0.0.1 only"),
        (
            {"EPOCHBOT_MODES__NORMAL_AT": "0.1"},
            "modes: floors must satisfy normal_at >= reduce_only_at >= cancel_makers_at",
        ),
        (
            {"EPOCHBOT_VENUE": "binance-spot", "EPOCHBOT_MARKET": "usdm"},
            "market: venue binance-spot is spot, got market 'usdm'",
        ),
        ({"EPOCHBOT_REST_URL": "http://127.0.0.1:1"}, "rest_url and ws_url: set both or neither"),
        ({"EPOCHBOT_KEYS__QUIT": "r"}, "keys: key 'r' bound to both force_resync and quit"),
        ({"EPOCHBOT_CONFIDENCE__BOGUS": "1"}, "confidence.bogus: unknown setting"),
        ({"EPOCHBOT_RESYNC__SNAPSHOT_LIMIT": "7"}, "resync.snapshot_limit: must be one of Binance's depth limits"),
    ],
)
def test_invalid_values_give_one_line_naming_the_field_and_the_problem(env, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)

    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_invalid_config_exits_78_with_one_clear_line_on_stderr():
    result = run_cli("--headless", "--symbols", "btc usdt")

    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        "config error: symbols: must be uppercase symbols like BTCUSDT, got 'btc usdt'"
    ]


def test_broken_toml_file_is_a_config_error_naming_the_file(tmp_path):
    bad = write(tmp_path / "bad.toml", "venue = \n")

    result = run_cli("config", "show", "--config", str(bad))

    assert result.returncode == 78
    assert result.stderr.startswith(f"config error: config: {bad}: invalid TOML")


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config: no such file"):
        load_settings(tmp_path / "nope.toml", env={})


def test_secrets_are_refused_in_the_config_file(tmp_path):
    toml = write(tmp_path / "c.toml", f'api_key = "{SECRET_KEY}"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(toml, env={})

    assert "api_key: secrets are not accepted in the config file" in str(info.value)
    assert SECRET_KEY not in str(info.value)


def test_secrets_are_refused_on_the_command_line():
    result = run_cli("--api-key", SECRET_KEY, "config", "show")

    assert result.returncode == 78
    assert "api_key: secrets are not accepted on the command line" in result.stderr
    assert SECRET_KEY not in result.stderr + result.stdout


def test_secrets_come_from_env_or_a_private_secrets_file_env_winning(tmp_path):
    secrets = write(
        tmp_path / "s.toml", f'api_key = "{SECRET_KEY}"\napi_secret = "{SECRET_SECRET}"\n[control]\ntoken = "{TOKEN}"\n'
    )

    from_file = load_settings(flags={"secrets_file": str(secrets)}, env={})
    env_wins = load_settings(flags={"secrets_file": str(secrets)}, env={"EPOCHBOT_API_KEY": "from-env-key-000"})

    assert from_file.api_key.get_secret_value() == SECRET_KEY
    assert from_file.control.token.get_secret_value() == TOKEN
    assert env_wins.api_key.get_secret_value() == "from-env-key-000"
    assert env_wins.api_secret.get_secret_value() == SECRET_SECRET


def test_a_secrets_file_readable_by_others_is_refused(tmp_path):
    secrets = write(tmp_path / "s.toml", f'api_key = "{SECRET_KEY}"\n', mode=0o644)

    with pytest.raises(ConfigError, match="chmod 600"):
        load_settings(flags={"secrets_file": str(secrets)}, env={})


def test_a_too_short_control_token_is_rejected_without_echoing_it():
    with pytest.raises(ConfigError) as info:
        load_settings(env={"EPOCHBOT_CONTROL__TOKEN": "hunter2"})

    assert str(info.value) == "control.token: must be at least 16 characters"


def test_secrets_never_appear_in_repr_str_or_rendered_config():
    settings = load_settings(
        env={"EPOCHBOT_API_KEY": SECRET_KEY, "EPOCHBOT_API_SECRET": SECRET_SECRET, "EPOCHBOT_CONTROL__TOKEN": TOKEN}
    )

    texts = [
        repr(settings),
        str(settings),
        render_settings(settings, "toml"),
        render_settings(settings, "json"),
        repr(settings.control),
    ]

    for text in texts:
        for secret in (SECRET_KEY, SECRET_SECRET, TOKEN):
            assert secret not in text
    assert f'token = "{MASK}"' in texts[2]


def test_config_show_prints_the_merged_config_with_secrets_masked(tmp_path):
    toml = write(tmp_path / "c.toml", 'venue = "binance-usdm"\n[confidence]\nsilence_replace_ms = 1800\n')

    result = run_cli(
        "config",
        "show",
        "--config",
        str(toml),
        "--symbols",
        "SOLUSDT",
        env={"EPOCHBOT_API_KEY": SECRET_KEY, "EPOCHBOT_CONTROL__TOKEN": TOKEN},
    )

    assert result.returncode == 0, result.stderr
    assert 'venue = "binance-usdm"' in result.stdout
    assert 'symbols = ["SOLUSDT"]' in result.stdout
    assert "silence_replace_ms = 1800.0" in result.stdout
    assert f'api_key = "{MASK}"' in result.stdout
    assert SECRET_KEY not in result.stdout and TOKEN not in result.stdout


def test_config_show_json_is_valid_json_and_round_trips_through_load_settings(tmp_path):
    import json

    result = run_cli("config", "show", "--json", "--set", "modes.recovery_hold_ms=750")

    data = json.loads(result.stdout)
    assert data["modes"]["recovery_hold_ms"] == 750.0


def test_to_runtime_config_carries_engine_thresholds_and_venue():
    settings = load_settings(
        env={
            "EPOCHBOT_CONFIDENCE__SILENCE_REPLACE_MS": "1700",
            "EPOCHBOT_MODES__NORMAL_AT": "0.9",
            "EPOCHBOT_CONFIDENCE__FACTORS__QUEUE_DELAY_MS__WEIGHT": "0.3",
            "EPOCHBOT_MARKET": "spot",
        }
    )

    runtime_config = to_runtime_config(settings)

    assert runtime_config.venue.name == "sim" and runtime_config.venue.market == "spot"
    assert runtime_config.venue.rest_url == ""  # the runtime starts the embedded simulator
    assert runtime_config.symbols == ("BTCUSDT", "ETHUSDT")
    assert runtime_config.engine.silence_replace_ms == 1700.0
    assert runtime_config.engine.modes.normal_at == 0.9
    assert runtime_config.engine.confidence.factors["queue_delay_ms"].weight == 0.3
    assert runtime_config.engine.confidence.factors["queue_delay_ms"].warn == 20  # untouched default


def test_url_overrides_point_the_runtime_at_another_endpoint():
    settings = load_settings(
        flags={"venue": "binance-usdm-testnet", "rest_url": "http://127.0.0.1:9/", "ws_url": "ws://127.0.0.1:9"}, env={}
    )

    venue = to_runtime_config(settings).venue

    assert (venue.name, venue.market, venue.rest_url, venue.ws_url) == (
        "binance-usdm-testnet",
        "usdm",
        "http://127.0.0.1:9",
        "ws://127.0.0.1:9",
    )


def test_engine_config_venue_rules_follow_the_market():
    assert engine_config(load_settings(flags={"venue": "binance-spot"}, env={})).venue.value == "spot"
    assert engine_config(load_settings(env={})).venue.value == "usdm"


def test_explicit_urls_of_a_simulator_started_by_the_caller_win():
    venue = to_runtime_config(load_settings(env={}), rest_url="http://127.0.0.1:5", ws_url="ws://127.0.0.1:5").venue

    assert (venue.name, venue.rest_url, venue.ws_url) == ("sim", "http://127.0.0.1:5", "ws://127.0.0.1:5")


def test_key_bindings_merge_over_the_defaults_and_reject_unknown_actions():
    settings = load_settings(flags={"keys": {"toggle_theme": "T"}}, env={})

    assert settings.keys["toggle_theme"] == "T" and settings.keys["quit"] == "q"
    with pytest.raises(ConfigError, match="keys: unknown action 'launch_rockets'"):
        load_settings(flags={"keys": {"launch_rockets": "x"}}, env={})


def test_the_embedded_simulator_gets_a_per_run_database_and_anything_else_the_configured_one(tmp_path):
    from epochbot.app.config import sim_storage, trading_config

    demo = load_settings(flags={}, env={})
    explicit = load_settings(flags={"storage": str(tmp_path / "mine.sqlite3")}, env={})
    external = load_settings(flags={"rest_url": "http://127.0.0.1:9", "ws_url": "ws://127.0.0.1:9"}, env={})

    assert sim_storage(demo) == ("epochbot-sim.sqlite3", True)
    assert trading_config(demo).storage_per_run is True
    assert sim_storage(explicit) == (str(tmp_path / "mine.sqlite3"), False)
    assert sim_storage(external) == ("epochbot.sqlite3", False)


def test_config_show_json_keeps_money_limits_as_exact_decimal_strings():
    result = run_cli("config", "show", "--json", "--set", "risk.max_order_notional=100.05")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["risk"]["max_order_notional"] == "100.05"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"EPOCHBOT_STRATEGY__PARAMS": "{not json"}, "EPOCHBOT_STRATEGY__PARAMS: invalid JSON"),
        ({"EPOCHBOT_KEYS": "{not json"}, "EPOCHBOT_KEYS: invalid JSON"),
        ({"EPOCHBOT_CONFIDENCE____X": "1"}, "EPOCHBOT_CONFIDENCE____X: malformed variable name"),
        (
            {"EPOCHBOT_CONFIDENCE": "1", "EPOCHBOT_CONFIDENCE__SILENCE_REPLACE_MS": "5"},
            "EPOCHBOT_CONFIDENCE__SILENCE_REPLACE_MS: conflicts with EPOCHBOT_CONFIDENCE",
        ),
    ],
)
def test_unreadable_environment_variables_are_named_in_one_line(env, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)

    assert str(info.value) == expected


def test_json_objects_in_the_environment_merge_with_nested_variables():
    settings = load_settings(env={"EPOCHBOT_KEYS": '{"quit": "x"}', "EPOCHBOT_KEYS__HALT": "y"})

    assert (settings.keys["quit"], settings.keys["halt"], settings.keys["pause"]) == ("x", "y", "p")


def test_the_secrets_file_named_in_the_config_file_is_read(tmp_path):
    secrets = write(tmp_path / "s.toml", f'api_key = "{SECRET_KEY}"\n')
    toml = write(tmp_path / "c.toml", f'secrets_file = "{secrets}"\n')

    settings = load_settings(toml, env={})

    assert settings.api_key.get_secret_value() == SECRET_KEY


def test_a_secrets_file_holding_anything_but_secrets_is_refused(tmp_path):
    secrets = write(tmp_path / "s.toml", 'venue = "sim"\n')

    with pytest.raises(ConfigError, match="secrets_file: only api_key, api_secret and \\[control\\] token"):
        load_settings(flags={"secrets_file": str(secrets)}, env={})


def test_a_config_file_that_is_a_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config: is a directory"):
        load_settings(env={"EPOCHBOT_CONFIG": str(tmp_path)})
