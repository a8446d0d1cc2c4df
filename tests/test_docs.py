"""The README and every docs page: their code runs, the site builds strictly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.docs_blocks import (
    HARNESS,
    PAGES,
    PARSE,
    ROOT,
    RUN,
    SKIPS,
    TEXT,
    Block,
    all_blocks,
    blocks,
)


def docs_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a user's shell has: the venv's bin first, CPU JAX, no model."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENTICREC_") and not k.startswith("PYTEST")
    }
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env["JAX_PLATFORMS"] = "cpu"
    shared = os.environ.get("AGENTICREC_SHARED_DATA") or str(
        ROOT.parent / "shared" / "data"
    )
    if Path(shared).is_dir():
        env["AGENTICREC_SHARED_DATA"] = shared
    env.update(extra or {})
    return env


def run_blocks(todo: list[Block], cwd: Path, env: dict[str, str]) -> None:
    """Run blocks in order in one process; fail naming the block that broke."""
    spec = cwd / ".docs-blocks.json"
    spec.write_text(
        json.dumps([{"where": b.where, "lang": b.lang, "text": b.text} for b in todo])
    )
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS, str(spec)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1500,
    )
    spec.unlink()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "ALL BLOCKS RAN" in proc.stdout, out[-6000:]


def test_every_block_has_a_language_and_a_known_directive():
    bad = []
    for b in all_blocks():
        if b.lang not in RUN | PARSE | TEXT:
            bad.append(f"{b.where}: language {b.lang or '(none)'!r}")
        if b.directive not in ("", "llm", "skip"):
            bad.append(f"{b.where}: unknown directive {b.directive!r}")
        if b.directive == "skip" and b.reason not in SKIPS:
            bad.append(f"{b.where}: skip reason {b.reason!r} not in {sorted(SKIPS)}")
        if b.directive and b.lang not in RUN:
            bad.append(f"{b.where}: directive on a {b.lang} block")
    assert not bad, "\n".join(bad)


def test_config_blocks_parse():
    for b in all_blocks():
        if b.lang == "toml":
            tomllib.loads(b.text)
        elif b.lang == "json":
            json.loads(b.text)


def test_an_unclosed_fence_names_the_page_and_line(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("text\n\n```python\nprint(1)\n")
    with pytest.raises(ValueError, match=r"p\.md:3: unclosed"):
        blocks(page)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_code_runs(page, tmp_path):
    todo = [b for b in blocks(page) if b.lang in RUN and not b.directive]
    if not todo:
        pytest.skip(f"{page.name} has no runnable blocks")
    run_blocks(todo, tmp_path, docs_env())


@pytest.mark.slow
def test_docs_site_builds_strictly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
         "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").exists()
