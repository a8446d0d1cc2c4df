"""The docs' code blocks marked ``<!-- docs-test: llm -->`` run against the
real local model server (they start and stop their own)."""

from __future__ import annotations

import pytest

from tests.docs_blocks import PAGES, blocks
from tests.llm.conftest import require_local_llm
from tests.test_docs import docs_env, run_blocks

pytestmark = pytest.mark.llm

LLM_PAGES = [p for p in PAGES if any(b.directive == "llm" for b in blocks(p))]


@pytest.mark.slow
@pytest.mark.parametrize("page", LLM_PAGES, ids=lambda p: p.name)
def test_llm_code_blocks_run_against_the_local_server(page, tmp_path):
    require_local_llm()
    todo = [b for b in blocks(page) if b.directive == "llm"]
    run_blocks(todo, tmp_path, docs_env())
