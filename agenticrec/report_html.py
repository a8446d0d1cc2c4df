"""A report a person opens: one self-contained ``index.html`` per run.

``agenticrec run <graph> --report DIR`` (or ``run(..., report_dir=DIR)``)
writes ``DIR/index.html``: the report's metrics against the baselines as
tables, the graph's plots (PNG data URIs) and a trajectory browser. Nothing
is fetched: CSS, images and the small filter script are inline, so the file
opens offline and can be mailed or archived as is.

Every string that comes from a run (item titles, model reasoning, tool
results) is HTML-escaped: trajectories are untrusted text. The browser shows
at most :data:`MAX_USERS` users of a teacher run and :data:`MAX_STEPS` steps
of any other run, and says how many it left out.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agenticrec._report_plots import plots_for
from agenticrec.graphspec import GraphSpec, Report, get_graph
from agenticrec.trajectory import StepRecord, Trajectory, read_trajectories

__all__ = [
    "MAX_STEPS",
    "MAX_USERS",
    "load_trajectories",
    "render_html",
    "report_context",
    "run_with_report",
    "write_report",
]

MAX_USERS = 50
"""Users of a teacher run shown in the trajectory browser (the first ones)."""
MAX_STEPS = 300
"""Steps of a non-teacher run shown in the trajectory browser."""
MAX_JSON = 1500
"""Characters of one JSON value (arguments, decision) before it is cut."""

TRAJECTORY_FILE = "trajectories.jsonl"

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1180px;
color:#1d232b;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;
border-bottom:2px solid #d8dee6;padding-bottom:4px}h3{font-size:15px;margin:14px 0 6px}
.summary{color:#46505c;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
th,td{border:1px solid #d0d7df;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#e6f4ea}
.plots{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;border:1px solid #d0d7df;padding:6px;background:#fafbfc}
figure img{max-width:560px;display:block}figcaption{font-size:12px;color:#46505c}
details{border:1px solid #d0d7df;border-radius:4px;margin:6px 0;padding:4px 10px}
details>summary{cursor:pointer;font-weight:600}
.hit{color:#137333}.miss{color:#b3261e}
pre{background:#f5f7f9;padding:6px;white-space:pre-wrap;word-break:break-word;
margin:4px 0;font-size:12px;max-height:320px;overflow:auto}
ol.ranking li.target{font-weight:700;color:#137333}
.note{color:#6b7580;font-style:italic}
#filter{margin:4px 0 8px;padding:4px 6px;width:280px}
"""

