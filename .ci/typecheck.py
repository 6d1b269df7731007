"""Type-check the `epochbot` package with mypy (configured in pyproject.toml).

mypy cannot follow setuptools' package-dir mapping (core/ is `epochbot`, app/ is `epochbot.app`, ...),
so this builds the package as mypy would see it installed: a tree of symlinks under build/typecheck/,
then runs `mypy -p epochbot` on it. Extra arguments go to mypy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "typecheck"
SUBPACKAGES = {"app": "app", "widgets": "widgets", "themes": "themes"}


def shadow_tree() -> Path:
    shutil.rmtree(OUT, ignore_errors=True)
    package = OUT / "epochbot"
    package.mkdir(parents=True)
    for entry in (ROOT / "core").iterdir():
        if entry.name == "__pycache__" or entry.suffix == ".so":
            continue
        (package / entry.name).symlink_to(entry)
    for name, folder in SUBPACKAGES.items():
        (package / name).symlink_to(ROOT / folder)
    return OUT


def main() -> int:
    tree = shadow_tree()
    env = dict(os.environ, MYPYPATH=str(tree))
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "epochbot", *sys.argv[1:]]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
