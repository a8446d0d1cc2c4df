"""PNG plots of a DualAgent-Rec run (matplotlib, Agg backend).

``front.png``: one user's final population in objective space, strictly
feasible solutions apart from infeasible ones, the chosen list marked;
``convergence.png``: mean hypervolume of the feasible sets (when the run
traced it) and feasibility rate per generation; ``alpha.png``: the
coordinator's exploitation share per round. Files go only inside the given
folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agenticrec.errors import ConfigError
from agenticrec.tools import evolve as ev

__all__ = ["write_plots"]

NAMES = ("front.png", "convergence.png", "alpha.png")


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder):
        raise ConfigError(f"plot path {path} escapes {folder}")
    return path


def write_plots(
    folder: str | Path, ctx, w, final: dict[str, Any], *, user_row: int = 0
) -> dict[str, str]:
    """Write the three plots of a finished run into ``folder``.

    Args:
        folder: output folder (created).
        ctx: the run's context.
        w: the run's workspace (:func:`agenticrec.graphs.dualagent.workspace`).
        final: the graph's final state.
        user_row: which user's front to draw (row of the batch).

    Returns:
        ``{plot name: path}``.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(folder).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not 0 <= user_row < w.n_users:
        raise ConfigError(f"user_row {user_row} outside 0..{w.n_users - 1}")
    paths = {n.split(".")[0]: _inside(out, n) for n in NAMES}

    lists = np.asarray(final["lists"], np.int32)[user_row : user_row + 1]
    problem = _row(w.batch.problem, user_row)
    obj, viol, _ = (np.asarray(x)[0] for x in ev.evaluate_lists(problem, lists))
    slot, _ = ev.pick(
        ev.Population(lists, obj[None], viol[None]),
        ctx.pick,
        weights=ctx.weights(),
        max_loss=ctx.max_loss,
    )
    chosen = int(np.asarray(slot)[0])
    feas = viol == 0
    fig = plt.figure(figsize=(6.4, 5.2))
    ax = fig.add_subplot(projection="3d")
    for mask, colour, label in (
        (feas, "tab:green", "feasible"),
        (~feas, "tab:red", "infeasible"),
    ):
        if mask.any():
            ax.scatter(
                *obj[mask].T, c=colour, s=12, alpha=0.7, label=f"{label} ({mask.sum()})"
            )
    ax.scatter(*obj[chosen], c="k", marker="*", s=160, label="chosen list")
    ax.set_xlabel("relevance")
    ax.set_ylabel("diversity")
    ax.set_zlabel("novelty")
    user = w.batch.users[user_row]
    ax.set_title(f"final population, user #{user} (compact id), {ctx.method}")
    ax.legend(loc="upper left", fontsize=8)
    fig.savefig(paths["front"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    trace = final.get("trace", [])
    fig, ax1 = plt.subplots(figsize=(6.4, 4))
    gens = [r["generation"] for r in trace]
    ax1.plot(
        gens,
        [r["feasibility_rate"] for r in trace],
        c="tab:green",
        label="feasible share",
    )
    ax1.plot(
        gens,
        [r["epsilon"] for r in trace],
        c="tab:gray",
        ls=":",
        label="epsilon (mean)",
    )
    ax1.set_xlabel("generation")
    ax1.set_ylabel("share / epsilon")
    hv = [r["hypervolume"] for r in trace]
    if any(h is not None for h in hv):
        ax2 = ax1.twinx()
        ax2.plot(
            gens,
            [np.nan if h is None else h for h in hv],
            c="tab:blue",
            label="hypervolume",
        )
        ax2.set_ylabel("hypervolume (feasible, mean)")
        ax2.legend(loc="lower right", fontsize=8)
    ax1.legend(loc="upper left", fontsize=8)
    ax1.set_title(f"convergence ({w.n_users} users)")
    fig.savefig(paths["convergence"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    rounds = final.get("rounds", [])
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.step(
        [r["generation"] for r in rounds],
        [r["alpha"] for r in rounds],
        where="post",
        marker="o",
    )
    ax.set_ylim(0, 1)
    ax.set_xlabel("generation")
    ax.set_ylabel("alpha (exploitation share)")
    ax.set_title("coordinator decisions")
    fig.savefig(paths["alpha"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return {k: str(v) for k, v in paths.items()}


def _row(problem: ev.Problem, r: int) -> ev.Problem:
    import jax

    return jax.tree.map(lambda x: x[r : r + 1], problem)
