"""Write docs/settings.md: every setting of every registered graph, with its
CLI flag, default, range and whether it binds a checkpointed thread.

    python scripts/settings_table.py [--check]

Generated from the context fields (the one declaration of each setting);
``--check`` exits 1 when the file is out of date (tests run it).
"""

from __future__ import annotations

import sys
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from agenticrec.graphspec import load_graphs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "settings.md"


def _range(meta) -> str:
    lo, hi, ch = meta.get("ge"), meta.get("le"), meta.get("choices")
    if ch:
        return " \\| ".join(map(str, ch))
    if lo is None and hi is None:
        return ""
    return f"{'' if lo is None else lo} .. {'' if hi is None else hi}"


def _type(t) -> str:
    args = [a for a in typing.get_args(t) if a is not type(None)]
    if typing.get_origin(t) is typing.Literal:
        return "str"
    if args:
        return _type(args[0]) + "?"
    return getattr(t, "__name__", str(t))


def render() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting of every registered graph, generated from the context",
        "fields by `python scripts/settings_table.py` (do not edit by hand). The",
        "range is enforced in one place, `Context.__post_init__`, for the CLI,",
        "Python and `langgraph dev` alike; out of range is `ConfigError` (CLI:",
        "exit 2, one line naming the setting). *Binds*: part of a checkpointed",
        "thread's binding (a resumed thread with another value is refused).",
        "Hidden settings have no CLI flag; set them by environment variable or",
        "in Python. Every `run` command also takes `--checkpoint PATH`,",
        "`--thread-id ID`, `--new-thread` and `--json`, and with `--backend",
        "ray` `--seed-list 0,1,...` (one whole run per seed, see docs/ray.md).",
        "",
    ]
    for spec in load_graphs(plugins=False).values():
        hints = typing.get_type_hints(spec.context)
        lines += [
            f"## `agenticrec run {spec.name}` ({spec.context.__name__})",
            "",
            "| setting | flag | type | default | range | binds | env | description |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in fields(spec.context):
            if f.name.startswith("_"):
                continue
            m = f.metadata
            flag = (
                ""
                if m.get("hidden")
                else (m.get("cli") or f"--{f.name.replace('_', '-')}")
            )
            if isinstance(flag, tuple):
                flag = ", ".join(flag)
            default = f.default if f.default is not MISSING else ""
            desc = str(m.get("description", "")).replace("|", "\\|")
            lines.append(
                f"| `{f.name}` | {'`' + flag + '`' if flag else '(hidden)'} | "
                f"{_type(hints[f.name])} | `{default!r}` | {_range(m)} | "
                f"{'yes' if m.get('binds', True) else 'no'} | "
                f"{('`' + m['env'] + '`') if m.get('env') else ''} | {desc} |"
            )
        lines.append("")
    lines += [
        "## Other commands",
        "",
        "| command | option | type | default | range |",
        "|---|---|---|---|---|",
        "| `agenticrec data info SOURCE` | `--format` | str | detected | "
        "ml-100k \\| ml-1m \\| movielens-csv \\| parquet \\| recbole \\| "
        "amazon2023 |",
        "| `agenticrec export FILE` | `--format` | str | `sft` | "
        "sft \\| openai \\| grpo \\| star \\| student |",
        "| | `--out` | folder | `export` | a folder; writes stay inside it |",
        "| | `--keep` | str | none | `hit@K`, 1 <= K |",
        "| | `--skip-unreplayable` | bool | false | |",
        "| `agenticrec replay FILE` | | | | |",
        "| `agenticrec demo` | `--data` | str | `ml-latest-small` | a dataset |",
        "| | `--seed` | int | 0 | 0 .. |",
        "| `agenticrec graphs langgraph-json` | `--out` | file | stdout | |",
        *_distill_rows(),
        "",
    ]
    return "\n".join(lines)


def _distill_rows() -> list[str]:
    """``agenticrec distill sft|grpo`` options, read from the CLI itself (the
    range is each option's help text)."""
    import typer

    from agenticrec.cli import distill_app

    group = typer.main.get_command(distill_app)
    rows = []
    for name in ("sft", "grpo"):
        cmd = group.commands[name]
        first = True
        for p in cmd.params:
            if not p.opts[0].startswith("--") or p.name == "as_json":
                continue
            label = f"`agenticrec distill {name} DATA`" if first else ""
            first = False
            default = "required" if p.required else f"`{p.default}`"
            if p.is_flag:
                kind = "bool"
            elif p.required or isinstance(p.default, Path):
                kind = "folder"
            else:
                kind = type(p.default).__name__
            desc = (p.help or "").replace("|", "\\|")
            rows.append(f"| {label} | `{p.opts[0]}` | {kind} | {default} | {desc} |")
    return rows


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python scripts/settings_table.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