_JS = """
(function(){
  var box=document.getElementById('filter');
  var items=document.querySelectorAll('#trajectories details.traj');
  var count=document.getElementById('shown');
  function apply(){
    var q=(box?box.value:'').toLowerCase(),n=0;
    items.forEach(function(d){
      var ok=!q||d.textContent.toLowerCase().indexOf(q)>=0;
      d.style.display=ok?'':'none';if(ok)n++;});
    if(count)count.textContent=n+' of '+items.length+' shown';
  }
  if(box)box.addEventListener('input',apply);
  apply();
  document.body.setAttribute('data-ready','1');
})();
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return _e(x)
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, str):
        return _e(x)
    return _e(_json(x))


def _json(x: Any, limit: int = MAX_JSON) -> str:
    text = json.dumps(x, ensure_ascii=False, default=str, sort_keys=False)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def _pre(x: Any) -> str:
    return f"<pre>{_e(x if isinstance(x, str) else _json(x))}</pre>"


def _table(
    rows: Sequence[Mapping[str, Any]],
    cols: Sequence[str] | None = None,
    *,
    key: str | None = None,
    id: str | None = None,
    best: str | None = None,
) -> str:
    """``rows`` as a table; ``key`` names the first column (the row label)."""
    if not rows:
        return '<p class="note">none</p>'
    cols = list(cols or dict.fromkeys(c for r in rows for c in r))
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="num">{_fmt(r.get(c))}</td>'
            if isinstance(r.get(c), int | float) and not isinstance(r.get(c), bool)
            else f"<td>{_fmt(r.get(c, ''))}</td>"
            for c in cols
        )
        cls = ' class="best"' if best is not None and r.get(key) == best else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    ident = f' id="{_e(id)}"' if id else ""
    return (
        f"<table{ident}><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _by_row(d: Mapping[str, Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{key: name, **dict(v)} for name, v in d.items()]


def _kv(d: Mapping[str, Any], id: str | None = None) -> str:
    return _table([{"field": k, "value": v} for k, v in d.items()], id=id)


# ------------------------------------------------------------- per graph
def _sections_teacher(rep: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"Metrics vs baselines ({rep['protocol']}, {rep['users']} users)",
            _table(
                _by_row(rep["metrics"], "method"),
                key="method",
                id="metrics",
                best="teacher",
            ),
        ),
        ("Policies", _table(_by_row(rep["policies"], "role"), id="policies")),
    ]


def _sections_dualagent(rep: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"Metrics vs baselines ({rep['users']} users)",
            _table(
                _by_row(rep["metrics"], "method"),
                key="method",
                id="metrics",
                best=rep["method"],
            ),
        ),
        ("Settings", _kv(rep["settings"], id="settings")),
        (
            "Constraints",
            _table([{"constraint": c} for c in rep["constraints"]])
            + _kv(rep["satisfiability"]),
        ),
        ("Policies", _kv(rep["policies"], id="policies")),
    ]


def _sections_system(rep: dict[str, Any]) -> list[tuple[str, str]]:
    cols = (
        "round",
        "shifted",
        "outer_offline",
        "outer_heldout",
        "initial_outer_heldout",
        "ndcg_heldout",
        "satisfaction_heldout",
        "trigger",
        "routing_after",
    )
    final = dict(rep["final"])
    arms = final.pop("arms", {})
    arm_rows = [
        {"arm": arm, "knob": k, "default": v[0], "value": v[1]}
        for arm, knobs in arms.items()
        for k, v in knobs.items()
    ]
    return [
        (
            "Outer rewards per round (vs the frozen initial composition)",
            _table(rep["rounds"], cols, id="metrics"),
        ),
        ("Final", _kv(final, id="final")),
        ("Arms (knobs that differ from the default)", _table(arm_rows)),
        ("Policies", _table(_by_row(rep["policies"], "role"), id="policies")),
    ]


def _sections_tune(rep: dict[str, Any]) -> list[tuple[str, str]]:
    checks = [
        {
            "check": name,
            **{k: rep[name].get(k) for k in ("id", "config", "decision", "diff", "p")},
        }
        for name in ("winner", "confirmation")
        if rep.get(name)
    ]
    default = [{"config": "default", **rep["default_offline"]}]
    return [
        ("Winner and confirmation", _table(checks, id="checks")),
        ("Default configuration (offline)", _table(default, id="metrics")),
        ("A/B history per round", _table(rep["history"], id="history")),
        ("A/B tests", _table(rep["experiments"], id="experiments")),
        ("Skills", _kv(rep["skills"])),
        ("Insight", _pre(rep.get("insight") or "")),
        ("Policies", _table(_by_row(rep["policies"], "role"), id="policies")),
    ]


def _sections_generic(rep: dict[str, Any]) -> list[tuple[str, str]]:
    """Any other graph: each ``{name: {metric: number}}`` field as a table."""
    out = []
    for name, v in rep.items():
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            out.append((name, _table(_by_row(v, "name"), id=name)))
    return out


_SECTIONS = {
    "teacher": _sections_teacher,
    "dualagent": _sections_dualagent,
    "system": _sections_system,
    "tune": _sections_tune,
}


# ---------------------------------------------------------- trajectories
def load_trajectories(
    source: str | Path | Mapping[str, Trajectory] | Iterable[Trajectory] | None,
    thread_id: str | None = None,
) -> list[Trajectory]:
    """The runs of ``thread_id`` (``run_id == thread_id`` or
    ``thread_id:<user>``) in a trajectory file, an already read one, or the
    file a run's context names (its ``trajectories`` setting); every run when
    ``thread_id`` is None; ``[]`` for no or a missing file."""
    if dataclasses.is_dataclass(source) and not isinstance(source, type):
        source = getattr(source, "trajectories", None)  # a run's context
    if source is None:
        return []
    if isinstance(source, str | Path):
        if not Path(source).is_file():
            return []
        source = read_trajectories(source)
    trajs = list(source.values() if isinstance(source, Mapping) else source)
    if thread_id is None:
        return trajs
    rid = str(thread_id)
    return [
        t
        for t in trajs
        if t.header.run_id == rid or t.header.run_id.startswith(rid + ":")
    ]


def _titles(steps: Sequence[StepRecord]) -> dict[int, str]:
    """Item id -> title, from what the run's own steps showed its agents."""
    out: dict[int, str] = {}
    for s in steps:
        for d in s.observation.get("draft", []) or []:
            if isinstance(d, dict) and "item" in d:
                out[int(d["item"])] = str(d.get("title", ""))
        task = s.extra.get("task")
        if isinstance(task, str):
            try:
                for c in json.loads(task).get("candidates", []):
                    out[int(c["item"])] = str(c.get("title", ""))
            except (ValueError, TypeError, KeyError, AttributeError):
                pass
    return out


