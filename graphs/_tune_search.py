"""The Actor's rule search: skills, repairs, then the classical sampler's
suggestions (Optuna TPE by default, :mod:`._tune_sampler`), with Gaussian
perturbation around the Pareto set (1/5-success step size) for whatever is
left (all of it with ``sampler="gaussian"``).

Configs live in the unit box: each knob of
:class:`~agenticrec.tools.pipeline.PipelineConfig` is scaled by its bounds to
[0, 1] (categorical knobs by choice index), and a point maps back through
``PipelineConfig.from_vector`` (clip, round, renormalise recall quotas), so
every proposal is valid by construction. Candidates are written as *overrides*:
the knobs that differ from the default.

One round (:func:`propose`):

1. **Skills first.** Each retrieved skill not yet tried becomes one candidate:
   its ``initial_config`` (knobs this pipeline has) applied to the incumbent,
   the best configuration so far. At most half of the round goes to skills.
2. **Repair near misses.** A configuration the Critic rejected only for its
   guard metric, although its north star rose on both offline halves, gets
   the knob with the largest measured guard effect (``guard_knobs``, from
   the history) moved by ``max(2 * sigma, 0.1)`` in the helpful direction. At
   most a third of the round goes to repairs.
3. **Sampler suggestions.** The suggestions the ``actor`` node asked the
   classical sampler for (``obs["suggestions"]``: Optuna TPE or CMA-ES told
   every estimated configuration, inert knobs frozen at the incumbent, knobs
   narrowed to where the Skillhub's transferred estimates were best; see
   :mod:`agenticrec.graphs._tune_sampler`) fill the round, in order.
4. **Perturb the Pareto set.** Any candidates still missing each take a parent from
   the Pareto set of tried configurations (offline north star vs guard, best
   north star first, round-robin) and move ``PERTURBED`` knobs by
   ``sigma * N(0, 1)`` in the unit box. Half of the moved knobs come from the
   Insight agent's promising knobs, whose step is biased by ``sigma / 2`` in
   the direction that helped.
5. Duplicates of tried configurations are skipped (perturbations redrawn,
   up to 20 times).

Step size (:func:`adapt_sigma`): Rechenberg's 1/5 rule on the share ``p`` of
evaluated candidates that beat the best offline north star on both offline
halves: ``sigma *= exp(0.6 * (p - 0.2) / 0.8)``, kept in ``[0.02, 0.5]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agenticrec.tools.pipeline import PipelineConfig

__all__ = [
    "PERTURBED",
    "SIGMA0",
    "adapt_sigma",
    "applicable",
    "from_unit",
    "knob_stats",
    "overrides_of",
    "pareto_front",
    "propose",
    "to_unit",
]

SIGMA0 = 0.15
"""Initial step in the unit box."""
SIGMA_RANGE = (0.02, 0.5)
PERTURBED = 2
"""Knobs moved per perturbed candidate (few, so effects stay attributable)."""

_NAMES = PipelineConfig.knob_names()
_BOUNDS = PipelineConfig.bounds()
_LO = np.array([_BOUNDS[k].low for k in _NAMES])
_SPAN = np.array([max(_BOUNDS[k].high - _BOUNDS[k].low, 1e-12) for k in _NAMES])
_DEFAULT = PipelineConfig.default().to_flat()


def to_unit(overrides: Mapping[str, Any]) -> np.ndarray:
    """``f64[n_knobs]`` position of a config (overrides of the default)."""
    v = PipelineConfig.from_flat(dict(overrides)).to_vector()
    return (v - _LO) / _SPAN


def overrides_of(config: PipelineConfig) -> dict[str, Any]:
    """Knobs of ``config`` that differ from the default (floats to 4 digits)."""
    flat = config.to_flat()
    quota = [k for k in flat if k.startswith("recall.quota.")]
    shares = {k: round(flat[k], 4) for k in quota}
    top = max(quota, key=lambda k: (shares[k], k))
    shares[top] = round(1.0 - sum(v for k, v in shares.items() if k != top), 6)
    flat.update(shares)  # rounded shares that still sum to 1
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if isinstance(v, float):
            v = round(v, 6 if k in shares else 4)
            if abs(v - _DEFAULT[k]) > 1e-4:
                out[k] = v
        elif v != _DEFAULT[k]:
            out[k] = v
    if any(k in out for k in quota):  # shares only make sense together
        out.update({k: flat[k] for k in quota})
    return out


def from_unit(u: np.ndarray) -> dict[str, Any]:
    """Overrides of the config nearest to unit point ``u``."""
    cfg = PipelineConfig.from_vector(_LO + np.clip(u, 0.0, 1.0) * _SPAN)
    return overrides_of(cfg)


def applicable(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A skill's ``initial_config`` split into knobs this pipeline has (values
    clipped into bounds, categorical values kept if valid) and ignored names."""
    choices = PipelineConfig.choices()
    ok: dict[str, Any] = {}
    ignored: list[str] = []
    for k, v in config.items():
        if k not in _BOUNDS:
            ignored.append(k)
            continue
        b = _BOUNDS[k]
        if k in choices:
            if v in choices[k]:
                ok[k] = v
            else:
                ignored.append(k)
        elif isinstance(v, bool) or not isinstance(v, int | float):
            ignored.append(k)
        else:
            x = min(max(float(v), b.low), b.high)
            ok[k] = int(round(x)) if b.kind == "int" else x
    return ok, ignored


