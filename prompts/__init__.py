"""Prompt templates, one Markdown file per agent role, loaded by name.

A prompt file is the *system* message of its role. It may use
``string.Template`` placeholders (``$schema``); ``{`` and ``}`` are literal, so
JSON examples need no escaping. The observation is never interpolated into the
system text: it is sent as a JSON-encoded user message, so item titles and other
data cannot change the prompt's structure.

Set ``AGENTICREC_PROMPTS_DIR`` to a folder of ``<name>.md`` files to override or
add prompts without editing the package; it is searched first.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from string import Template

from agenticrec.errors import ConfigError

__all__ = ["available", "load", "render"]


def available() -> list[str]:
    """Names of the shipped prompts (file stems)."""
    roots = [resources.files(__name__)]
    if extra := os.environ.get(OVERRIDE_ENV):
        roots.append(Path(extra))
    return sorted(
        {
            p.name[:-3]
            for r in roots
            if r.is_dir()
            for p in r.iterdir()
            if p.name.endswith(".md")
        }
    )


OVERRIDE_ENV = "AGENTICREC_PROMPTS_DIR"


def load(name: str) -> str:
    """The raw template text of prompt ``name`` (``prompts/<name>.md``)."""
    if extra := os.environ.get(OVERRIDE_ENV):
        override = Path(extra) / f"{name}.md"
        if override.is_file():
            return override.read_text(encoding="utf-8")
    path = resources.files(__name__) / f"{name}.md"
    if not path.is_file():
        raise ConfigError(
            f"no prompt named {name!r} in agenticrec.prompts; available: {available()}"
        )
    return path.read_text(encoding="utf-8")


def render(name: str, **values: str) -> str:
    """Prompt ``name`` with ``$placeholders`` filled; unknown ones raise."""
    try:
        return Template(load(name)).substitute(values)
    except KeyError as exc:
        raise ConfigError(f"prompt {name!r} needs a value for ${exc.args[0]}") from exc
