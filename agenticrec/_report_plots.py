"""The plots of an HTML report, drawn with matplotlib (Agg) into PNG data URIs.

Each function takes the report as a plain dict (``model_dump(mode="json")``)
and the run's trajectory steps, and returns ``[(title, data URI)]``; a plot
whose data the run did not keep is left out rather than drawn empty.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plots_for", "png_uri"]

Plot = tuple[str, str]


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    _plt().close(fig)
    return png_uri(buf.getvalue())


def _teacher(rep: Mapping[str, Any], steps: Sequence[Any]) -> list[Plot]:
    metrics = rep.get("metrics") or {}
    if not metrics:
        return []
    plt = _plt()
    names = [k for k in ("NDCG@10", "HR@10", "MRR") if k in metrics.get("teacher", {})]
    methods = list(metrics)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    width = 0.8 / max(len(methods), 1)
    for i, m in enumerate(methods):
        xs = [j + i * width for j in range(len(names))]
        ax.bar(xs, [metrics[m].get(n, 0.0) for n in names], width, label=m)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names)
    ax.set_ylabel("score")
    ax.set_title(f"teacher vs baselines, protocol {rep.get('protocol')}")
    ax.legend(fontsize=8)
    return [(f"Metrics by method ({rep.get('protocol')})", _save(fig))]


def _dualagent(rep: Mapping[str, Any], steps: Sequence[Any]) -> list[Plot]:
    out: list[Plot] = []
    files = rep.get("plots") or {}
    for name in ("front", "convergence", "alpha"):
        path = files.get(name)
        if path and Path(path).is_file():
            out.append((name, png_uri(Path(path).read_bytes())))
    if out:
        return out
    # no plot files: what the trajectory kept (metrics after each evolve step)
    evolve = [s for s in steps if s.node == "evolve" and s.metrics]
    alpha = rep.get("alpha_trace") or []
    plt = _plt()
    if evolve:
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        gens = [s.observation.get("generation", i) for i, s in enumerate(evolve)]
        for key in ("hypervolume", "feasibility_rate"):
            ax.plot(gens, [s.metrics.get(key) for s in evolve], marker="o", label=key)
        ax.set_xlabel("generation (start of round)")
        ax.set_title("convergence per coordinator round")
        ax.legend(fontsize=8)
        out.append(("convergence", _save(fig)))
    if alpha:
        fig, ax = plt.subplots(figsize=(6.4, 2.6))
        ax.step(range(len(alpha)), alpha, where="post", marker="o")
        ax.set_ylim(0, 1)
        ax.set_xlabel("coordinator round")
        ax.set_ylabel("alpha")
        ax.set_title("exploitation share per round")
        out.append(("alpha", _save(fig)))
    return out


def _system(rep: Mapping[str, Any], steps: Sequence[Any]) -> list[Plot]:
    rounds = rep.get("rounds") or []
    if not rounds:
        return []
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    xs = [r["round"] for r in rounds]
    for key in ("outer_offline", "outer_heldout", "initial_outer_heldout"):
        ax1.plot(xs, [r[key] for r in rounds], marker="o", label=key)
    ax1.set_xlabel("round")
    ax1.set_title("outer reward")
    ax1.legend(fontsize=8)
    agents = sorted({k.split("/", 1)[-1] for r in rounds for k in r["inner"]})
    for agent in agents:
        ys = []
        for r in rounds:
            vals = [v for k, v in r["inner"].items() if k.endswith("/" + agent)]
            ys.append(sum(vals) / len(vals) if vals else float("nan"))
        ax2.plot(xs, ys, marker=".", label=agent)
    ax2.set_xlabel("round")
    ax2.set_title("inner reward (mean over arms)")
    ax2.legend(fontsize=7, ncol=2)
    return [("Inner and outer rewards per round", _save(fig))]


def _tune(rep: Mapping[str, Any], steps: Sequence[Any]) -> list[Plot]:
    out: list[Plot] = []
    plt = _plt()
    hist = rep.get("history") or []
    if hist:
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        xs = [h["round"] for h in hist]
        for key in ("best_online_gain", "best_offline_gain", "incumbent_gain"):
            ax.plot(xs, [h.get(key) for h in hist], marker="o", label=key)
        ax.axhline(0, c="grey", lw=0.5)
        ax.set_xlabel("round")
        ax.set_ylabel(f"relative {rep.get('north_star')} gain")
        ax.set_title("A/B history")
        ax.legend(fontsize=8)
        out.append(("A/B history", _save(fig)))
    points: dict[str, tuple[float, float]] = {}
    pareto: list[str] = []
    guard = "guard"
    for s in steps:
        if s.node == "critic":
            guard = s.observation.get("guard", guard)
            rnd = s.observation.get("round", str(s.step_id).rpartition(":")[2])
            for c in s.observation.get("candidates", []):
                if c.get("ns") is not None and c.get("guard") is not None:
                    points[f"r{rnd}c{c['index']}"] = (c["guard"], c["ns"])
        elif s.node == "insight" and "pareto" in s.observation:
            pareto = list(s.observation["pareto"])
    if points:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        rest = [p for k, p in points.items() if k not in pareto]
        best = [points[k] for k in pareto if k in points]
        if rest:
            ax.scatter(*zip(*rest, strict=True), c="tab:grey", s=18, label="evaluated")
        if best:
            ax.scatter(*zip(*best, strict=True), c="tab:red", s=36, label="Pareto set")
        ax.set_xlabel(f"offline {guard}")
        ax.set_ylabel(f"offline {rep.get('north_star')}")
        ax.set_title("offline estimates and the Pareto set")
        ax.legend(fontsize=8)
        out.append(("Pareto set", _save(fig)))
    return out


_BY_GRAPH = {
    "teacher": _teacher,
    "dualagent": _dualagent,
    "system": _system,
    "tune": _tune,
}


def plots_for(rep: Mapping[str, Any], steps: Sequence[Any]) -> list[Plot]:
    """The plots of ``rep`` (a report dict); none for an unknown graph."""
    fn = _BY_GRAPH.get(str(rep.get("graph")))
    return fn(rep, steps) if fn is not None else []
