"""textual-serve, made to work offline and to leave no process behind.

* Offline: textual-serve's page template loads "Roboto Mono" from fonts.googleapis.com. We serve
  a copy of the template whose font comes from the package's own bundled TTF (under /static),
  and refuse to start if any ``http(s)://`` reference to another host is left in it.
* Children: on SIGTERM/SIGINT textual-serve stops its web server but not the console processes
  it started for each browser tab. `OfflineServer.on_shutdown` terminates them (SIGTERM, then
  SIGKILL after a bounded wait); each console also asks the kernel for SIGTERM when its parent
  dies (epochbot.app.console.serve._die_with_parent), so not even a SIGKILL of `serve` leaves one running.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tempfile
from pathlib import Path

import textual_serve
from textual_serve.server import Server

__all__ = ["OfflineServer", "offline_template"]

_FONT_LINK = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*/?>", re.S)
_REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//""", re.I)
_FONT_FACE = """<style>
      @font-face { font-family: "Roboto Mono"; font-style: normal;
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }
      @font-face { font-family: "Roboto Mono"; font-style: italic;
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }
    </style>"""


def offline_template(text: str) -> str:
    """textual-serve's app_index.html with the web font served locally; raises if anything
    else would still be fetched from another host."""
    out = _FONT_LINK.sub(_FONT_FACE, text)
    if _REMOTE.search(out) or "googleapis" in out:
        raise RuntimeError("textual-serve's page still loads something from another host")
    return out


class OfflineServer(Server):
    def __init__(self, command: str, **kwargs) -> None:
        package = Path(textual_serve.__file__).parent
        self._template_dir = tempfile.TemporaryDirectory(prefix="epochbot-serve-")
        source = (package / "templates" / "app_index.html").read_text(encoding="utf-8")
        Path(self._template_dir.name, "app_index.html").write_text(offline_template(source), encoding="utf-8")
        super().__init__(command, statics_path=package / "static", templates_path=self._template_dir.name, **kwargs)

    async def on_shutdown(self, app) -> None:
        await super().on_shutdown(app)
        await stop_children(os.getpid())

    def serve(self, debug: bool = False) -> None:
        try:
            super().serve(debug)
        finally:
            # Whatever ended serve(): no console may outlive us.
            for pid in child_pids(os.getpid()):
                _signal(pid, signal.SIGKILL)
            self._template_dir.cleanup()


def child_pids(parent: int) -> list[int]:
    """Descendants of ``parent`` (Linux /proc; empty elsewhere), children first."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(parent, []))
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def stop_children(parent: int, timeout_s: float = 5.0) -> None:
    pids = child_pids(parent)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline and any(p in child_pids(parent) for p in pids):
        await asyncio.sleep(0.05)
    for pid in child_pids(parent):
        _signal(pid, signal.SIGKILL)
