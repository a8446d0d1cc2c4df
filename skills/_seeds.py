"""Seed skills: Markdown files parsed into :class:`Skill` records.

Layout of a seed file (see ``skills/seeds/*.md``)::

    ---
    id: seed-rerank-mmr-diversity
    north_star: ILD@10
    stage: rerank
    dataset: any
    tools: mmr_rerank, evaluate_offline
    ---
    # MMR re-ranking for diversity and novelty

    ## Task context
    free text ...

    ## Requirement
    free text ...

    ## Initial config
    - `rerank.mmr_lambda`: 0.8
    - `rerank.window`: 50

    ## Domain knowledge
    free text (Markdown) ...

The front matter holds ``key: value`` lines: ``id`` and ``north_star`` are
required, ``stage``, ``dataset`` and ``tools`` (comma-separated) optional. The
first heading is the title. The four ``##`` sections are required, in any
order; each config bullet is ``- `knob`: value`` with a JSON value (number,
``true``/``false`` or a quoted string; a bare word is read as a string).
Anything else raises :class:`~agenticrec.errors.DataFormatError` naming the
file and line.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from agenticrec.errors import DataFormatError

from ._schema import KnobValue, Skill

__all__ = ["load_seed_skills", "parse_seed_file", "seed_dir"]

_FRONT_KEYS = {"id", "north_star", "stage", "dataset", "tools"}
_SECTIONS = {
    "task context": "task_context",
    "requirement": "requirement",
    "initial config": "initial_config",
    "domain knowledge": "domain_knowledge",
}
_KNOB = re.compile(r"^[-*]\s+`([A-Za-z0-9_.\-]+)`\s*:\s*(.+?)\s*$")


def seed_dir() -> Path:
    """The folder of the seed files shipped with the package."""
    return Path(str(resources.files("agenticrec.skills") / "seeds"))


def _value(raw: str) -> KnobValue:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if not isinstance(value, bool | int | float | str):
        raise ValueError(f"value {raw!r} is not a number, boolean or string")
    return value


def parse_seed_file(path: str | Path) -> Skill:
    """Parse one seed file into a ``source="seed"`` :class:`Skill`.

    Raises:
        DataFormatError: the file does not follow the layout above; the error
            names the file, the line and the field.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()

    def fail(msg: str, line: int | None, field: str | None = None) -> DataFormatError:
        return DataFormatError(msg, path=path, line=line, field=field)

    if not lines or lines[0].strip() != "---":
        raise fail("a seed file starts with a '---' front matter line", 1)
    front: dict[str, str] = {}
    front_line: dict[str, int] = {}
    i = 1
    while True:
        if i >= len(lines):
            raise fail("front matter is not closed by a '---' line", i)
        text = lines[i].strip()
        i += 1
        if text == "---":
            break
        if not text:
            continue
        key, sep, value = text.partition(":")
        key = key.strip()
        if not sep or key not in _FRONT_KEYS:
            raise fail(
                f"expected 'key: value' with key in {sorted(_FRONT_KEYS)}, "
                f"got {text!r}",
                i,
            )
        if key in front:
            raise fail(f"duplicate front matter key {key!r}", i, key)
        front[key], front_line[key] = value.strip(), i
    for key in ("id", "north_star"):
        if not front.get(key):
            raise fail(f"front matter needs '{key}:'", i, key)

    title: str | None = None
    sections: dict[str, list[str]] = {}
    section_line: dict[str, int] = {}
    current: str | None = None
    config: dict[str, KnobValue] = {}
    for lineno, raw in enumerate(lines[i:], start=i + 1):
        text = raw.strip()
        if text.startswith("## "):
            name = text[3:].strip().lower()
            if name not in _SECTIONS:
                raise fail(
                    f"unknown section {text!r}; expected one of "
                    f"{[s.capitalize() for s in _SECTIONS]}",
                    lineno,
                )
            current = _SECTIONS[name]
            if current in sections:
                raise fail(f"section {text!r} appears twice", lineno, current)
            sections[current], section_line[current] = [], lineno
        elif text.startswith("# ") and title is None and current is None:
            title = text[2:].strip()
        elif current is None:
            if text:
                raise fail(
                    f"expected '# Title' or a '## Section', got {text!r}", lineno
                )
        elif current == "initial_config":
            if not text:
                continue
            m = _KNOB.match(text)
            if not m:
                raise fail(
                    f"config lines look like '- `knob.name`: 0.5', got {text!r}",
                    lineno,
                    "initial_config",
                )
            knob, value = m.groups()
            if knob in config:
                raise fail(f"knob {knob!r} set twice", lineno, "initial_config")
            try:
                config[knob] = _value(value)
            except ValueError as exc:
                raise fail(str(exc), lineno, knob) from exc
            sections[current].append(text)
        else:
            sections[current].append(raw.rstrip())
    if not title:
        raise fail("missing '# Title' heading", i + 1, "title")
    for field in _SECTIONS.values():
        if field not in sections:
            heading = next(k for k, v in _SECTIONS.items() if v == field)
            raise fail(
                f"missing section '## {heading.capitalize()}'", len(lines), field
            )
        if field != "initial_config" and not "\n".join(sections[field]).strip():
            raise fail("section is empty", section_line[field], field)
    if not config:
        raise fail("no knobs in '## Initial config'", section_line["initial_config"])

    tools = [t.strip() for t in front.get("tools", "").split(",") if t.strip()]
    try:
        return Skill(
            id=front["id"],
            title=title,
            task_context="\n".join(sections["task_context"]).strip(),
            requirement="\n".join(sections["requirement"]).strip(),
            north_star=front["north_star"],
            stage=front.get("stage") or "any",
            dataset=front.get("dataset") or "any",
            initial_config=config,
            domain_knowledge="\n".join(sections["domain_knowledge"]).strip(),
            tools=tools,
            source="seed",
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else None
        raise fail(err["msg"], front_line.get(field or "", 1), field) from exc


def load_seed_skills(folder: str | Path | None = None) -> list[Skill]:
    """Every ``*.md`` seed in ``folder`` (default: the shipped seeds), by file name.

    Raises:
        DataFormatError: a malformed file, or two files with the same id.
    """
    folder = Path(folder) if folder is not None else seed_dir()
    skills: list[Skill] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")):
        skill = parse_seed_file(path)
        if skill.id in seen:
            raise DataFormatError(
                f"seed id {skill.id!r} already used by {seen[skill.id].name}",
                path=path,
                field="id",
            )
        seen[skill.id] = path
        skills.append(skill)
    return skills
