"""One run's users across many Ray workers, with the report of one process.

``run(graph, ctx)`` with ``ctx.backend == "ray"`` (CLI: ``--backend ray
[--address ADDR] [--workers N]``) lands here (:func:`run_ray`):

1. The driver builds the graph's input once and splits its ``shard_key``
   list (the users) into ``N`` contiguous shards, in input order.
2. Each shard is one Ray task running the ordinary runner in-process on its
   users, with its own checkpoint file ``<dir>/<thread>.<i>-of-<N>.sqlite``
   and thread ``<thread>.<i>-of-<N>`` (``<thread>``: the run's thread id,
   by default the digest of the whole run's binding; a graph whose users are
   tasks of one step runs them in slices of ``concurrency``, threads
   ``<thread>.<i>-of-<N>.<j>``, see :func:`_slices`). A worker that dies is
   replaced by Ray (``max_retries``) and the shard's next attempt resumes
   from that file: the users it had finished are not run again.
3. A shard returns its final state and its trajectory records (written to a
   per-shard file beside its checkpoint, which dedupes a retried attempt's
   steps); the driver appends the records to the one trajectory file, shard
   by shard, each shard's runs sorted by run id, skipping records the file
   already holds (:meth:`agenticrec.trajectory.TrajectoryWriter.append`).
4. The graph's ``merge`` joins the shards' states into the state of the
   whole run and its ``report`` recomputes every metric from the union of the
   per-user results, so the metrics equal one process's for the same seed.

5. A graph whose nodes decide once for the whole batch
   (``GraphSpec.collective``: DualAgent's coordinator) gets one
   :class:`Rendezvous` actor per run: its shards all-gather exact partial
   sums and shard 0's decisions through ``ctx.collective``
   (:mod:`agenticrec.collective`), so every shard decides as one process
   would. Such shards wait for each other, so they are gang-scheduled in a
   placement group (:func:`_gang`).

Ray is an optional extra, imported only here and only when asked for.
Without ``--checkpoint`` the shard files live in a temporary folder removed
after the run (on a multi-machine cluster pass a folder every node sees, or
a retried shard starts its users over on another node; nothing is lost or
duplicated either way, since finished shards return their state to the
driver).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agenticrec._io import atomic_write_text
from agenticrec.checkpoint import Checkpoint, CheckpointError, binding_digest
from agenticrec.errors import ConfigError
from agenticrec.graphspec import GraphSpec, Report, RunResult, get_graph

__all__ = [
    "INSTALL_HINT",
    "MAX_RETRIES",
    "ClusterError",
    "RayGroup",
    "Rendezvous",
    "ray_session",
    "run_many",
    "run_ray",
    "split",
]

INSTALL_HINT = "pip install 'agenticrec[ray]'"
MAX_RETRIES = 3
"""Attempts Ray makes after a shard's worker dies (``max_retries``)."""
ENV_PREFIXES = ("AGENTICREC_", "JAX_", "XLA_", "LANGGRAPH_")
"""Environment variables the driver hands every shard (data dirs, prompt
dirs, LLM endpoint, JAX platform)."""
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")


class ClusterError(RuntimeError):
    """The Ray cluster cannot be reached or lost a shard for good (CLI: exit
    1, one line)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"backend=ray needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


def split(items: Sequence[Any], n: int) -> list[list[Any]]:
    """``items`` in ``min(n, len(items))`` contiguous shards whose sizes differ
    by at most one, in order (the first shards take the extra items)."""
    n = max(1, min(int(n), len(items)))
    q, r = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + q + (i < r)
        out.append(list(items[start:end]))
        start = end
    return out


def _reachable(address: str) -> None:
    """Fail fast, in one line, when ``address`` names a host:port nobody
    listens on (Ray itself would retry for a long while)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"address={address!r}: expected host:port, ray://host:port or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); "
            "start it with `ray start --head` or check --address"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None):
    """Ray, connected: an already initialised session is used as it is;
    ``address`` joins a running cluster; otherwise a local one is started
    for the block (``num_cpus`` slots, default the machine's CPUs) and shut
    down after it."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    if address:
        _reachable(address)
    try:
        ray.init(
            address=address or None,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            logging_level="ERROR",
            log_to_driver=False,
        )
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise ClusterError(f"cannot start or join Ray at {address}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _env() -> dict[str, str]:
    """The driver's variables a shard needs; secrets stay out of Ray's
    runtime env (the context already carries the API key it needs)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith(ENV_PREFIXES) and not k.endswith(SECRET_SUFFIXES)
    }


