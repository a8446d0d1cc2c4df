"""The tuning task the AgenticRecTune agents work on: data, splits, objectives.

Protocol (per user, interactions in time order, numbered from the end: event 1
is the last one)::

    offline users:  ... history ... | offline events E+O .. O+1 |  (unused)
    online users:   ... history ... |          (unused)         | online O .. 1

Users are partitioned at random (seeded) into an *offline* and an *online*
group. The online group's last ``online_events`` interactions (``O``, default
1: the leave-one-out test item) are the online period that only the Online
agent's A/B tests read. The offline group's events ``O+1 .. O+E`` (``E`` =
``offline_events``, default 3) are what the Actor and Critic estimate on; each
offline user's metric is the mean over its ``E`` events, which steadies the
estimate without more users. An event ``j`` is predicted from every user's
interactions older than their own event ``j`` (a per-user time cut-off), so no
offline pipeline ever sees an online-period interaction.

With ``E = O = 1`` this is :func:`agenticrec.tools.pipeline.tuning_pipelines`
(offline users on their validation item, online users on their test item).

The Critic replicates every estimate on two halves of the offline users
(hashed ids, :func:`agenticrec.tools.abtest.assign`): a candidate must improve
the north star on both.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from agenticrec import data
from agenticrec.data._splits import Split
from agenticrec.errors import ConfigError
from agenticrec.graphs import _tune_search as search
from agenticrec.tools.abtest import (
    ABTestResult,
    Guardrail,
    MetricComparison,
    _unit,
    analyse,
    assign,
)
from agenticrec.tools.abtest_design import (
    assign_stratified,
    cuped,
    msprt_pvalues,
    strata_of,
)
from agenticrec.tools.interleave import credit, team_draft
from agenticrec.tools.pipeline import Pipeline, PipelineConfig, item_embeddings
from agenticrec.workspace import data_workspace

__all__ = [
    "OBJECTIVES",
    "Objective",
    "TuneTask",
    "ab_summary",
    "config_key",
    "estimate_proposals",
    "experiment_seed",
    "rel",
    "round_summary",
    "slug",
    "task_workspace",
]

ObjectiveName = Literal["ndcg", "diversity"]
AB_METRICS: tuple[str, ...] = ("NDCG@10", "HR@10", "ILD@10", "novelty@10")
"""Per-user metrics an A/B test compares (NDCG@10 is the engagement metric)."""
REPORT_METRICS: tuple[str, ...] = (*AB_METRICS, "coverage@10")
ENGAGEMENT_METRICS: tuple[str, ...] = ("NDCG@10", "HR@10")
"""Metrics that depend on what the user did (an interleaved test credits
them per team); the others are properties of the served list."""
AB_DESIGNS: tuple[str, ...] = ("welch", "cuped", "cuped+strata", "interleave")
LCB_Z = 1.0
"""Standard errors the Critic's offline lower bound subtracts
(:meth:`TuneTask.gain_lower_bound`)."""
"""A/B designs of :meth:`TuneTask.ab_test`."""


@dataclass(frozen=True)
class Objective:
    """What a tuning task optimises and what must not break."""

    name: str
    """``ndcg`` or ``diversity``."""
    north_star: str
    """Per-user metric the A/B test must raise significantly."""
    guard: str
    """Second objective of the offline Pareto set and the Critic's guardrail."""
    guard_tolerance: float
    """Largest relative offline drop of ``guard`` the Critic accepts."""
    guardrails: tuple[Guardrail, ...]
    """A/B guardrails: no significant drop beyond each tolerance."""
    text: str
    """The task as the Actor reads it and the Skillhub is searched with."""


OBJECTIVES: dict[str, Objective] = {
    "ndcg": Objective(
        name="ndcg",
        north_star="NDCG@10",
        guard="ILD@10",
        guard_tolerance=0.005,
        guardrails=(Guardrail(metric="ILD@10"), Guardrail(metric="novelty@10")),
        text=(
            "Tune the multi-stage recommender (recall, pre-ranking, ranking, "
            "re-ranking) to raise engagement NDCG@10 in an A/B test, while "
            "intra-list diversity ILD@10 and novelty must not drop."
        ),
    ),
    "diversity": Objective(
        name="diversity",
        north_star="ILD@10",
        guard="NDCG@10",
        guard_tolerance=0.05,
        guardrails=(Guardrail(metric="NDCG@10", max_relative_drop=0.05),),
        text=(
            "Tune the re-ranking and ranking of the multi-stage recommender to "
            "raise intra-list diversity ILD@10 of the final top-10 in an A/B "
            "test, while NDCG@10 drops by at most 5% relative."
        ),
    ),
}


