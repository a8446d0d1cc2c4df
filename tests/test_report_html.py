"""The HTML report: self-contained, escaped, with the tables and plots of each
graph, and rendered by a real headless Chromium when one is installed
(``AGENTICREC_REQUIRE_BROWSER=1``, as in CI, makes a missing one a failure)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agenticrec import report_html
from agenticrec.graphs.dualagent import DualAgentContext
from agenticrec.graphs.system import SystemContext
from agenticrec.graphs.teacher import TeacherContext
from agenticrec.graphs.tune import TEMP_HUB, TuneContext
from agenticrec.trajectory import Recorder

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TEACHER_USERS = 3

TINY = {
    "teacher": lambda: TeacherContext(users=TEACHER_USERS),
    "dualagent": lambda: DualAgentContext(
        users=8,
        n_candidates=200,
        embedding_dim=32,
        pop_size=24,
        generations=6,
        coordinator_every=3,
    ),
    "system": lambda: SystemContext(rounds=2, shift_round=2),
    "tune": lambda: TuneContext(
        rounds=2,
        candidates=2,
        offline_events=1,
        embedding="hashing",
        skillhub=TEMP_HUB,
    ),
}

PLOTS = {"teacher": 1, "dualagent": 3, "system": 1, "tune": 2}


class _Page(HTMLParser):
    """Table ids, tag counts and resource references of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str | None] = []
        self.tags: dict[str, int] = {}
        self.refs: list[str] = []
        self.traj_details = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "table":
            self.tables.append(a.get("id"))
        if tag == "details" and "traj" in (a.get("class") or ""):
            self.traj_details += 1
        for name in ("src", "href", "action", "data"):
            if a.get(name):
                self.refs.append(a[name])


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


_RUNS: dict[str, tuple] = {}


def _written(graph: str, tmp_path_factory) -> tuple:
    """``(graph, report, folder)`` of a tiny run with ``--report``'s effects
    (each graph runs once per session)."""
    if graph not in _RUNS:
        folder = tmp_path_factory.mktemp(f"report-{graph}")
        rep = report_html.run_with_report(graph, TINY[graph](), folder=folder)
        _RUNS[graph] = graph, rep, folder
    return _RUNS[graph]


