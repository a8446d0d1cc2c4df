"""A/B test statistics for the Online agent: assignment, Welch, bootstrap, guardrails.

Protocol (:func:`ab_test`): each user of the online pipeline is assigned to
control or treatment by hashing its *raw* user id with the seed (stable across
processes, machines and user orderings; see :func:`assign`); control users are
served the control config and treatment users the treatment config; each
per-user metric is compared with Welch's unequal-variance t-test (two-sided,
significant at ``p < alpha``, default 0.05) and a seeded percentile bootstrap
CI of the difference in means. The treatment *wins* when the primary metric
rises significantly and no guardrail metric drops significantly (more than its
tolerated relative drop). :func:`analyse` does the statistics for any
per-user arrays.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from agenticrec.errors import ConfigError
from agenticrec.tools.pipeline import Pipeline, PipelineConfig

__all__ = [
    "ABTestResult",
    "Guardrail",
    "GuardrailCheck",
    "MetricComparison",
    "ab_test",
    "analyse",
    "assign",
    "bootstrap_ci",
    "compare",
    "paired_t",
    "welch",
]

DEFAULT_GUARDRAILS: tuple[str, ...] = ("HR@10", "ILD@10", "novelty@10")


def _unit(seed: int, user_id: Any) -> float:
    """``blake2b(f"{seed}:{user_id}")`` as a number in [0, 1)."""
    digest = hashlib.blake2b(f"{seed}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign(
    user_ids: Sequence[Any] | np.ndarray, *, seed: int, treatment_share: float = 0.5
) -> np.ndarray:
    """Randomise users into arms by hashing their raw ids.

    A user is in treatment iff ``blake2b(f"{seed}:{raw_user_id}")`` (8-byte
    digest, big-endian, divided by 2**64) is below ``treatment_share``. Raw ids
    are formatted with ``str()`` (numpy integers as plain integers), so the arm
    of a user depends only on its id and the seed.

    Returns:
        ``bool[n]``: True for treatment.
    """
    if not 0.0 < treatment_share < 1.0:
        raise ConfigError(f"treatment_share must lie in (0, 1), got {treatment_share}")
    ids = np.asarray(user_ids)
    values = np.array([_unit(int(seed), u) for u in ids.ravel().tolist()])
    return (values < treatment_share).reshape(ids.shape)


def welch(control: np.ndarray, treatment: np.ndarray) -> tuple[float, float]:
    """Welch's two-sided t-test of equal means: ``(t, p)``.

    When both arms have zero variance the test is degenerate: ``p`` is 1 for
    equal means and 0 otherwise (``t`` = 0 or +-inf).
    """
    c = np.asarray(control, np.float64)
    t = np.asarray(treatment, np.float64)
    if len(c) < 2 or len(t) < 2:
        raise ConfigError(
            f"Welch's test needs >= 2 users per arm, got {len(c)} and {len(t)}"
        )
    if c.var() == 0 and t.var() == 0:
        diff = t.mean() - c.mean()
        return (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
    res = stats.ttest_ind(t, c, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def paired_t(control: np.ndarray, treatment: np.ndarray) -> tuple[float, float]:
    """Two-sided paired t-test (``scipy.stats.ttest_rel``) of equal means:
    ``(t, p)``, with the same degenerate rule as :func:`welch` when every
    difference is equal."""
    c = np.asarray(control, np.float64)
    t = np.asarray(treatment, np.float64)
    if c.shape != t.shape or len(c) < 2:
        raise ConfigError(
            f"a paired test needs >= 2 pairs of equal length, got {len(c)} and {len(t)}"
        )
    d = t - c
    if d.var() == 0:
        m = d.mean()
        return (0.0, 1.0) if m == 0 else (float(np.sign(m) * np.inf), 0.0)
    res = stats.ttest_rel(t, c)
    return float(res.statistic), float(res.pvalue)


def bootstrap_ci(
    control: np.ndarray,
    treatment: np.ndarray,
    *,
    seed: int | Sequence[int],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    paired: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(treatment) - mean(control)``.

    Each resample draws both arms with replacement, independently (or, with
    ``paired``, the same users for both), from a
    ``numpy.random.default_rng(seed)``; equal inputs and seed give equal CIs.
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence}")
    c = np.asarray(control, np.float64)
    t = np.asarray(treatment, np.float64)
    rng = np.random.default_rng(seed)
    if paired:
        idx = rng.integers(0, len(c), (n_resamples, len(c)))
        mc, mt = c[idx].mean(axis=1), t[idx].mean(axis=1)
    else:
        mc = c[rng.integers(0, len(c), (n_resamples, len(c)))].mean(axis=1)
        mt = t[rng.integers(0, len(t), (n_resamples, len(t)))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(mt - mc, [tail, 1.0 - tail])
    return float(lo), float(hi)


class MetricComparison(BaseModel):
    """One metric, treatment versus control."""

    model_config = ConfigDict(frozen=True)

    metric: str
    n_control: int
    n_treatment: int
    control_mean: float
    treatment_mean: float
    diff: float
    """``treatment_mean - control_mean``."""
    relative_diff: float | None
    """``diff / |control_mean|`` (None when the control mean is 0)."""
    ci_low: float
    """Bootstrap CI of ``diff``, lower end."""
    ci_high: float
    t_stat: float
    p_value: float
    """Welch, two-sided."""
    significant: bool
    """``p_value < alpha``."""


class Guardrail(BaseModel):
    """A metric that must not drop significantly."""

    model_config = ConfigDict(frozen=True)

    metric: str
    max_relative_drop: float = Field(0.0, ge=0.0, le=1.0)
    """Tolerated drop, relative to the control mean (0: any significant drop
    fails)."""


class GuardrailCheck(BaseModel):
    """Outcome of one guardrail."""

    model_config = ConfigDict(frozen=True)

    metric: str
    max_relative_drop: float
    passed: bool
    p_value: float
    """Welch p of ``diff + max_relative_drop * |control_mean| = 0``."""
    reason: str


class ABTestResult(BaseModel):
    """Everything the Online agent records about one A/B test."""

    model_config = ConfigDict(frozen=True)

    seed: int
    alpha: float
    treatment_share: float
    n_control: int
    n_treatment: int
    primary: str
    metrics: dict[str, MetricComparison]
    guardrails: list[GuardrailCheck]
    decision: Literal["treatment", "control", "inconclusive"]
    """``treatment``: primary up significantly and every guardrail passed;
    ``control``: primary down significantly or a guardrail failed;
    ``inconclusive`` otherwise."""
    control_config: dict[str, Any] | None = None
    treatment_config: dict[str, Any] | None = None
    design: str = "welch"
    """How users met the configs: ``welch`` (a 50/50 split), ``cuped``,
    ``cuped+strata`` or ``interleave`` (every user saw both, paired)."""
    looks: list[dict[str, Any]] = Field(default_factory=list)
    """Sequential looks at the primary metric (``{"users", "diff", "p"}``,
    always-valid mSPRT p-values) when the test could stop early."""

    @property
    def ship(self) -> bool:
        """Whether the treatment should replace the control."""
        return self.decision == "treatment"

    def to_json(self) -> str:
        """The result as a JSON string (``model_validate_json`` reads it back)."""
        return self.model_dump_json()


def compare(
    metric: str,
    control: np.ndarray,
    treatment: np.ndarray,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 2000,
    paired: bool = False,
) -> MetricComparison:
    """Welch test (``paired``: paired t-test, both values from the same
    users) and bootstrap CI of one metric's per-user values."""
    c = np.asarray(control, np.float64)
    t = np.asarray(treatment, np.float64)
    t_stat, p = paired_t(c, t) if paired else welch(c, t)
    lo, hi = bootstrap_ci(
        c,
        t,
        seed=(int(seed), zlib.crc32(metric.encode())),
        n_resamples=n_resamples,
        paired=paired,
    )
    diff = float(t.mean() - c.mean())
    return MetricComparison(
        metric=metric,
        n_control=len(c),
        n_treatment=len(t),
        control_mean=float(c.mean()),
        treatment_mean=float(t.mean()),
        diff=diff,
        relative_diff=diff / abs(c.mean()) if c.mean() != 0 else None,
        ci_low=lo,
        ci_high=hi,
        t_stat=t_stat,
        p_value=p,
        significant=bool(p < alpha),
    )