class Rendezvous:
    """The Ray actor behind a run's :class:`agenticrec.collective.Group`:
    ``allgather(key, rank, value)`` waits until every shard gave ``key`` a
    value, then answers the list (rank order) to each.

    An async actor, so the shards' waiting calls do not block each other;
    the shards themselves must all run at once (a shard queued behind the
    waiting ones would never come), so :func:`run_ray` gang-schedules them
    (:func:`_gang`). Each finished key is written, atomically, as JSON to
    ``folder`` before anyone gets it: a shard whose worker died, or a whole
    run started again on the same checkpoint folder, asks again and gets the
    same answer, even when the other shards went past that key long ago.
    JSON, never pickle: the folder is read back.
    """

    def __init__(self, size: int, folder: str) -> None:
        self.size = int(size)
        self.folder = Path(folder)
        self.done: dict[str, list[Any]] = {}
        self.slots: dict[str, dict[int, Any]] = {}
        self.events: dict[str, Any] = {}

    def _path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        return self.folder / f"{safe}.json"

    def _stored(self, key: str) -> list[Any] | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            vals = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable shared value ({exc})") from None
        if not isinstance(vals, list) or len(vals) != self.size:
            raise CheckpointError(
                f"{path}: expected a list of {self.size} shard values; the "
                "folder belongs to a run with another number of workers"
            )
        return vals

    async def allgather(self, key: str, rank: int, value: Any) -> list[Any]:
        import asyncio

        if key not in self.done and (stored := self._stored(key)) is not None:
            self.done[key] = stored
        if key in self.done:
            return self.done[key]
        slot = self.slots.setdefault(key, {})
        slot[int(rank)] = value
        event = self.events.setdefault(key, asyncio.Event())
        if len(slot) == self.size:
            vals = [slot[r] for r in range(self.size)]
            atomic_write_text(self._path(key), json.dumps(vals))
            self.done[key] = vals
            del self.slots[key]
            self.events.pop(key).set()
        else:
            await event.wait()
        return self.done[key]


@dataclass(frozen=True)
class RayGroup:
    """Shard ``rank`` of ``size``'s view of its run's :class:`Rendezvous`
    (an :class:`agenticrec.collective.Group`)."""

    actor: Any
    rank: int
    size: int

    def allgather(self, key: str, value: Any) -> list[Any]:
        import ray

        return ray.get(self.actor.allgather.remote(key, self.rank, value))


def _rendezvous(ray: Any, size: int, folder: Path) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    actor = ray.remote(Rendezvous).options(
        num_cpus=0, max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES
    )
    return actor.remote(size, str(folder))


def _shard_stem(thread_id: str, i: int, n: int) -> str:
    return f"{thread_id}.{i}-of-{n}"


