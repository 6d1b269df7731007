"""Colour themes and the stylesheet of the operator console.

Two Textual themes are registered by the app: ``epochbot-dark`` (the default, a low-glare
trading-floor palette) and ``epochbot-light`` (for bright rooms and screenshots). Widgets never
name a colour: ``epochbot.tcss`` styles everything through theme variables (``$primary``,
``$error``, ``$warning``, ``$success``, ``$accent``, ``$panel`` ...), so switching theme restyles
every pane at once.

Importing this package imports Textual; the headless runner must not import it.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

__all__ = ["DARK", "LIGHT", "STYLESHEET", "THEMES", "other_theme"]

STYLESHEET = Path(__file__).with_name("epochbot.tcss")

DARK = Theme(
    name="epochbot-dark",
    primary="#4EA1F3",
    secondary="#7A8CA8",
    accent="#E0A526",
    warning="#F0B429",
    error="#F25C54",
    success="#3DBE7A",
    foreground="#D8DEE9",
    background="#0E1117",
    surface="#151A22",
    panel="#1D2430",
    dark=True,
    variables={"footer-key-foreground": "#E0A526", "block-cursor-text-style": "none"},
)

LIGHT = Theme(
    name="epochbot-light",
    primary="#1F6FD1",
    secondary="#5B6B82",
    accent="#B7791F",
    warning="#C27C0E",
    error="#C53030",
    success="#2F855A",
    foreground="#1A202C",
    background="#F7F8FA",
    surface="#FFFFFF",
    panel="#E6EAF0",
    dark=False,
    variables={"footer-key-foreground": "#B7791F", "block-cursor-text-style": "none"},
)

THEMES: dict[str, Theme] = {DARK.name: DARK, LIGHT.name: LIGHT}


def other_theme(name: str) -> str:
    """The theme the ``t`` key switches to from ``name`` (dark <-> light)."""
    return LIGHT.name if name == DARK.name else DARK.name