def _item(i: Any, titles: Mapping[int, str]) -> str:
    try:
        title = titles.get(int(i))
    except (TypeError, ValueError):
        title = None
    return f"{_e(title)} <span class='note'>#{_e(i)}</span>" if title else f"#{_e(i)}"


def _teacher_user(t: Trajectory, first: bool = False) -> str:
    steps = t.steps
    titles = _titles(steps)
    user = next((s.user for s in steps if s.user is not None), t.header.run_id)
    finish = next((s for s in reversed(steps) if s.node == "finish"), None)
    fm = finish.metrics if finish else {}
    hit = fm.get("hit@10")
    mark = (
        "<span class='hit'>hit</span>"
        if hit
        else "<span class='miss'>miss</span>"
        if hit is not None
        else "<span class='note'>unfinished</span>"
    )
    parts = []
    for s in steps:
        who = f" <span class='note'>({_e(s.policy)})</span>" if s.policy else ""
        if s.fallback_reason:
            who += f" <span class='miss'>fallback: {_e(s.fallback_reason)}</span>"
        d = s.decision if isinstance(s.decision, dict) else {}
        if s.node == "planner":
            parts.append(
                f"<h3>Plan{who}</h3><p>{_e(', '.join(map(str, d.get('analyses', []))))}"
                f"</p><p class='note'>{_e(d.get('reason', ''))}</p>"
            )
        elif s.node == "analyst":
            continue  # its calls are shown, with results, by the tools step
        elif s.node == "tools":
            rows = [
                f"<tr><td>{_e(r.get('name'))}</td><td>{_pre(r.get('args', {}))}</td>"
                f"<td><ul>{''.join(f'<li>{_e(x)}</li>' for x in r.get('evidence', []))}"
                "</ul></td></tr>"
                for r in s.tool_results
            ]
            parts.append(
                "<h3>Tool calls</h3><table class='tools'><thead><tr><th>tool</th>"
                "<th>arguments</th><th>evidence</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>"
            )
        elif s.node == "ranker":
            parts.append(f"<h3>Draft ranking{who}</h3>{_pre(d.get('rationale', ''))}")
        elif s.node == "reflector":
            verdict = "accepted" if d.get("accept") else "re-analyse"
            parts.append(
                f"<h3>Reflection{who}: {_e(verdict)}</h3>"
                + (_pre(d.get("issues")) if d.get("issues") else "")
                + (
                    f"<p>extra analyses: {_e(', '.join(d['extra_analyses']))}</p>"
                    if d.get("extra_analyses")
                    else ""
                )
            )
        elif s.node == "finish":
            target = s.extra.get("target")
            items = "".join(
                f"<li class='{'target' if i == target else ''}'>{_item(i, titles)}</li>"
                for i in s.extra.get("ranking", [])
            )
            parts.append(
                f"<h3>Ranking</h3><ol class='ranking'>{items}</ol>"
                f"<p>target {_item(target, titles)}: rank {_e(fm.get('rank'))}, "
                f"hit@10 {_e(hit)}, NDCG@10 {_fmt(fm.get('ndcg@10'))}</p>"
            )
        else:
            parts.append(f"<h3>{_e(s.node)}{who}</h3>{_pre(s.decision)}")
    return (
        f"<details class='traj'{' open' if first else ''}><summary>user {_e(user)}: "
        f"{mark}, rank "
        f"{_e(fm.get('rank', '?'))}</summary>{''.join(parts)}</details>"
    )


def _generic_steps(t: Trajectory, limit: int) -> str:
    rows = []
    for s in t.steps[:limit]:
        policy = s.policy or ""
        if s.fallback_reason:
            policy += f" (fallback: {s.fallback_reason})"
        rows.append(
            "<tr>"
            f"<td class='num'>{s.index}</td><td>{_e(s.node)}</td>"
            f"<td>{_e(s.role or '')}</td><td>{_e(policy)}</td>"
            f"<td>{_pre(s.decision) if s.decision is not None else ''}</td>"
            f"<td>{_pre({**s.metrics, **s.rewards}) if s.metrics or s.rewards else ''}"
            "</td></tr>"
        )
    left = len(t.steps) - limit
    note = f"<p class='note'>{left} later steps omitted.</p>" if left > 0 else ""
    return (
        f"<details class='traj' open><summary>run {_e(t.header.run_id)}: "
        f"{len(t.steps)} steps</summary><table class='steps'><thead><tr><th>#</th>"
        "<th>node</th><th>role</th><th>policy</th><th>decision</th>"
        f"<th>metrics / rewards</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        f"</table>{note}</details>"
    )