def _apply(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``change`` on top of ``base``, snapped to a valid config (quotas
    renormalised)."""
    merged = {**base, **change}
    flat = {**_DEFAULT, **merged}
    v = np.array(
        [
            float(PipelineConfig.choices()[k].index(flat[k]))
            if k in PipelineConfig.choices()
            else float(flat[k])
            for k in _NAMES
        ]
    )
    return overrides_of(PipelineConfig.from_vector(v))


def adapt_sigma(sigma: float, successes: int, evaluated: int) -> float:
    """The 1/5 success rule (see the module docstring)."""
    if evaluated <= 0:
        return sigma
    p = successes / evaluated
    s = sigma * float(np.exp(0.6 * (p - 0.2) / 0.8))
    return float(min(max(s, SIGMA_RANGE[0]), SIGMA_RANGE[1]))


def propose(obs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """This round's candidates: ``[{"overrides", "rationale", "origin"}]``.

    Reads from the observation: ``m``, ``seed``, ``round``, ``sigma``,
    ``incumbent`` (overrides), ``pareto`` (``[{"id", "overrides", ...}]``,
    best first), ``tried_keys`` (canonical configs already evaluated),
    ``skills`` (``[{"id", "initial_config", "tried"}]``), ``insight``
    (``{"promising": [{"knob", "direction"}]}``), ``near_misses``
    (``[{"id", "overrides", "guard_change"}]``, best first) and ``guard_knobs``
    (``[{"knob", "direction"}]``, largest guard effect first), and
    ``suggestions`` (overrides from the classical sampler, ``sampler`` its
    name).
    """
    from agenticrec.graphs._tune_task import config_key

    m = int(obs["m"])
    rng = np.random.default_rng([int(obs["seed"]), int(obs["round"]), 7])
    sigma = float(obs["sigma"])
    incumbent = dict(obs.get("incumbent") or {})
    seen = set(obs.get("tried_keys", []))
    out: list[dict[str, Any]] = []

    def add(over: dict[str, Any], rationale: str, origin: str) -> bool:
        key = config_key(over)
        if key in seen:
            return False
        seen.add(key)
        out.append({"overrides": over, "rationale": rationale, "origin": origin})
        return True

    for s in [s for s in obs.get("skills", []) if not s.get("tried")]:
        if len(out) >= max(1, m // 2):
            break
        change, _ = applicable(s.get("initial_config", {}))
        if not change:
            continue
        add(
            _apply(incumbent, change),
            f"skill {s['id']}: its initial config on the incumbent",
            f"skill:{s['id']}",
        )

    index = {k: i for i, k in enumerate(_NAMES)}
    fixes = [g for g in obs.get("guard_knobs", []) if g.get("knob") in _BOUNDS]
    n_repair = len(out) + max(1, m // 3)
    for miss in obs.get("near_misses", []):
        if len(out) >= min(n_repair, m) or not fixes:
            break
        u = to_unit(miss["overrides"])
        for fix in fixes:
            j = index[fix["knob"]]
            sign = 1.0 if fix["direction"] == "up" else -1.0
            u2 = u.copy()
            u2[j] += sign * max(2 * sigma, 0.1)
            if add(
                from_unit(u2),
                f"repair {miss['id']} ({miss['guard_change']:+.1%} guard): move "
                f"{fix['knob']} {fix['direction']}",
                f"repair:{miss['id']}",
            ):
                break

    sampler = obs.get("sampler", "tpe")
    for over in obs.get("suggestions", []):
        if len(out) >= m:
            break
        add(dict(over), f"{sampler} suggestion", f"sampler:{sampler}")

    parents: Sequence[Mapping[str, Any]] = obs.get("pareto") or [
        {"id": "incumbent", "overrides": incumbent}
    ]
    promising = [
        p
        for p in (obs.get("insight") or {}).get("promising", [])
        if p.get("knob") in _BOUNDS
    ]
    k = 0
    tries = 0
    while len(out) < m and tries < 20 * m:
        tries += 1
        parent = parents[k % len(parents)]
        u = to_unit(parent["overrides"])
        n_prom = min(len(promising), PERTURBED // 2 + (PERTURBED % 2) * (k % 2))
        chosen = (
            [promising[i] for i in rng.choice(len(promising), n_prom, replace=False)]
            if n_prom
            else []
        )
        names = [p["knob"] for p in chosen]
        rest = [n for n in _NAMES if n not in names]
        names += list(rng.choice(rest, PERTURBED - len(names), replace=False))
        step = rng.normal(0.0, sigma, len(names))
        for i, p in enumerate(chosen):
            step[i] += (sigma / 2) * (1.0 if p.get("direction") == "up" else -1.0)
        u2 = u.copy()
        for n, d in zip(names, step, strict=True):
            u2[index[n]] += d
        moved = ", ".join(sorted(names))
        if add(
            from_unit(u2),
            f"perturb {moved} of {parent['id']} (sigma {sigma:.3f})",
            f"perturb:{parent['id']}",
        ):
            k += 1
    return out


def knob_stats(
    tried: Sequence[Mapping[str, Any]], north_star: str, guard: str
) -> list[dict[str, Any]]:
    """Per knob and metric: mean of ``sign(knob change) * relative gain`` over
    estimated configs that changed the knob (a marginal association: several
    knobs usually move together)."""
    default = to_unit({})
    rows: dict[tuple[str, str], list[float]] = {}
    for t in tried:
        u = to_unit(t["overrides"])
        for j, k in enumerate(_NAMES):
            delta = u[j] - default[j]
            if abs(delta) < 1e-6:
                continue
            s = 1.0 if delta > 0 else -1.0
            rows.setdefault((k, north_star), []).append(s * t["gain"])
            rows.setdefault((k, guard), []).append(s * t["guard_change"])
    out = []
    for (k, m), v in rows.items():
        score = float(np.mean(v))
        out.append(
            {
                "knob": k,
                "metric": m,
                "direction": "up" if score > 0 else "down",
                "effect": round(abs(score), 5),
                "n": len(v),
            }
        )
    return out


def pareto_front(tried: Sequence[Mapping[str, Any]], size: int = 8) -> list[dict]:
    """Non-dominated tried configs on (``ns``, ``guard``), best north star
    first, at most ``size``."""
    front = [
        dict(t)
        for t in tried
        if not any(
            o["ns"] >= t["ns"]
            and o["guard"] >= t["guard"]
            and (o["ns"] > t["ns"] or o["guard"] > t["guard"])
            for o in tried
        )
    ]
    front.sort(key=lambda t: (-t["ns"], t["id"]))
    return front[:size]