def _check(
    g: Guardrail, c: np.ndarray, t: np.ndarray, alpha: float, paired: bool = False
) -> GuardrailCheck:
    margin = g.max_relative_drop * abs(float(np.mean(c)))
    # Shift treatment up by the tolerated drop: a failure is a drop beyond it.
    test = paired_t if paired else welch
    t_stat, p = test(c, np.asarray(t, np.float64) + margin)
    failed = t_stat < 0 and p < alpha
    if failed:
        reason = (
            f"{g.metric} dropped significantly beyond {g.max_relative_drop:.1%} "
            f"(p={p:.3g})"
        )
    else:
        reason = f"{g.metric}: no significant drop beyond {g.max_relative_drop:.1%}"
    return GuardrailCheck(
        metric=g.metric,
        max_relative_drop=g.max_relative_drop,
        passed=not failed,
        p_value=p,
        reason=reason,
    )


def analyse(
    control: Mapping[str, np.ndarray],
    treatment: Mapping[str, np.ndarray],
    *,
    primary: str,
    guardrails: Sequence[Guardrail | str] = (),
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 2000,
    treatment_share: float = 0.5,
    paired: bool = False,
) -> ABTestResult:
    """Compare every metric present in both arms and decide.

    Args:
        control, treatment: metric -> per-user values of each arm.
        primary: the north-star metric (higher is better).
        guardrails: metrics (or :class:`Guardrail`) that must not drop
            significantly.
        alpha: significance level of every test.
        seed: seeds the bootstrap (per metric, from ``(seed, crc32(metric))``).
        paired: both arms hold every user's two values in the same order
            (an interleaved test, or list metrics of both configs): paired
            t-tests and a paired bootstrap.
    """
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha}")
    names = [m for m in control if m in treatment]
    if primary not in names:
        raise ConfigError(f"primary metric {primary!r} not in both arms ({names})")
    rails = [g if isinstance(g, Guardrail) else Guardrail(metric=g) for g in guardrails]
    for g in rails:
        if g.metric not in names:
            raise ConfigError(f"guardrail metric {g.metric!r} not in both arms")
    metrics = {
        m: compare(
            m,
            control[m],
            treatment[m],
            alpha=alpha,
            seed=seed,
            n_resamples=n_resamples,
            paired=paired,
        )
        for m in names
    }
    checks = [
        _check(g, control[g.metric], treatment[g.metric], alpha, paired) for g in rails
    ]
    main = metrics[primary]
    if (main.significant and main.diff < 0) or not all(c.passed for c in checks):
        decision = "control"
    elif main.significant and main.diff > 0:
        decision = "treatment"
    else:
        decision = "inconclusive"
    return ABTestResult(
        seed=seed,
        alpha=alpha,
        treatment_share=treatment_share,
        n_control=main.n_control,
        n_treatment=main.n_treatment,
        primary=primary,
        metrics=metrics,
        guardrails=checks,
        decision=decision,
    )