def _browser(graph: str, trajs: Sequence[Trajectory], max_users: int) -> str:
    if not trajs:
        return (
            "<p class='note'>No trajectories: run with --trajectories FILE or "
            "--report DIR to record them.</p>"
        )
    if graph == "teacher":
        shown = trajs[:max_users]
        body = "".join(_teacher_user(t, i == 0) for i, t in enumerate(shown))
        left = len(trajs) - len(shown)
        note = (
            f"<p class='note'>{left} more users omitted (the browser shows the "
            f"first {max_users}).</p>"
            if left > 0
            else ""
        )
    else:
        body, note = "".join(_generic_steps(t, MAX_STEPS) for t in trajs), ""
    return (
        "<input id='filter' type='search' placeholder='filter (user, tool, title)'>"
        f" <span id='shown' class='note'></span>{body}{note}"
    )


# ------------------------------------------------------------------ page
def render_html(
    report: Report | Mapping[str, Any],
    trajectories: Any = None,
    *,
    max_users: int = MAX_USERS,
) -> str:
    """The self-contained HTML page of ``report``.

    Args:
        report: a graph's typed report (or its ``model_dump(mode="json")``).
        trajectories: a trajectory file, runs read from one, or the run's
            context (see :func:`load_trajectories`); only the runs of the
            report's thread are shown.
        max_users: users of a teacher run in the trajectory browser.
    """
    rep = report.model_dump(mode="json") if isinstance(report, Report) else dict(report)
    graph = str(rep.get("graph", "run"))
    trajs = load_trajectories(trajectories, rep.get("thread_id"))
    steps = [s for t in trajs for s in t.steps]
    summary = report.summary() if isinstance(report, Report) else ""
    head = {
        k: rep.get(k)
        for k in ("graph", "status", "seed", "thread_id", "cached", "data")
        if k in rep
    }
    head.update({f"timing {k}": v for k, v in (rep.get("timings") or {}).items()})
    sections = _SECTIONS.get(graph, _sections_generic)(rep)
    plots = plots_for(rep, steps)
    fig = "".join(
        f"<figure><img alt='{_e(title)}' src='{uri}'><figcaption>{_e(title)}"
        "</figcaption></figure>"
        for title, uri in plots
    )
    body = [
        f"<h1>agenticrec {_e(graph)} report</h1>",
        f"<p class='summary'>{_e(summary)}</p>",
        "<h2>Run</h2>",
        _kv(head, id="run"),
    ]
    body += [f"<h2>{_e(title)}</h2>{content}" for title, content in sections]
    body.append(
        "<h2>Plots</h2>"
        + (f"<div class='plots'>{fig}</div>" if fig else "<p class='note'>none</p>")
    )
    body.append(
        f"<h2>Trajectories</h2><div id='trajectories'>"
        f"{_browser(graph, trajs, max_users)}</div>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>agenticrec {_e(graph)} report</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}<script>{_JS}</script></body></html>\n"
    )


def report_context(ctx: Any, folder: str | Path) -> Any:
    """``ctx`` with what a report needs recorded into ``folder``: the
    trajectory file (``trajectories.jsonl``) and, for a graph with a ``plot``
    setting, its plots, unless the caller set them already. A copy; ``ctx``
    is not changed. (Dualagent's ``plot`` turns ``trace_hv`` on.)"""
    folder = Path(folder)
    changes: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(ctx)}
    if "trajectories" in names and not getattr(ctx, "trajectories", None):
        changes["trajectories"] = str(folder / TRAJECTORY_FILE)
    if "plot" in names and not getattr(ctx, "plot", None):
        changes["plot"] = str(folder / "plots")
    if not changes:
        return ctx
    folder.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(ctx, **changes)


def write_report(
    folder: str | Path,
    report: Report | Mapping[str, Any],
    trajectories: Any = None,
    *,
    max_users: int = MAX_USERS,
) -> Path:
    """Write ``folder/index.html`` atomically (a temporary file, then
    ``os.replace``) and return its path; see :func:`render_html`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = render_html(report, trajectories, max_users=max_users)
    path = folder / "index.html"
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".html", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def run_with_report(
    graph: str | GraphSpec, ctx: Any = None, *, folder: str | Path, **run_kw: Any
) -> Report:
    """:func:`agenticrec.runner.run` that also records what the report needs
    (:func:`report_context`) and writes ``folder/index.html``; ``run_kw`` go
    to ``run`` (``checkpoint``, ``thread_id``, ``resume``, ...)."""
    from agenticrec.runner import run

    spec = get_graph(graph) if isinstance(graph, str) else graph
    ctx = report_context(ctx if ctx is not None else spec.context(), folder)
    report = run(spec, ctx, **run_kw)
    write_report(folder, report, ctx)
    return report
