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
