"""Strategies are plug-ins: found by name in the ``epochbot.strategies`` entry-point group.

The out-of-tree strategy is the README's own example ("Writing a strategy"), installed the way
pip installs a package: its module plus a ``.dist-info`` with ``entry_points.txt`` in a
directory on the path (``importlib.metadata`` reads it like any installed distribution). It is
then named, not imported, by the real command line: a backtest and a headless daemon against
the embedded simulator must both resolve it and trade with it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from epochbot.app.config import ConfigError, load_settings
from epochbot.trading.strategy import (
    BUILTIN_ENTRY_POINTS,
    ENTRY_POINT_GROUP,
    StrategyError,
    get_strategy,
    strategy_names,
)

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^### Writing a strategy\s*$(.*?)(?=^##)", text, re.S | re.M).group(1)
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def install_distribution(site: Path, name: str, package: str, code: str, entry_points_txt: str) -> None:
    """What ``pip install`` leaves behind: the package and its ``.dist-info`` metadata."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(code, encoding="utf-8")
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points_txt, encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A site directory holding the README's flipper and a broken plug-in, on this process's
    path (undone after the test) and handed to subprocesses through PYTHONPATH."""
    site = tmp_path / "site"
    install_distribution(
        site,
        "flipper-strategy",
        "flipper_strategy",
        readme_example(),
        f"[{ENTRY_POINT_GROUP}]\nflipper = flipper_strategy:make_flipper\n",
    )
    install_distribution(
        site,
        "broken-strategy",
        "broken_strategy",
        "import epochbot_no_such_module\n",
        f"[{ENTRY_POINT_GROUP}]\nbroken = broken_strategy:make\nhollow = flipper_strategy:no_such_factory\n",
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def env_with(site: Path) -> dict[str, str]:
    """Only the plug-in's site directory on the path: epochbot comes from its installation,
    never from this checkout (the subprocesses also run outside it)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EPOCHBOT_")}
    env["PYTHONPATH"] = str(site)
    return env


def test_the_readme_example_imports_only_the_public_api_and_the_standard_library():
    import epochbot

    tree = ast.parse(readme_example())
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]

    from_epochbot = [n for n in imports if isinstance(n, ast.ImportFrom) and n.module == "epochbot"]
    others = [n for n in imports if n not in from_epochbot]
    assert from_epochbot, "the example must use the public API"
    assert all(alias.name in epochbot.__all__ for n in from_epochbot for alias in n.names)
    for node in others:
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        assert all(m.split(".")[0] in sys.stdlib_module_names for m in modules), ast.unparse(node)


def test_the_shipped_strategies_are_registered_as_entry_points_exactly_as_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}

    assert declared == BUILTIN_ENTRY_POINTS
    assert {k: installed.get(k) for k in declared} == declared, "installed metadata is stale: pip install -e . again"


def test_strategy_names_are_listed_without_importing_any_strategy_module():
    code = (
        "import sys\nfrom epochbot.trading.strategy import strategy_names\n"
        "names = strategy_names()\n"
        "print(','.join(names), any(m.startswith(('epochbot.trading.strategies.quoter', "
        "'epochbot.trading.strategies.momentum')) for m in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert out.returncode == 0, out.stderr
    names, imported = out.stdout.split()
    assert {"quoter", "momentum"} <= set(names.split(","))
    assert imported == "False"


def test_an_installed_out_of_tree_strategy_is_found_by_name_and_configurable(site):
    assert "flipper" in strategy_names()
    strategy = get_strategy("flipper", {"every_ms": 500})
    assert strategy.name == "flipper" and strategy.params == {"quote": "150", "every_ms": 500}
    assert load_settings(flags={"strategy": {"name": "flipper"}}, env={}).strategy.name == "flipper"
    with pytest.raises(StrategyError, match="unknown parameter"):
        get_strategy("flipper", {"every": 1})


def test_a_plugin_that_cannot_be_loaded_is_a_one_line_configuration_error(site):
    with pytest.raises(ConfigError) as broken:
        load_settings(flags={"strategy": {"name": "broken"}}, env={})
    with pytest.raises(ConfigError) as hollow:
        load_settings(flags={"strategy": {"name": "hollow"}}, env={})

    assert "broken_strategy:make" in str(broken.value) and "cannot be imported" in str(broken.value)
    assert "epochbot_no_such_module" in str(broken.value)
    assert "flipper_strategy:no_such_factory" in str(hollow.value) and "does not exist" in str(hollow.value)
    assert "\n" not in str(broken.value) + str(hollow.value)


def test_the_command_line_refuses_an_unloadable_plugin_with_exit_78_and_one_line(site, tmp_path):
    env = {**env_with(site), "EPOCHBOT_STRATEGY__NAME": "broken"}

    out = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "config", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )

    assert out.returncode == 78, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken_strategy:make" in lines[0] and "epochbot_no_such_module" in lines[0]


def test_the_out_of_tree_strategy_trades_in_a_backtest_from_the_command_line(site, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "backtest",
            "--strategy",
            "flipper",
            "--seconds",
            "60",
            "--seed",
            "5",
            "--json",
        ],
        cwd=tmp_path,
        env=env_with(site),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )

    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["orders_placed"] > 0 and report["trades"] > 0


def test_the_headless_daemon_trades_the_out_of_tree_strategy_named_in_its_configuration(site, tmp_path):
    report_path = tmp_path / "report.json"
    env = {**env_with(site), "EPOCHBOT_STRATEGY__NAME": "flipper", "EPOCHBOT_STRATEGY__PARAMS": '{"every_ms": 1000}'}

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "--headless",
            "--duration",
            "12",
            "--symbols",
            "BTCUSDT",
            "--report",
            str(report_path),
            "--storage",
            str(tmp_path / "db.sqlite3"),
            "--control-port",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )

    assert out.returncode == 0, out.stderr[-3000:]
    trading = json.loads(report_path.read_text())["trading"]
    assert trading["fill_count"] > 0, trading
    logs = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert any(
        line.get("msg") == "strategy loaded"
        and line.get("strategy") == "flipper"
        and line.get("module") == "flipper_strategy"
        for line in logs
    )
    assert any(line.get("msg", "").startswith("fill") and line.get("symbol") == "BTCUSDT" for line in logs)
