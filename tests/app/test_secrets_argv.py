"""Secrets never on the command line: `sim --accounts` is refused, accounts come from a chmod-600
file (or the environment) and the simulator then authenticates exactly those keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from tests.helpers import REPO, SimProcess, child_env


def test_sim_refuses_accounts_on_the_command_line_without_echoing_the_secret():
    proc = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "sim", "--port", "0", "--accounts", "k1:very-secret-1"],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO,
        timeout=30,
    )

    assert proc.returncode == 2
    assert "--accounts-file" in proc.stderr and "very-secret-1" not in proc.stderr + proc.stdout


def test_sim_refuses_an_accounts_file_readable_by_others(tmp_path):
    path = tmp_path / "accounts"
    path.write_text("k1:very-secret-1\n")
    path.chmod(0o644)

    proc = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "sim", "--port", "0", "--accounts-file", str(path)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO,
        timeout=30,
    )

    assert proc.returncode == 2
    assert "chmod 600" in proc.stderr and "very-secret-1" not in proc.stderr


def test_sim_serves_the_accounts_of_a_private_file_and_keeps_them_out_of_ps(tmp_path):
    path = tmp_path / "accounts"
    path.write_text("# paper accounts\nk1:very-secret-1, k2:very-secret-2\n")
    path.chmod(0o600)
    sim = SimProcess(tmp_path, args=("--accounts-file", str(path)), start_timeout=15)
    try:
        rest = sim.rest
        cmdline = (
            Path(f"/proc/{sim.proc.pid}/cmdline").read_bytes().decode(errors="replace")
            if Path("/proc").exists()
            else ""
        )

        def listen_key(api_key: str) -> int:
            try:
                with urlopen(
                    Request(f"{rest}/fapi/v1/listenKey", method="POST", headers={"X-MBX-APIKEY": api_key}), timeout=5
                ) as resp:
                    return resp.status
            except HTTPError as exc:
                return exc.code

        assert "very-secret" not in cmdline
        assert listen_key("k2") == 200
        assert listen_key("sim-key") != 200  # only the file's accounts exist
    finally:
        sim.stop()