def ab_test(
    pipeline: Pipeline,
    control: PipelineConfig | Mapping[str, Any] | None,
    treatment: PipelineConfig | Mapping[str, Any] | None,
    *,
    seed: int = 0,
    primary: str = "NDCG@10",
    guardrails: Sequence[Guardrail | str] = DEFAULT_GUARDRAILS,
    alpha: float = 0.05,
    treatment_share: float = 0.5,
    n_resamples: int = 2000,
) -> ABTestResult:
    """Run an A/B test of two configs on a pipeline's users.

    Args:
        pipeline: the pipeline whose users are split (the online one of
            :func:`agenticrec.tools.pipeline.tuning_pipelines`).
        control, treatment: configs (``PipelineConfig``, nested or dotted
            dicts, ``None`` for the default).
        seed: assignment and bootstrap seed.

    Returns:
        :class:`ABTestResult` with both configs as dotted dicts.
    """
    control = PipelineConfig.parse(control)
    treatment = PipelineConfig.parse(treatment)
    arm = assign(pipeline.user_ids, seed=seed, treatment_share=treatment_share)
    if arm.sum() < 2 or (~arm).sum() < 2:
        raise ConfigError(
            f"{len(arm)} users give arms of {int((~arm).sum())} and {int(arm.sum())}; "
            "an A/B test needs >= 2 users per arm"
        )
    ev_c = pipeline.evaluate(control, pipeline.users[~arm])
    ev_t = pipeline.evaluate(treatment, pipeline.users[arm])
    result = analyse(
        ev_c.per_user,
        ev_t.per_user,
        primary=primary,
        guardrails=guardrails,
        alpha=alpha,
        seed=seed,
        n_resamples=n_resamples,
        treatment_share=treatment_share,
    )
    return result.model_copy(
        update={
            "control_config": control.to_flat(),
            "treatment_config": treatment.to_flat(),
        }
    )
