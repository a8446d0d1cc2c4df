"""Layer arrows point one way: kernel <- tools <- graphs, evals on top, skills
beside tools (skills may use the numeric kernels of tools, e.g. Pareto ranks;
tools never use skills). Checked on the source: every ``agenticrec.*`` import
of a module, including imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    # folder: packages its modules must never import
    "tools": ("agenticrec.skills", "agenticrec.evals", "agenticrec.graphs"),
    "skills": ("agenticrec.evals", "agenticrec.graphs"),
    "graphs": ("agenticrec.evals",),
    "agenticrec": ("agenticrec.evals", "agenticrec.graphs"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_its_own(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, mod in _imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[folder]):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)
