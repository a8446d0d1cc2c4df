"""Rebuild the README's reference section from docs/*.md (one source of truth).

    python scripts/readme_reference.py

Everything after the line ``<!-- reference:start -->`` is replaced by the docs,
headings demoted one level, in a fixed order.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["runtime", "pareto", "graph", "pipeline", "skills", "dualagent", "tune", "llm"]
MARK = "<!-- reference:start -->"


def demote(text: str) -> str:
    """Headings one level down, except inside code fences."""
    out, fence = [], None
    for line in text.splitlines():
        m = re.match(r"^(`{3,}|~{3,})", line)
        if m:
            fence = None if fence and line.startswith(fence) else (fence or m.group(1))
        elif fence is None and re.match(r"^#+ ", line):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def main() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme.split(MARK)[0].rstrip() + "\n\n" + MARK + "\n\n## Reference\n"
    parts = []
    for name in ORDER:
        path = ROOT / "docs" / f"{name}.md"
        if path.exists():
            text = demote(path.read_text())
            parts.append(f"\n<!-- from docs/{name}.md -->\n" + text.rstrip() + "\n")
    (ROOT / "README.md").write_text(head + "".join(parts))


if __name__ == "__main__":
    main()
