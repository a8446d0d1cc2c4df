"""No fault loses work: a graph's CLI run killed with SIGKILL mid-way and
re-run with the same ``--checkpoint`` and ``--thread-id`` ends with the report
and trajectory of a run that was never interrupted, nothing lost, nothing
duplicated.

Each graph is killed twice (the second kill hits a resumed run) at points
read from its trajectory file, so the kills land mid-run, never after a
blind sleep. The uninterrupted reference runs alongside the killed one.

Adding a graph is one line in ``CASES``; a graph not in
:data:`agenticrec.runner.GRAPH_MODULES` is skipped until it is registered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agenticrec.graphspec import load_graphs
from agenticrec.trajectory import Recorder, read_trajectories

TIMEOUT_S = 600


@dataclass(frozen=True)
class KillAt:
    """When to SIGKILL: once the trajectory holds ``lines`` lines and, with
    ``changed`` (a file under the run's folder), as soon as that file changes
    after that: right after a durable write outside the trajectory, before the
    node that made it is checkpointed."""

    lines: int
    changed: str | None = None


@dataclass(frozen=True)
class Case:
    """One graph's CLI run.

    ``args`` may name ``{dir}``, a folder of the run's own (a Skillhub, say);
    ``kills``: one SIGKILL each, in successive processes of the same thread;
    ``records(dir, thread)`` lists the other durable records the run keeps
    (``name -> ids``, thread prefix removed), compared like the trajectory;
    ``drop`` are report keys that may differ between runs; ``same_thread``:
    the thread id is part of the result (tune's experiment ids, which seed
    its A/B assignments), so the reference runs under the same thread id.
    """

    graph: str
    args: tuple[str, ...]
    kills: tuple[KillAt, ...]
    records: Callable[[Path, str], dict[str, list[str]]] | None = None
    drop: tuple[str, ...] = ("timings", "thread_id")
    same_thread: bool = False
    marks: tuple = field(default=())
    name: str = ""


def _tune_records(d: Path, thread: str) -> dict[str, list[str]]:
    """A tune run's Skillhub skills (with outcome counts and evidence) and
    experiment memory (items, and the ``add`` lines, one per experiment)."""
    from agenticrec.skills import ChromaSkillStore, ExperimentMemory

    def sfx(i: str) -> str:
        return _suffix(i, thread) if i.startswith(thread + ":") else i

    out: dict[str, list[str]] = {}
    with ChromaSkillStore(d / "skillhub", "agenticrec", seeds=False) as hub:
        skills = hub.all()
    out["skills"] = [
        f"{s.id} +{s.success_count} -{s.failure_count} "
        f"{sorted(sfx(e.experiment_id) for e in s.evidence)}"
        for s in skills
    ]
    out["skill evidence"] = [
        f"{s.id} <- {sfx(e.experiment_id)}" for s in skills for e in s.evidence
    ]
    for f in sorted((d / "skillhub" / "experiments").glob("*.jsonl")):
        items = ExperimentMemory(f).items()
        out[f"experiments {f.name}"] = [
            f"{sfx(i.id)} {i.status} {json.dumps(i.results, sort_keys=True)}"
            for i in items
        ]
        lines = [json.loads(x) for x in f.read_text().splitlines()]
        out[f"experiment adds {f.name}"] = [
            sfx(o["id"]) for o in lines if o.get("status") == "running"
        ]
    return out


CASES = [
    # users run in parallel (Send fan-out): killed with 1 and with 8 in flight
    Case("teacher", ("--users", "40", "--concurrency", "1"),
         kills=(KillAt(90), KillAt(210)), name="teacher-c1"),
    Case("teacher", ("--users", "40", "--concurrency", "8"),
         kills=(KillAt(90), KillAt(210)), name="teacher-c8"),
    Case(
        "system",
        ("--rounds", "3", "--shift-round", "2"),
        kills=(KillAt(3), KillAt(6)),  # in compositional:1, then :2
        marks=(pytest.mark.slow,),
    ),
    Case(
        "tune",
        ("--rounds", "3", "--max-users", "200", "--objective", "diversity",
         "--skillhub", "{dir}/skillhub"),
        kills=(
            # just after online:0 stored its first experiment
            KillAt(4, "skillhub/experiments/ml-latest-small-diversity.jsonl"),
            # just after skill:1 distilled round 1's winner into the Skillhub
            KillAt(10, "skillhub/skillhub.version"),
        ),
        records=_tune_records,
        same_thread=True,
        marks=(pytest.mark.slow,),
    ),
    Case(
        "dualagent",
        ("--users", "12", "--pop", "50", "--gens", "40", "--candidates", "200"),
        kills=(KillAt(4), KillAt(8)),  # after evolve:0, then in evolve:30
        marks=(pytest.mark.slow,),
    ),
]


def _registered(graph: str) -> bool:
    return graph in load_graphs()


def _params():
    for c in CASES:
        marks = list(c.marks)
        if not _registered(c.graph):
            marks.append(pytest.mark.skip(reason=f"graph {c.graph!r} not registered"))
        yield pytest.param(c, id=c.name or c.graph, marks=marks)


# ---------------------------------------------------------------- helpers
def _cmd(case: Case, run_dir: Path, *extra: str) -> list[str]:
    args = [a.replace("{dir}", str(run_dir)) for a in case.args]
    return [sys.executable, "-m", "agenticrec", "run", case.graph, *args,
            "--seed", "0", "--json", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _reap():
    """A failed test leaves no run behind (only the processes it started)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _start(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as err:  # the child keeps its own copy
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                                stderr=err)
    _STARTED.append(proc)
    return proc


def _report(proc: subprocess.Popen, log: Path, drop: tuple[str, ...],
            thread: str = "", run_dir: Path | None = None) -> dict:
    """The JSON report less ``drop``, with ``thread`` and ``run_dir`` (in ids
    and paths) replaced by placeholders."""
    out, _ = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, log.read_text()[-3000:]
    report = json.loads(out)
    for key in drop:
        report.pop(key, None)
    text = json.dumps(report, sort_keys=True)
    if run_dir is not None:
        text = text.replace(str(run_dir), "<dir>")
    if thread:
        text = text.replace(f'"{thread}:', '"<thread>:')
    return json.loads(text)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _kill(proc: subprocess.Popen, traj: Path, run_dir: Path, at: KillAt,
          log: Path) -> int:
    """SIGKILL ``proc`` at ``at``; returns the trajectory's line count then."""
    deadline = time.monotonic() + TIMEOUT_S
    baseline: bytes | None = None
    while True:
        assert proc.poll() is None, f"ended before its kill {at}: {log.read_text()}"
        assert time.monotonic() < deadline, f"no {at} in {TIMEOUT_S} s"
        n = _lines(traj)
        if n >= at.lines:
            if at.changed is None:
                break
            now = _read(run_dir / at.changed)
            if baseline is None:
                baseline = now or b""
            elif now is not None and now != baseline:
                break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before its kill"
    return n


def _suffix(run_id: str, thread: str) -> str:
    """A run id without its thread prefix (thread ids may hold ':' too)."""
    assert run_id == thread or run_id.startswith(thread + ":"), (run_id, thread)
    return run_id[len(thread) + 1:]


def _records(path: Path, thread: str) -> Counter:
    """``(type, run suffix, step id)`` of every line, counted."""
    out: Counter = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        out[(rec["type"], _suffix(rec["run_id"], thread), rec.get("step_id"))] += 1
    return out


def _assert_same_records(ref: Path, ref_thread: str, got: Path, thread: str):
    want, have = _records(ref, ref_thread), _records(got, thread)
    assert max(want.values()) == 1
    dup = {k: n for k, n in have.items() if n > 1}
    assert not dup, f"duplicated records: {dup}"
    assert not want - have, f"lost records: {sorted(want - have)}"
    assert not have - want, f"extra records: {sorted(have - want)}"
    runs = read_trajectories(got)
    assert runs.report.truncated_line is None
    assert runs and all(t.complete for t in runs.values()), [
        r for r, t in runs.items() if not t.complete
    ]


def _assert_unique_equal(want: dict[str, list[str]], have: dict[str, list[str]]):
    assert sorted(have) == sorted(want)
    for name, ids in have.items():
        assert len(ids) == len(set(ids)), f"{name}: duplicated ids"
        assert sorted(ids) == sorted(want[name]), name


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("case", list(_params()))
def test_sigkill_mid_run_then_resume_equals_the_uninterrupted_run(case, tmp_path):
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"
    ref_dir.mkdir()
    cut_dir.mkdir()
    log = tmp_path / "stderr.log"
    a, b = ref_dir / "A.jsonl", cut_dir / "B.jsonl"
    thread = "cut:1"  # with a ':', as run ids are "{thread}:{user}"
    ref_thread = thread if case.same_thread else "ref:0"
    resume = ("--checkpoint", str(cut_dir / "ck.sqlite"), "--thread-id", thread,
              "--trajectories", str(b))

    ref = _start(_cmd(case, ref_dir, "--thread-id", ref_thread,
                      "--trajectories", str(a)), tmp_path, log)
    killed_at = []
    for at in case.kills:
        proc = _start(_cmd(case, cut_dir, *resume), tmp_path, log)
        killed_at.append(_kill(proc, b, cut_dir, at, log))
    assert (cut_dir / "ck.sqlite").stat().st_size > 0
    final = _start(_cmd(case, cut_dir, *resume), tmp_path, log)
    resumed = _report(final, log, case.drop, thread, cut_dir)
    reference = _report(ref, log, case.drop, ref_thread, ref_dir)

    assert killed_at[-1] < _lines(a), "the last kill came after the run's end"
    assert resumed == reference
    _assert_same_records(a, ref_thread, b, thread)
    if case.records is not None:
        _assert_unique_equal(
            case.records(ref_dir, ref_thread), case.records(cut_dir, thread)
        )


def test_two_processes_share_one_trajectory_file(tmp_path):
    """Two teacher runs (different threads) append to one file at once: whole
    lines only, both runs complete, the same records as each other."""
    path = tmp_path / "shared" / "t.jsonl"
    log = tmp_path / "stderr.log"
    case = Case("teacher", ("--users", "30"), kills=())
    procs = {
        t: _start(_cmd(case, tmp_path, "--thread-id", t, "--trajectories", str(path)),
                  tmp_path, log)
        for t in ("p:1", "p:2")
    }
    reports = {t: _report(p, log, case.drop) for t, p in procs.items()}
    assert reports["p:1"] == reports["p:2"]

    owners = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        rec = json.loads(line)  # every line is one whole record
        owners.append(rec["run_id"][:3])
    switches = sum(x != y for x, y in zip(owners, owners[1:], strict=False))
    assert switches >= 2, "the two runs did not write at the same time"
    runs = read_trajectories(path)
    assert runs.report.truncated_line is None
    assert len(runs) == 60 and all(t.complete for t in runs.values())
    mine = {t: Counter() for t in procs}
    for run_id, traj in runs.items():
        t = run_id[:3]
        suffix = _suffix(run_id, t)
        mine[t].update((suffix, s.step_id) for s in traj.steps)
    assert mine["p:1"] == mine["p:2"] and max(mine["p:1"].values()) == 1


# ------------------------------------------- torn writes (what a kill can cut)
TITLE = "Amélie (Le fabuleux destin d'Amélie Poulain) · 東京物語 🎬"


def _step(rec: Recorder, i: int) -> None:
    rec.step(f"s{i}", node="n", observation={"title": TITLE, "i": i},
             messages=[{"role": "user", "content": TITLE * 3}])


def test_a_record_torn_at_any_byte_is_written_again_exactly_once(tmp_path):
    """A writer killed inside ``write`` leaves a prefix of its line, possibly
    cut inside a UTF-8 character or just before its newline. A resumed writer
    must keep the file readable and end with every step exactly once."""
    base = tmp_path / "base.jsonl"
    with Recorder(base, graph="g", run_id="t:u") as rec:
        _step(rec, 0)
        _step(rec, 1)
    whole = base.read_bytes()
    last = whole[whole.rstrip(b"\n").rfind(b"\n") + 1:]
    head = whole[: len(whole) - len(last)]
    assert last.endswith(b"}\n") and len(last.decode()) < len(last)  # multi-byte

    path = tmp_path / "t.jsonl"
    for cut in range(1, len(last)):
        path.write_bytes(head + last[:cut])
        with Recorder(path, graph="g", run_id="t:u") as rec:
            _step(rec, 1)  # the resumed node records its step again
            _step(rec, 2)
            rec.end()
        runs = read_trajectories(path)
        assert runs.report.truncated_line is None, cut
        steps = [s.step_id for s in runs["t:u"].steps]
        assert steps == ["s0", "s1", "s2"] and runs["t:u"].complete, cut
        assert path.read_bytes().count(b'"type":"run"') == 1, cut


def test_a_reader_tolerates_a_tail_cut_inside_a_character(tmp_path):
    path = tmp_path / "t.jsonl"
    with Recorder(path, graph="g", run_id="r") as rec:
        _step(rec, 0)
    data = path.read_bytes()
    with open(path, "ab") as fh:
        line = data[data.index(b"\n") + 1:]
        fh.write(line[: line.index("é".encode()) + 1])  # half of 'é'
    runs = read_trajectories(path)
    assert runs.report.truncated_line == 3 and len(runs["r"].steps) == 1
