"""Shared fixtures: where the shared datasets live, clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("AGENTICREC_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch):
    """Tests decide with rule policies unless they configure a model."""
    for var in ("AGENTICREC_LLM_BASE_URL", "AGENTICREC_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AGENTICREC_PROMPTS_DIR", str(ROOT / "tests" / "prompts"))


DISTILL_MODULES = ("torch", "transformers", "trl", "datasets")
REQUIRE_DISTILL_ENV = "AGENTICREC_REQUIRE_DISTILL"


def need_distill() -> None:
    """Skip (or fail under ``AGENTICREC_REQUIRE_DISTILL=1``, as in CI) when
    the distill extra is not installed."""
    import importlib.util

    missing = [m for m in DISTILL_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return
    if os.environ.get(REQUIRE_DISTILL_ENV) == "1":
        pytest.fail(f"{REQUIRE_DISTILL_ENV}=1 but {', '.join(missing)} missing")
    pytest.skip("distill extra not installed (pip install 'agenticrec[distill]')")


@pytest.fixture(scope="session")
def student_rows(tmp_path_factory) -> Path:
    """``export --format student`` rows of an 8-user teacher run."""
    need_distill()
    from agenticrec.export import export_file
    from agenticrec.graphs.teacher import TeacherContext
    from agenticrec.runner import run

    d = tmp_path_factory.mktemp("student-rows")
    run("teacher", TeacherContext(trajectories=str(d / "t.jsonl"), users=8))
    export_file(d / "t.jsonl", d, "student")
    return d / "student.jsonl"


@pytest.fixture(scope="session")
def tiny_student(student_rows, tmp_path_factory) -> Path:
    """A tiny student after one SFT step (for serving tests)."""
    from agenticrec import distill

    out = tmp_path_factory.mktemp("tiny-student")
    distill.sft(student_rows, out, steps=1, batch=2)
    return out