def _run_shard(
    graph: str,
    ctx: Any,
    inp: dict[str, Any],
    folder: str,
    stem: str,
) -> dict[str, Any]:
    """One shard, on a Ray worker: the ordinary runner on ``inp`` with the
    shard's own checkpoint and trajectory files; returns its final state and
    trajectory text."""
    from agenticrec.runner import run

    spec = get_graph(graph)
    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    pids = base / f"{stem}.pids"
    with open(pids, "a", encoding="utf-8") as fh:  # attempts, for the report
        fh.write(f"{os.getpid()}\n")
    traj = base / f"{stem}.trajectories.jsonl"
    over: dict[str, Any] = {"backend": "local"}
    if getattr(ctx, "trajectories", None):
        over["trajectories"] = str(traj)
    ctx = replace(ctx, **over)
    t0 = time.perf_counter()
    slices = _slices(spec, ctx, list(inp[spec.shard_key]))
    states, resumed, cached = [], 0, True
    ck = Checkpoint(base / f"{stem}.sqlite")
    try:
        graph_ = spec.build_graph(checkpointer=ck.saver)
        for j, part in enumerate(slices):
            tid = stem if len(slices) == 1 else f"{stem}.{j}"
            config = {"configurable": {"thread_id": tid}}
            stored = ck.threads.get(tid)
            if stored is not None and stored[1] == "done":
                resumed += len(part)
            else:  # tasks a killed attempt finished (writes stored): not rerun
                resumed += sum(
                    t.result is not None for t in graph_.get_state(config).tasks
                )
            report = run(
                spec,
                ctx,
                checkpoint=ck,
                thread_id=tid,
                input={**inp, spec.shard_key: part},
            )
            if report.status != "done":
                raise ConfigError(
                    f"shard {stem} stopped with status {report.status!r}; "
                    "backend=ray runs only graphs that need no answer"
                )
            cached = cached and report.cached
            states.append(dict(graph_.get_state(config).values))
    finally:
        ck.close()
    state = states[0] if len(states) == 1 else spec.merge(ctx, inp, states)
    return {
        "state": state,
        "trajectories": traj.read_text(encoding="utf-8") if traj.exists() else "",
        "attempts": [int(x) for x in pids.read_text().split()],
        "resumed": resumed,
        "cached": cached,
        "node": socket.gethostname(),
        "devices": _device_count(),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _device_count() -> int:
    import jax

    return jax.local_device_count()


def _slices(spec: GraphSpec, ctx: Any, items: list[Any]) -> list[list[Any]]:
    """A shard's items in slices of ``concurrency`` when each item is its own
    task (``spec.item_tasks``), else one slice.

    LangGraph submits every task of a step to one pool bounded by
    ``max_concurrency`` and queues each finished task's checkpoint write
    behind the tasks still waiting, so in one thread of more users than
    ``concurrency`` no user's result is durable until nearly all have
    started.
    One thread per slice of ``concurrency`` users keeps every finished
    user's result durable at once: a killed worker loses only the users in
    flight."""
    if not spec.item_tasks:
        return [items]
    from agenticrec.runner import resolve_concurrency

    n = resolve_concurrency(ctx)
    return [items[j : j + n] for j in range(0, len(items), n)] or [items]


def _unwrap(ray: Any, exc: Exception) -> Exception:
    """The shard's own exception (a ConfigError stays a ConfigError), or a
    ClusterError for a worker lost beyond its retries."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, Exception):
        return cause
    return ClusterError(f"a shard failed on the Ray cluster: {exc}")


def _submit(ray: Any, fn: Callable, *args: Any, placement: Any = None) -> Any:
    opts: dict[str, Any] = {}
    if placement is not None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(placement)
    task = ray.remote(fn).options(
        num_cpus=1,
        max_retries=MAX_RETRIES,
        retry_exceptions=False,
        runtime_env={"env_vars": _env()},
        **opts,
    )
    return task.remote(*args)


GANG_TIMEOUT_S = 120.0
"""How long a run whose shards share values waits for the cluster to hold
every shard at once before it gives up (exit 1)."""


def _gang(ray: Any, n: int) -> Any:
    """A placement group of ``n`` one-CPU bundles, ready: shards that wait
    for each other (a collective graph) must all run at once, or the ones
    running wait forever for the ones Ray queued behind them.

    Raises:
        ConfigError: the cluster has fewer than ``n`` CPUs in all.
        ClusterError: they were not free within ``GANG_TIMEOUT_S``.
    """
    from ray.util import placement_group, remove_placement_group

    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < n:
        raise ConfigError(
            f"workers={n}: the shards of this graph run at once and share "
            f"values, but the Ray cluster has {cpus} CPU(s); use --workers "
            f"{max(cpus, 1)} or fewer, or a larger cluster"
        )
    pg = placement_group([{"CPU": 1}] * n, strategy="SPREAD")
    try:
        ray.get(pg.ready(), timeout=GANG_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        remove_placement_group(pg)
        raise ClusterError(
            f"the Ray cluster did not free {n} CPUs at once within "
            f"{GANG_TIMEOUT_S:.0f} s for this run's shards"
        ) from None
    return pg


def _gather(ray: Any, refs: list[Any], on_done: Callable[[int], None]) -> list[Any]:
    """Every ref's value in ref order, calling ``on_done(i)`` as each lands."""
    out: list[Any] = [None] * len(refs)
    index = {r: i for i, r in enumerate(refs)}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    out[index[ref]] = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - unwrapped and re-raised
                    raise _unwrap(ray, exc) from None
                on_done(index[ref])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return out


def run_ray(
    spec: GraphSpec | str,
    ctx: Any,
    *,
    checkpoint: Path | str | None = None,
    thread_id: str | None = None,
    new_thread: bool = False,
    progress: Callable[..., None] | None = None,
) -> Report:
    """Run ``spec`` under ``ctx`` as ``ctx.workers`` shards on Ray.

    Args:
        checkpoint: a folder for the shards' checkpoint, trajectory and
            attempt files (every node must see it for a retried shard to
            resume on another node); default: a temporary folder removed
            after a successful run.
        thread_id: the run's thread (default: ``<graph>-<binding digest>``,
            as in one process); shard ``i`` of ``N`` is ``<thread>.i-of-N``.
        new_thread: discard the shards' stored files first.
        progress: ``(users done, users)`` as shards finish.

    Raises:
        ConfigError: the graph cannot be sharded, Ray is missing, or a
            checkpoint argument that is not a folder.
        ClusterError: the cluster cannot be reached, or a shard was lost
            after ``MAX_RETRIES`` retries.
    """
    from agenticrec.runner import binding

    spec = get_graph(spec) if isinstance(spec, str) else spec
    if spec.shard_key is None or spec.merge is None:
        raise ConfigError(
            f"graph {spec.name} has no per-user fan-out to split across Ray "
            "workers; run it with backend=local, or several of its runs at once "
            "with agenticrec.distributed.run_many"
        )
    if checkpoint is not None and not isinstance(checkpoint, str | Path):
        raise CheckpointError(
            "backend=ray takes a checkpoint folder (one file per shard), not an "
            "open checkpoint or saver"
        )
    if checkpoint is not None and Path(checkpoint).is_file():
        raise CheckpointError(
            f"--checkpoint {checkpoint} is a file; with --backend ray it is a "
            "folder holding one checkpoint file per shard"
        )
    slots = max(os.cpu_count() or 1, ctx.workers)  # a local Ray runs every shard
    with ray_session(ctx.address, num_cpus=slots) as ray:  # fails fast if away
        t0 = time.perf_counter()
        if spec.prepare is not None:
            spec.prepare(ctx, True)
        inp = spec.make_input(ctx)
        items = list(inp[spec.shard_key])
        bind = binding(spec, ctx, inp)
        thread_id = thread_id or f"{spec.name}-{binding_digest(bind)}"
        own = checkpoint is None
        folder = Path(tempfile.mkdtemp(prefix="agenticrec-ray-") if own else checkpoint)
        folder.mkdir(parents=True, exist_ok=True)
        n = ctx.workers or int(ray.cluster_resources().get("CPU", 1))
        shards = split(items, n)
        stems = [_shard_stem(thread_id, i, len(shards)) for i in range(len(shards))]
        shared = folder / f"{_shard_stem(thread_id, 'shared', len(shards))}"
        for stem in stems:
            (folder / f"{stem}.pids").unlink(missing_ok=True)  # this run's attempts
            if new_thread:
                for f in folder.glob(f"{stem}.*"):
                    f.unlink()
        if new_thread:
            shutil.rmtree(shared, ignore_errors=True)
        n = len(shards)
        gang = _gang(ray, n) if spec.collective else None
        actor = _rendezvous(ray, n, shared) if spec.collective else None
        shipped = [  # the settings and services, none open
            replace(ctx, collective=None if actor is None else RayGroup(actor, i, n))
            for i in range(n)
        ]
        setup_s = time.perf_counter() - t0
        tell = _users_progress(progress, [len(s) for s in shards])
        t1 = time.perf_counter()
        refs = [
            _submit(
                ray,
                _run_shard,
                spec.name,
                sctx,
                {**inp, spec.shard_key: shard},
                str(folder),
                stem,
                placement=gang,
            )
            for shard, stem, sctx in zip(shards, stems, shipped, strict=True)
        ]
        try:
            outs = _gather(ray, refs, tell)
        finally:
            if actor is not None:
                from ray.util import remove_placement_group

                ray.kill(actor)
                remove_placement_group(gang)
        graph_s = time.perf_counter() - t1
    _append_trajectories(ctx, [o["trajectories"] for o in outs])
    state = spec.merge(ctx, inp, [o["state"] for o in outs])
    try:
        report = spec.report(
            RunResult(
                context=ctx,
                state=state,
                thread_id=thread_id,
                status="done",
                pending=None,
                timings={"setup_s": round(setup_s, 3), "graph_s": round(graph_s, 3)},
            )
        )
    finally:
        ctx.close_services()
    if own:
        shutil.rmtree(folder, ignore_errors=True)
    info = [
        {
            "shard": f"{i}-of-{len(shards)}",
            "users": len(shard),
            "attempts": len(o["attempts"]),
            "pids": o["attempts"],
            "resumed": o["resumed"],
            "node": o["node"],
            "devices": o["devices"],
            "seconds": o["seconds"],
        }
        for i, (shard, o) in enumerate(zip(shards, outs, strict=True))
    ]
    cached = all(o["cached"] for o in outs)
    return report.model_copy(update={"shards": info, "cached": cached})


def _users_progress(progress: Callable[..., None] | None, sizes: list[int]):
    total, done = sum(sizes), [0]

    def on_done(i: int) -> None:
        done[0] += sizes[i]
        if progress is not None:
            progress(done[0], total)

    return on_done


def _append_trajectories(ctx: Any, texts: list[str]) -> None:
    """The one sink: each shard's runs, shard by shard, sorted by run id,
    appended once to ``ctx.trajectories`` (records already there skipped)."""
    path = getattr(ctx, "trajectories", None)
    if not path:
        return
    from agenticrec.trajectory import TrajectoryWriter, read_trajectories

    with tempfile.TemporaryDirectory(prefix="agenticrec-shard-") as tmp:
        with TrajectoryWriter(path) as writer:
            for i, text in enumerate(texts):
                if not text:
                    continue
                shard = Path(tmp) / f"{i}.jsonl"
                shard.write_text(text, encoding="utf-8")
                runs = read_trajectories(shard)
                for run_id in sorted(runs):
                    writer.append(runs[run_id])


def run_many(
    graph: GraphSpec | str,
    contexts: Sequence[Any],
    *,
    address: str | None = None,
    checkpoint: Path | str | None = None,
) -> list[Report]:
    """Several whole runs of ``graph`` at once, one Ray task each (e.g. tune
    tasks over several seeds or objectives); reports in ``contexts`` order,
    each the report that run gives in one process.

    Args:
        checkpoint: a folder; run ``i`` checkpoints to ``<folder>/<i>.sqlite``
            (a retried task resumes from it). Default: no checkpoint.

    Raises:
        ConfigError: Ray is missing, or a context asks for ``backend=ray``.
        ClusterError: as :func:`run_ray`.
    """
    spec = get_graph(graph) if isinstance(graph, str) else graph
    if any(getattr(c, "backend", "local") == "ray" for c in contexts):
        raise ConfigError("run_many runs each context in one process: backend=local")
    folder = None if checkpoint is None else Path(checkpoint)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    with ray_session(address) as ray:
        refs = [
            _submit(
                ray,
                _run_whole,
                spec.name,
                replace(c),
                None if folder is None else str(folder / f"{i}.sqlite"),
            )
            for i, c in enumerate(contexts)
        ]
        return _gather(ray, refs, lambda i: None)


def _run_whole(graph: str, ctx: Any, checkpoint: str | None) -> Report:
    from agenticrec.runner import run

    return run(graph, ctx, checkpoint=checkpoint)
