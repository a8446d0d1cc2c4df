"""Code blocks of the README and docs/, as the docs tests run them.

A page is read as a tutorial: its blocks run in document order in one fresh
working directory, Python blocks in one shared namespace (a later block may use
a name an earlier one defined), shell blocks through ``bash -euo pipefail``.
``toml`` and ``json`` blocks must parse; ``text`` blocks are diagrams and
output samples, and a block with no language is refused so that nothing
executable hides as plain text.

A block can carry one directive, an HTML comment on the line just above its
fence (invisible in the rendered page)::

    <!-- docs-test: llm -->          runs only against the real local model
                                      server (tests/llm), with its exports set
    <!-- docs-test: skip REASON -->  not run; REASON is shown by the test, and
                                      the allowed reasons are listed in SKIPS
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUN = {"python", "bash"}
PARSE = {"toml", "json"}
TEXT = {"text", "markdown"}
SKIPS = {
    "recursive": "the test command itself (it would run this suite again)",
    "slow": "a full reproduction run of minutes; its small variant above runs",
    "builds": "builds llama.cpp from source (.ci/run runs it before the tests)",
    "installs": "installs the checkout into the running environment; "
    "tests/test_packaging.py installs it apart and runs a graph from there",
    "cluster": "needs several machines (a Ray head and worker nodes); "
    "tests/test_distributed.py runs the same code on a local Ray",
}
"""The only reasons a block may be skipped for; anything else fails."""

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, text and directive."""

    page: Path
    line: int
    lang: str
    text: str
    directive: str = ""
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one Markdown page, in order.

    Raises:
        ValueError: an unclosed fence, naming the page and line.
    """
    out: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2).lower(), i + 1
        directive = reason = ""
        if i > 0 and (d := _DIRECTIVE.match(lines[i - 1])):
            directive, reason = d.group(1), d.group(2)
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        if j == len(lines):
            raise ValueError(f"{page}:{start}: unclosed code fence")
        out.append(
            Block(page, start, lang, "\n".join(lines[i + 1 : j]) + "\n",
                  directive, reason)
        )
        i = j + 1
    return out


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


HARNESS = r'''
import json, os, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1]))
ns = {"__name__": "__main__"}
for b in blocks:
    print(f"--- {b['where']} ({b['lang']})", flush=True)
    try:
        if b["lang"] == "python":
            exec(compile(b["text"], b["where"], "exec"), ns)
        else:
            subprocess.run(["bash", "-euo", "pipefail", "-c", b["text"]], check=True)
    except BaseException as exc:
        if isinstance(exc, subprocess.CalledProcessError):
            print(f"FAILED {b['where']}: exit {exc.returncode}", flush=True)
        else:
            traceback.print_exc()
            print(f"FAILED {b['where']}: {exc!r}", flush=True)
        sys.exit(1)
print("ALL BLOCKS RAN", flush=True)
'''