def slug(text: str) -> str:
    """A short id-safe name: ``/data/amazon-sci/`` -> ``amazon-sci``."""
    base = re.split(r"[\\/]", text.rstrip("/\\"))[-1] or "data"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._")[:40] or "data"


def rel(new: float, old: float) -> float:
    """Relative change of ``new`` over ``old`` (0 when ``old`` is 0)."""
    return (new - old) / abs(old) if old else 0.0


def config_key(overrides: Mapping[str, Any]) -> str:
    """Canonical text of a full config (equal configs, equal keys)."""
    flat = PipelineConfig.from_flat(dict(overrides)).to_flat()
    return json.dumps(
        {k: round(v, 6) if isinstance(v, float) else v for k, v in flat.items()},
        sort_keys=True,
    )


class TuneTask:
    """Pipelines and statistics of one tuning task (build with
    :func:`task_workspace`, which caches one per setting): a view over the
    kernel's :func:`~agenticrec.workspace.data_workspace` of ``data_name``
    (its leave-one-out split), with per-user time cut-offs of its own."""

    def __init__(
        self,
        data_name: str,
        *,
        seed: int,
        online_share: float,
        offline_events: int,
        online_events: int,
        max_users: int,
    ) -> None:
        if not 0.0 < online_share < 1.0:
            raise ConfigError(f"online_share must lie in (0, 1), got {online_share}")
        if offline_events < 1 or online_events < 1:
            raise ConfigError(
                "offline_events and online_events must be >= 1, got "
                f"{offline_events} and {online_events}"
            )
        self.data_name = data_name
        self.slug = slug(data_name)
        self.seed = seed
        self.online_events = online_events
        self.offline_events = offline_events
        split = data_workspace(data_name).split
        ds = split.dataset
        self.dataset = ds
        indptr, _ = ds.user_histories()
        counts = np.diff(indptr)
        from_end = np.repeat(counts, counts) - (
            np.arange(ds.n_interactions) - np.repeat(indptr[:-1], counts)
        )
        groups = data.split_users(
            ds, {"offline": 1.0 - online_share, "online": online_share}, seed=seed
        )
        emb = item_embeddings(ds, "lsa")
        last = online_events + offline_events
        rng = np.random.default_rng(seed)

        def users_of(group: str) -> np.ndarray:
            u = np.asarray(groups[group], np.int64)
            u = u[counts[u] >= last + 2]  # >= 2 history items before every event
            if max_users and len(u) > max_users:
                u = np.sort(rng.choice(u, max_users, replace=False))
            return u

        def pipeline(users: np.ndarray, j: int) -> Pipeline:
            sp = Split(
                dataset=ds,
                train=np.flatnonzero(from_end > j),
                valid=np.flatnonzero(from_end == j),
                test=np.flatnonzero(from_end == j),
                protocol=f"leave-{j}-out",
                touched=split.touched,
            )
            return Pipeline.build(sp, users, "valid", embeddings=emb)

        off_users, on_users = users_of("offline"), users_of("online")
        if len(off_users) < 8 or len(on_users) < 8:
            raise ConfigError(
                f"{data_name}: {len(off_users)} offline and {len(on_users)} online "
                f"users have >= {last + 2} interactions; lower offline_events or "
                "online_events"
            )
        self.offline = [
            pipeline(off_users, j) for j in range(1 + online_events, 1 + last)
        ]
        self.online = [pipeline(on_users, j) for j in range(1, 1 + online_events)]
        # the online users' pre-period (their events just before the online
        # period, unused otherwise): the CUPED covariate and the strata, built
        # on first use (only the CUPED designs read it)
        self._pre_pipes = lambda: [
            pipeline(on_users, j) for j in range(1 + online_events, 1 + last)
        ]
        self._pre: list[Pipeline] | None = None
        self.offline_user_ids = self.offline[0].user_ids
        self.online_user_ids = self.online[0].user_ids
        self.half = assign(self.offline_user_ids, seed=seed + 104729)
        """``bool[n_offline]``: replicate B (True) or A (False)."""
        self._cache: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    # --------------------------------------------------------------- info
    def describe(self) -> dict[str, Any]:
        return {
            "data": self.data_name,
            "dataset": self.dataset.name,
            "fingerprint": self.dataset.fingerprint,
            "offline_users": int(len(self.offline_user_ids)),
            "online_users": int(len(self.online_user_ids)),
            "offline_events": self.offline_events,
            "online_events": self.online_events,
            "items": int(self.dataset.n_items),
        }

    # ------------------------------------------------------------ metrics
    def _per_user(self, side: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Per-user metrics averaged over the side's events (cached)."""
        key = (side, config_key(overrides))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        config = PipelineConfig.from_flat(dict(overrides))
        if side == "pre" and self._pre is None:
            self._pre = self._pre_pipes()
        pipes = {"offline": self.offline, "online": self.online, "pre": self._pre}[side]
        evs = [p.evaluate(config) for p in pipes]
        out: dict[str, Any] = {
            m: np.mean([e[m] for e in evs], axis=0) for m in AB_METRICS
        }
        out["coverage@10"] = float(np.mean([e.aggregates["coverage@10"] for e in evs]))
        if len(self._cache) > 512:
            self._cache.clear()
        self._cache[key] = out
        return out

    def estimate(self, overrides: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """Offline estimate on all offline users and on halves ``A`` and ``B``.

        Returns:
            ``{"all"|"A"|"B": {metric: mean}}``; ``coverage@10`` only in ``all``.
        """
        pu = self._per_user("offline", overrides)
        out = {}
        for name, rows in (
            ("all", slice(None)),
            ("A", ~self.half),
            ("B", self.half),
        ):
            out[name] = {m: round(float(np.mean(pu[m][rows])), 6) for m in AB_METRICS}
        out["all"]["coverage@10"] = round(pu["coverage@10"], 6)
        return out

    def gain_lower_bound(
        self, overrides: Mapping[str, Any], metric: str, z: float = LCB_Z
    ) -> float:
        """Relative offline gain of ``metric`` over the default, minus ``z``
        standard errors of the paired per-user difference (all offline
        users; 0.0 for the default itself).

        Why a paired lower bound rather than "better on both halves": a
        configuration with no effect passes ``z = 1`` about 16% of the time
        (both halves: 25%), while a real gain is judged on every offline
        user at once instead of on two half-size samples that disagree
        whenever a few heavy users land in one of them.
        """
        t = self._per_user("offline", overrides)[metric]
        c = self._per_user("offline", {})[metric]
        d = np.asarray(t, np.float64) - np.asarray(c, np.float64)
        base = float(np.mean(c))
        if base == 0 or len(d) < 2:
            return 0.0
        se = float(d.std(ddof=1) / np.sqrt(len(d)))
        return float((d.mean() - z * se) / abs(base))

    def ab_test(
        self,
        treatment: Mapping[str, Any],
        control: Mapping[str, Any] | None = None,
        *,
        seed: int,
        objective: Objective,
        alpha: float = 0.05,
        treatment_share: float = 0.5,
        n_resamples: int = 2000,
        design: str = "welch",
        sequential: bool = False,
    ) -> ABTestResult:
        """An online experiment on the online users, the objective's
        guardrails applied.

        ``design``:

        * ``welch``: arms by hashed raw ids and ``seed``, Welch's t-test and
          bootstrap CI per metric;
        * ``cuped``: the same split, every metric adjusted by the user's
          pre-period value of it under the control config;
        * ``cuped+strata``: also arms balanced within quartiles of the
          pre-period north star (:mod:`agenticrec.tools.abtest_design`);
        * ``interleave``: every user is served one team-draft interleaving of
          both configs' lists (:mod:`agenticrec.tools.interleave`); the
          engagement metrics (NDCG@10, HR@10) are each team's credit for the
          held-out item, the list metrics (ILD@10, novelty@10) those of each
          config's own list for that user; all paired t-tests over users.

        ``sequential``: users arrive in hashed order and the north star is
        looked at after every tenth of them with always-valid mSPRT p-values
        (:func:`~agenticrec.tools.abtest_design.msprt_pvalues`, mixing sd 10%
        of the control mean); the test stops at the first look with
        ``p < alpha``, the guardrails are checked on the users seen by then,
        and the north star's reported p-value is the always-valid one.
        """
        if design not in AB_DESIGNS:
            raise ConfigError(f"design {design!r}: one of {', '.join(AB_DESIGNS)}")
        control = dict(control or {})
        paired = design == "interleave"
        if paired:
            c, t = self._interleaved(treatment, control, seed)
            arm = None
        else:
            c = self._per_user("online", control)
            t = self._per_user("online", treatment)
            c, t, arm = self._split(
                c, t, control, seed, objective, design, treatment_share
            )
        order = np.arange(len(self.online_user_ids))
        looks: list[dict[str, Any]] = []
        if sequential:
            order, looks = self._looks(c, t, arm, seed, objective, alpha)
            order = order[: looks[-1]["users"]]
        if paired:
            ctl = {m: c[m][order] for m in AB_METRICS}
            trt = {m: t[m][order] for m in AB_METRICS}
        else:
            sub = np.zeros(len(arm), bool)
            sub[order] = True
            ctl = {m: c[m][~arm & sub] for m in AB_METRICS}
            trt = {m: t[m][arm & sub] for m in AB_METRICS}
        res = analyse(
            ctl,
            trt,
            primary=objective.north_star,
            guardrails=objective.guardrails,
            alpha=alpha,
            seed=seed,
            n_resamples=n_resamples,
            treatment_share=treatment_share,
            paired=paired,
        )
        if sequential:
            res = _always_valid(res, looks[-1]["p"], alpha)
        return res.model_copy(
            update={
                "control_config": control,
                "treatment_config": dict(treatment),
                "design": design,
                "looks": looks,
            }
        )

    def _split(self, c, t, control, seed, objective, design, treatment_share):
        """Per-user metrics of an A/B split: ``(control, treatment, arm)``."""
        if design == "welch":
            arm = assign(
                self.online_user_ids, seed=seed, treatment_share=treatment_share
            )
            return c, t, arm
        pre = self._per_user("pre", control)
        if design == "cuped+strata":
            strata = strata_of(pre[objective.north_star], 4)
            arm = assign_stratified(
                self.online_user_ids, strata, seed=seed, treatment_share=treatment_share
            )
        else:
            arm = assign(
                self.online_user_ids, seed=seed, treatment_share=treatment_share
            )
        # observed metric per user: treatment's where treated
        c, t = dict(c), dict(t)
        for m in AB_METRICS:
            y = np.where(arm, t[m], c[m])
            adj, _ = cuped(y, pre[m])
            c[m], t[m] = adj, adj
        return c, t, arm

    def _interleaved(
        self, treatment: Mapping[str, Any], control: Mapping[str, Any], seed: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-user values of both configs under team-draft interleaving,
        averaged over the online events (each event's merge has its own
        coins)."""
        cfg_c = PipelineConfig.from_flat(dict(control))
        cfg_t = PipelineConfig.from_flat(dict(treatment))
        n = len(self.online_user_ids)
        c = {m: np.zeros(n) for m in ENGAGEMENT_METRICS}
        t = {m: np.zeros(n) for m in ENGAGEMENT_METRICS}
        for j, p in enumerate(self.online):
            ec, et = p.evaluate(cfg_c), p.evaluate(cfg_t)
            items, team = team_draft(
                ec.top,
                et.top,
                user_ids=p.user_ids,
                seed=experiment_seed(seed, f"event:{j}"),
            )
            got = credit(items, team, ec.targets)
            for m in ENGAGEMENT_METRICS:
                c[m] += got[m][0] / len(self.online)
                t[m] += got[m][1] / len(self.online)
        pc = self._per_user("online", control)
        pt = self._per_user("online", treatment)
        for m in AB_METRICS:
            if m not in ENGAGEMENT_METRICS:
                c[m], t[m] = pc[m], pt[m]
        return c, t

    def _looks(self, c, t, arm, seed, objective, alpha, n_looks: int = 10):
        """Arrival order of the online users and the mSPRT looks up to the
        first significant one."""
        m = objective.north_star
        units = np.array(
            [_unit(int(seed) + 7, u) for u in self.online_user_ids.tolist()]
        )
        order = np.argsort(units, kind="stable")
        n = len(order)
        tau = 0.1 * max(abs(float(np.mean(c[m]))), 1e-9)
        looks = []
        for i in range(1, n_looks + 1):
            k = max(4, int(round(n * i / n_looks)))
            seen = order[:k]
            if arm is None:
                d = t[m][seen] - c[m][seen]
                diff, var = float(d.mean()), float(d.var(ddof=1) / len(d))
            else:
                a = arm[seen]
                if a.sum() < 2 or (~a).sum() < 2:
                    continue
                yc, yt = c[m][seen][~a], t[m][seen][a]
                diff = float(yt.mean() - yc.mean())
                var = float(yc.var(ddof=1) / len(yc) + yt.var(ddof=1) / len(yt))
            looks.append({"users": k, "diff": diff, "var": max(var, 1e-18)})
        ps = msprt_pvalues(
            np.array([x["diff"] for x in looks]),
            np.array([x["var"] for x in looks]),
            tau=tau,
        )
        out = []
        for x, p in zip(looks, ps, strict=True):
            out.append(
                {"users": x["users"], "diff": round(x["diff"], 6), "p": float(p)}
            )
            if p < alpha:
                break
        return order, out

    def robustness(
        self,
        treatment: Mapping[str, Any],
        *,
        objective: Objective,
        seeds: int = 20,
        alpha: float = 0.05,
        base_seed: int = 1_000_003,
        design: str = "welch",
        sequential: bool = False,
    ) -> dict[str, Any]:
        """How often ``treatment`` wins a fresh A/B test against the default
        (``seeds`` new assignments of the same online users): an estimate of
        the test's power for this config, computed after tuning for the report
        and never shown to the agents."""
        wins, sig, pvals = 0, 0, []
        for s in range(seeds):
            r = self.ab_test(
                treatment,
                seed=base_seed + s,
                objective=objective,
                alpha=alpha,
                n_resamples=200,
                design=design,
                sequential=sequential,
            )
            m = r.metrics[objective.north_star]
            pvals.append(m.p_value)
            sig += int(m.significant and m.diff > 0)
            wins += int(r.decision == "treatment")
        on_c = self._per_user("online", {})
        on_t = self._per_user("online", treatment)
        return {
            "assignments": seeds,
            "significant_gain_share": round(sig / seeds, 3),
            "win_share": round(wins / seeds, 3),
            "median_p": round(float(np.median(pvals)), 4),
            "online_mean": {
                m: {
                    "default": round(float(np.mean(on_c[m])), 5),
                    "treatment": round(float(np.mean(on_t[m])), 5),
                }
                for m in AB_METRICS
            },
        }


def _always_valid(res: ABTestResult, p: float, alpha: float) -> ABTestResult:
    """``res`` with the north star judged by the always-valid p-value ``p``
    (the decision re-derived as :func:`agenticrec.tools.abtest.analyse`
    does)."""
    main: MetricComparison = res.metrics[res.primary].model_copy(
        update={"p_value": p, "significant": bool(p < alpha)}
    )
    if (main.significant and main.diff < 0) or not all(
        g.passed for g in res.guardrails
    ):
        decision = "control"
    elif main.significant and main.diff > 0:
        decision = "treatment"
    else:
        decision = "inconclusive"
    return res.model_copy(
        update={"metrics": {**res.metrics, res.primary: main}, "decision": decision}
    )


def experiment_seed(seed: int, experiment_id: str) -> int:
    """A fresh, reproducible assignment seed per experiment."""
    return (int(seed) * 1_000_003 + zlib.crc32(experiment_id.encode())) % (2**31)


@functools.lru_cache(maxsize=4)
def task_workspace(
    data_name: str,
    seed: int = 0,
    online_share: float = 0.5,
    offline_events: int = 3,
    online_events: int = 1,
    max_users: int = 0,
) -> TuneTask:
    """The (cached) :class:`TuneTask` of one setting."""
    return TuneTask(
        data_name,
        seed=seed,
        online_share=online_share,
        offline_events=offline_events,
        online_events=online_events,
        max_users=max_users,
    )


# ------------------------------------------------------- what nodes measure
def estimate_proposals(
    task: TuneTask,
    objective: Objective,
    proposals: list[dict[str, Any]],
    control: Mapping[str, Mapping[str, float]],
    tested: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Validate and estimate each proposal (the Critic's evidence).

    Returns one entry per proposal: ``valid`` False with the ``error``, or
    the canonical ``overrides`` and ``key``, ``tested_as`` (the experiment
    that already A/B tested it), the offline north star ``ns`` and ``guard``,
    the relative ``gain`` over ``control`` overall and on halves ``A``/``B``,
    the ``guard_change`` and the full ``estimate``.
    """
    o = objective
    out: list[dict[str, Any]] = []
    for i, p in enumerate(proposals):
        entry: dict[str, Any] = {"index": i, "origin": p["origin"]}
        try:
            cfg = PipelineConfig.from_flat(p["overrides"])
        except ConfigError as exc:
            out.append(
                {
                    **entry,
                    "overrides": p["overrides"],
                    "valid": False,
                    "error": str(exc)[:300],
                }
            )
            continue
        over = search.overrides_of(cfg)
        key = config_key(over)
        est = task.estimate(over)
        ns = {h: est[h][o.north_star] for h in ("all", "A", "B")}
        lcb = task.gain_lower_bound(over, o.north_star)
        out.append(
            {
                **entry,
                "overrides": over,
                "valid": True,
                "error": None,
                "key": key,
                "tested_as": tested.get(key),
                "ns": ns["all"],
                "guard": est["all"][o.guard],
                "gain": round(rel(ns["all"], control["all"][o.north_star]), 5),
                "gain_A": round(rel(ns["A"], control["A"][o.north_star]), 5),
                "gain_B": round(rel(ns["B"], control["B"][o.north_star]), 5),
                "gain_lcb": round(lcb, 5),
                "guard_change": round(
                    rel(est["all"][o.guard], control["all"][o.guard]), 5
                ),
                "estimate": est,
            }
        )
    return out


def ab_summary(res: ABTestResult, objective: Objective) -> dict[str, Any]:
    """The report's view of one A/B test: decision, north-star difference
    (absolute, relative, Welch p, bootstrap CI), every metric's difference
    and p, and the failed guardrails."""
    m = res.metrics[objective.north_star]
    return {
        "decision": res.decision,
        "diff": round(m.diff, 6),
        "relative": round(m.relative_diff or 0.0, 5),
        "p": m.p_value,
        "ci": [round(m.ci_low, 6), round(m.ci_high, 6)],
        "metrics": {
            k: {"diff": round(c.diff, 6), "p": round(c.p_value, 5)}
            for k, c in res.metrics.items()
        },
        "guardrails_failed": [g.reason for g in res.guardrails if not g.passed],
    }


def round_summary(state: Mapping[str, Any], objective: Objective) -> dict[str, Any]:
    """One ``history`` entry: what the round proposed, kept, launched and
    found, and the run's best gains so far."""
    o, r = objective, state["round"]
    exps = state.get("experiments", [])
    mine = [e for e in exps if e["round"] == r]
    best_gain = max(
        [e["relative"] for e in exps if e["decision"] == "treatment"], default=0.0
    )
    best_offline = max([t["gain"] for t in state.get("tried", [])], default=0.0)
    return {
        "round": r,
        "proposed": len(state.get("proposals", [])),
        "kept": len(state.get("kept", [])),
        "launched": [e["id"] for e in mine],
        "results": [
            {
                "id": e["id"],
                "decision": e["decision"],
                "diff": e["diff"],
                "p": round(e["p"], 5),
            }
            for e in mine
        ],
        "best_online_gain": round(best_gain, 5),
        "best_offline_gain": round(best_offline, 5),
        "incumbent_gain": round(
            rel(
                state["incumbent"]["all"][o.north_star],
                state["control"]["all"][o.north_star],
            ),
            5,
        ),
        "sigma": round(state["sigma"], 4),
    }