@pytest.fixture(scope="module", params=sorted(TINY))
def written(request, tmp_path_factory):
    return _written(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def teacher_written(tmp_path_factory):
    return _written("teacher", tmp_path_factory)


def test_report_is_self_contained_with_the_graphs_tables_and_plots(written):
    graph, rep, folder = written
    text = (folder / "index.html").read_text(encoding="utf-8")
    page = parse(text)
    remote = [r for r in page.refs if not r.startswith("data:")]
    assert remote == [], f"{graph}: external references {remote}"
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert {"run", "metrics"} <= set(page.tables), page.tables
    assert page.tags.get("img", 0) == PLOTS[graph], graph
    assert page.tags.get("script") == 1  # the page's own filter script
    assert list(folder.glob(".index-*")) == []  # the atomic write left no temp
    if graph == "teacher":
        assert page.traj_details == TEACHER_USERS
        assert "tools" in text and "Reflection" in text and "Ranking" in text
        assert "policies" in page.tables
    else:
        assert page.traj_details == 1  # one run, its steps as a table
        assert "<th>decision</th>" in text


def test_teacher_report_shows_each_users_plan_tool_calls_and_hit(teacher_written):
    graph, rep, folder = teacher_written
    text = (folder / "index.html").read_text(encoding="utf-8")
    assert text.count("<h3>Plan") == TEACHER_USERS
    assert text.count("<h3>Tool calls</h3>") >= TEACHER_USERS
    assert "user_profile" in text and "The user has" in text  # args, evidence
    hits = text.count("<span class='hit'>hit</span>")
    assert hits == round(rep.metrics["teacher"]["HR@10"] * TEACHER_USERS)


def _evil_trajectories(path: Path, thread_id: str, users: int) -> None:
    evil = "<script>alert('x')</script>"
    for u in range(users):
        with Recorder(path, f"{thread_id}:{u}", graph="teacher") as rec:
            task = f'{{"candidates": [{{"item": 7, "title": "{evil}"}}]}}'
            rec.step(
                node="planner",
                user=u,
                policy="llm:<b>m</b>",
                decision={"analyses": ["profile"], "reason": evil},
                extra={"task": task},
            )
            rec.step(
                node="tools",
                user=u,
                tool_results=[
                    {"name": "t", "args": {"q": evil}, "evidence": [evil], "result": 1}
                ],
            )
            rec.step(
                node="reflector",
                user=u,
                decision={"accept": False, "issues": [evil], "extra_analyses": []},
            )
            rec.step(
                node="finish",
                user=u,
                metrics={"rank": 1, "hit@10": True, "ndcg@10": 1.0},
                extra={"ranking": [7], "target": 7},
            )


def test_untrusted_text_in_titles_and_reasoning_is_escaped(tmp_path):
    rep = {"graph": "teacher", "thread_id": "t", "protocol": "p", "users": 2}
    rep |= {"metrics": {"teacher": {"NDCG@10": 1.0}}, "policies": {}}
    path = tmp_path / "t.jsonl"
    _evil_trajectories(path, "t", users=2)
    text = report_html.render_html(rep, path)
    assert "<script>alert" not in text and "<b>m</b>" not in text
    assert text.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") >= 8
    assert parse(text).tags["script"] == 1


def test_browser_caps_the_users_and_says_how_many_it_left_out(tmp_path):
    rep = {"graph": "teacher", "thread_id": "t", "protocol": "p", "users": 3}
    rep |= {"metrics": {"teacher": {"NDCG@10": 1.0}}, "policies": {}}
    path = tmp_path / "t.jsonl"
    _evil_trajectories(path, "t", users=3)
    Recorder(path, "other:0", graph="teacher").close()  # another thread's run
    text = report_html.render_html(rep, path, max_users=1)
    assert parse(text).traj_details == 1
    assert "2 more users omitted (the browser shows the first 1)" in text


def test_cli_run_writes_the_report_into_the_given_folder(tmp_path):
    from agenticrec.cli import _register_graphs, app

    _register_graphs()  # what the console entry point does first
    out = CliRunner().invoke(
        app,
        ["run", "teacher", "--users", "2", "--json", "--report", str(tmp_path)],
    )
    assert out.exit_code == 0, out.output
    page = parse((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert "metrics" in page.tables and page.traj_details == 2
    assert (tmp_path / report_html.TRAJECTORY_FILE).is_file()


# -------------------------------------------------------- headless Chromium
def _browser() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("AGENTICREC_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(reason + "; AGENTICREC_REQUIRE_BROWSER is set")
    pytest.skip(reason)


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium call, offline and without a user profile."""
    return subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def nonblank(png: Path) -> tuple[int, float]:
    """Distinct colours and the share of pixels that are not white."""
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 24) or []
        white = sum(n for n, c in colours if min(c) >= 250)
        return len(colours), 1 - white / (rgb.width * rgb.height)


def test_chromium_renders_the_tables_and_a_nonblank_page(written, tmp_path):
    graph, rep, folder = written
    url = (folder / "index.html").resolve().as_uri()
    dom = chromium(url, tmp_path / "profile", "--dump-dom").stdout
    page = parse(dom)
    assert {"run", "metrics"} <= set(page.tables), (graph, page.tables)
    assert 'data-ready="1"' in dom  # the inline script ran
    assert page.tags.get("img", 0) == PLOTS[graph]
    shot = tmp_path / "shot.png"
    chromium(
        url, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000"
    )
    colours, ink = nonblank(shot)
    assert colours > 50 and ink > 0.02, (graph, colours, ink)
