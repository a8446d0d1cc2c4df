"""The one runner of every graph: thread, checkpoint, resume, interrupts,
progress, services and the typed report; and the ``agenticrec run`` commands
generated from each graph's context fields.

A run is one LangGraph thread. With a checkpoint file the thread is bound to
its arguments (:mod:`agenticrec.checkpoint`): the default thread id is a
digest of the binding, so a changed argument starts a new thread; an explicit
``--thread-id`` run with other arguments is refused naming each differing
field (``--new-thread`` discards the old one); a finished thread returns its
stored report; a killed one resumes at its pending tasks.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import sys
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agenticrec import __version__, report_html
from agenticrec.checkpoint import (
    Checkpoint,
    CheckpointError,
    SafeSerializer,
    binding_digest,
    differences,
    open_checkpointer,
)
from agenticrec.graphspec import GraphSpec, Report, RunResult, get_graph, load_graphs

__all__ = [
    "JsonOpt",
    "binding",
    "emit_progress",
    "emit_report",
    "report_tables",
    "open_checkpointer",
    "progress_bar",
    "register_commands",
    "run",
    "stderr",
]

stderr = Console(stderr=True)

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON report on stdout, nothing else.")
]


# ----------------------------------------------------------------- binding
def _digest(x: Any) -> str:
    raw = json.dumps(x, sort_keys=True, default=str).encode()
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


def _describe_input(inp: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in inp.items():
        if isinstance(v, list | tuple) and len(v) > 8:
            out[k] = f"{len(v)} values #{_digest(list(v))}"
        else:
            out[k] = v
    return out


def binding(spec: GraphSpec, ctx: Any, inp: Mapping[str, Any]) -> dict[str, Any]:
    """What defines a run's result: graph, binding settings, input, dataset,
    package version."""
    return {
        "graph": spec.name,
        "version": __version__,
        "settings": ctx.settings(binding_only=True),
        "input": _describe_input(inp),
        "dataset": dict(spec.dataset(ctx)),
    }


def resolve_concurrency(ctx: Any) -> int:
    """``ctx.concurrency``, or the default: 16 with an LLM endpoint (its calls
    wait on the network), else 4 (rule policies are CPU-bound)."""
    n = int(getattr(ctx, "concurrency", 0) or 0)
    if n:
        return n
    return 16 if ctx.llm_configured else 4


# ---------------------------------------------------------------------- run
def run(
    graph: str | GraphSpec,
    ctx: Any = None,
    *,
    checkpoint: Path | str | Checkpoint | Any = None,
    thread_id: str | None = None,
    new_thread: bool = False,
    resume: Any = None,
    progress: Callable[[int, int], None] | None = None,
    input: Mapping[str, Any] | None = None,
) -> Report:
    """Run (or resume) ``graph`` under ``ctx`` and return its typed report.

    With ``ctx.backend == "ray"`` the run's users are split into shards run
    on a Ray cluster and the report is recomputed from their union
    (:func:`agenticrec.distributed.run_ray`; ``checkpoint`` is then a folder).

    Args:
        checkpoint: a SQLite file path (or an open :class:`Checkpoint`, or a
            LangGraph saver such as ``InMemorySaver``); enables resume.
        thread_id: default: ``<graph>-<digest of the binding>``.
        new_thread: discard a stored thread of this id instead of refusing.
        resume: the answer to a pending ``interrupt`` (``Command(resume=...)``).
        progress: called with ``(done, total)`` as the graph advances (from
            the spec's ``progress`` after each step and from the graph's own
            `emit_progress` events); a callback taking a third argument also
            gets the event's note (what runs now, or ``None``).
        input: the graph input instead of ``spec.make_input(ctx)`` (a Ray
            shard's users).

    Raises:
        CheckpointError: unsafe checkpoint, a thread bound to other
            arguments, or a thread another process is running.
    """
    spec = get_graph(graph) if isinstance(graph, str) else graph
    ctx = ctx if ctx is not None else spec.context()
    if getattr(ctx, "backend", "local") == "ray":
        from agenticrec.distributed import run_ray

        if resume is not None or input is not None:
            raise CheckpointError(
                "backend=ray runs the graph's whole input and answers no interrupt; "
                "use backend=local for resume= or input="
            )
        return run_ray(
            spec,
            ctx,
            checkpoint=checkpoint,
            thread_id=thread_id,
            new_thread=new_thread,
            progress=progress,
        )
    if isinstance(checkpoint, str | Path):
        with open_checkpointer(checkpoint) as ck:
            return run(
                spec,
                ctx,
                checkpoint=ck,
                thread_id=thread_id,
                new_thread=new_thread,
                resume=resume,
                progress=progress,
                input=input,
            )
    t0 = time.perf_counter()
    if spec.prepare is not None:
        spec.prepare(ctx, checkpoint is not None)
    inp = dict(input) if input is not None else spec.make_input(ctx)
    bind = binding(spec, ctx, inp)
    thread_id = thread_id or f"{spec.name}-{binding_digest(bind)}"
    setup_s = time.perf_counter() - t0
    threads = checkpoint.threads if isinstance(checkpoint, Checkpoint) else None
    saver = checkpoint.saver if isinstance(checkpoint, Checkpoint) else checkpoint
    with threads.lock(thread_id) if threads is not None else contextlib.nullcontext():
        if threads is not None:
            stored = threads.get(thread_id)
            if stored is not None:
                diffs = differences(stored[0], bind)
                if diffs and not new_thread:
                    raise CheckpointError(
                        f"thread {thread_id!r} in {threads.path} was run with other "
                        f"arguments: {'; '.join(diffs)}. Re-run with the same "
                        "arguments to resume it, or pass --new-thread (or another "
                        "--thread-id) to start over"
                    )
                if diffs or new_thread:
                    saver.delete_thread(thread_id)
                    threads.forget(thread_id)
                elif stored[1] == "done" and stored[2]:
                    # finished: its report, even with an answer (none pending)
                    rep = spec.report_type.model_validate_json(stored[2])
                    return rep.model_copy(update={"cached": True})
        try:
            return _stream(
                spec,
                ctx,
                inp,
                saver,
                threads,
                bind,
                thread_id,
                resume,
                progress,
                setup_s,
            )
        finally:
            ctx.close_services()


def _stream(
    spec, ctx, inp, saver, threads, bind, thread_id, resume, progress, setup_s
) -> Report:
    from langgraph.types import Command

    compiled = spec.build_graph(checkpointer=saver) if saver is not None else spec.graph
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread_id},
        # +1: with the "custom" stream mode LangGraph's sync stream keeps one
        # waiter future in the same bounded executor (pregel/main.py, "enable
        # concurrent streaming"); without the extra slot max_concurrency=1
        # deadlocks and N would run only N-1 tasks at once.
        "max_concurrency": resolve_concurrency(ctx) + 1,
    }
    if spec.recursion_limit is not None:
        config["recursion_limit"] = spec.recursion_limit(ctx, inp)
    start: Any = dict(inp)
    if saver is not None:
        snap = compiled.get_state(config)  # a tampered checkpoint fails here
        if snap.next or snap.tasks:
            # paused without an answer: re-run the pending task, which pauses
            # again (LangGraph cannot resume with None)
            answered = resume is not None and _pending(snap) is not None
            start = Command(resume=resume) if answered else None
        elif snap.metadata is not None and snap.values:
            # the graph finished but its process died before the thread was
            # marked done: report it; invoking it again would add every
            # result a second time (list reducers)
            start = None
        if threads is not None:
            threads.bind(thread_id, bind)
    t1 = time.perf_counter()
    final: Mapping[str, Any] = {}
    counts: dict[str, int] = {}
    tell = _progress_sink(progress)
    for mode, chunk in compiled.stream(
        start, config, context=ctx, stream_mode=["updates", "values", "custom"]
    ):
        if mode == "custom":
            event = chunk.get("progress") if isinstance(chunk, Mapping) else None
            if isinstance(event, Mapping):
                tell(int(event["done"]), int(event["total"]), event.get("note"))
            continue
        if mode == "values":
            final = chunk
        else:
            for node in chunk:
                counts[node] = counts.get(node, 0) + 1
        if spec.progress is not None:
            p = spec.progress(ctx, inp, counts, final)
            if p is not None:
                tell(*p, None)
    pending = None
    if saver is not None:
        snap = compiled.get_state(config)
        final, pending = snap.values, _pending(snap)
    graph_s = time.perf_counter() - t1
    status = "awaiting_input" if pending is not None else "done"
    report = spec.report(
        RunResult(
            context=ctx,
            state=final,
            thread_id=thread_id,
            status=status,
            pending=pending,
            timings={"setup_s": round(setup_s, 3), "graph_s": round(graph_s, 3)},
        )
    )
    if threads is not None and status == "done":
        threads.finish(thread_id, report.model_dump_json())
    return report


def emit_progress(done: int, total: int, note: str | None = None) -> None:
    """Report progress from inside a graph node: a LangGraph custom stream event
    ``{"progress": {"done", "total", "note"}}`` that the runner hands to its
    ``progress`` callback (the CLI's bar). ``note`` says what runs now, e.g.
    ``"generations 11-20 (one jit call)"``. A no-op outside a graph run."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # a node called directly, not by a graph
        return
    writer({"progress": {"done": int(done), "total": int(total), "note": note}})


def _progress_sink(progress: Callable[..., None] | None) -> Callable[..., None]:
    """``(done, total, note)`` -> ``progress``; the note only reaches callbacks
    that take a third argument (``progress_bar``'s does)."""
    if progress is None:
        return lambda done, total, note: None
    try:
        inspect.signature(progress).bind(0, 0, None)
        takes_note = True
    except (TypeError, ValueError):
        takes_note = False
    if takes_note:
        return progress
    return lambda done, total, note: progress(done, total)


def _pending(snap: Any) -> Any:
    for task in snap.tasks:
        for it in getattr(task, "interrupts", ()) or ():
            return it.value
    return None


# -------------------------------------------------------------- reporting
@contextlib.contextmanager
def progress_bar(label: str, *, disable: bool = False) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``update(done, total, note=None)``
    (``note``: what runs now, shown after the bar)."""
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    if disable:
        yield lambda done, total, note=None: None
        return
    with Progress(
        TextColumn(f"[bold]{escape(label)}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=stderr,
        transient=True,
    ) as prog:
        task = prog.add_task(label, total=None, note="")

        def update(done: int, total: int, note: str | None = None) -> None:
            fields = {} if note is None else {"note": escape(note)}
            prog.update(task, completed=done, total=total, **fields)

        yield update


def emit_report(report: Any, *, as_json: bool, title: str = "") -> None:
    """Print ``report``: JSON alone on stdout, or rich tables on stdout
    (`report_tables`)."""
    if isinstance(report, Report):
        report = report.model_dump(mode="json")
    if as_json:
        sys.stdout.write(json.dumps(report, default=_jsonable, sort_keys=True) + "\n")
        sys.stdout.flush()
        return
    console = Console()
    for table in report_tables(report, title=title):
        console.print(table)


MAX_ROWS = 20
"""Rows a table of records shows before it says how many it left out."""


def report_tables(report: Any, *, title: str = "") -> list[Any]:
    """A JSON-able report as rich tables: its scalar fields in one
    ``field | value`` table; a mapping of scalars as a ``key | value`` table;
    a list of records, or a mapping of records (``metrics`` per method), as a
    table with one column per record key; anything else as compact JSON."""
    from rich.table import Table

    if not isinstance(report, Mapping):
        report = {"value": report}
    main = Table(title=title or None, show_header=True)
    main.add_column("field", style="bold")
    main.add_column("value")
    out: list[Any] = [main]
    for key, value in report.items():
        sub = _sub_table(str(key), value)
        if sub is not None:
            out.append(sub)
        elif value is not None and value != {} and value != []:
            main.add_row(str(key), _cell(value))
    return out if main.row_count or len(out) == 1 else out[1:]


def _scalar(x: Any) -> bool:
    return x is None or isinstance(x, str | int | float | bool)


def _records(value: Any) -> list[tuple[str | None, Mapping[str, Any]]] | None:
    """``[(row label, record)]`` when ``value`` is a table of records."""
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return [(None, v) for v in value]
    if (
        isinstance(value, Mapping)
        and value
        and all(isinstance(v, Mapping) and v for v in value.values())
    ):
        return [(str(k), v) for k, v in value.items()]
    return None


def _sub_table(name: str, value: Any) -> Any:
    from rich.table import Table

    if isinstance(value, Mapping) and value and all(map(_scalar, value.values())):
        table = Table(title=name)
        table.add_column("key", style="bold")
        table.add_column("value")
        for k, v in value.items():
            table.add_row(str(k), _cell(v))
        return table
    records = _records(value)
    if records is None:
        return None
    columns: list[str] = []
    for _, rec in records:
        columns += [str(k) for k in rec if str(k) not in columns]
    labelled = records[0][0] is not None
    shown = records[:MAX_ROWS]
    more = len(records) - len(shown)
    table = Table(title=name, caption=f"... {more} more (--json)" if more else None)
    if labelled:
        table.add_column("", style="bold")
    for col in columns:
        table.add_column(col)
    for label, rec in shown:
        cells = [_cell(rec.get(col)) for col in columns]
        table.add_row(*([label or ""] if labelled else []), *cells)
    return table


def _cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if isinstance(x, str):
        return x
    text = json.dumps(x, default=_jsonable, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _jsonable(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------- CLI
def _option_type(ann: Any) -> Any:
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return str
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return _option_type(args[0]) | None if args else str
    return ann


def _help(meta: Mapping[str, Any]) -> str:
    text = meta.get("description", "")
    lo, hi, ch = meta.get("ge"), meta.get("le"), meta.get("choices")
    if lo is not None or hi is not None:
        text += f" (range {'' if lo is None else lo}..{'' if hi is None else hi})"
    if ch:
        text += f" (one of: {', '.join(map(str, ch))})"
    return text


def context_options(ctx_cls: type) -> list[inspect.Parameter]:
    """One CLI option per visible context field (the one declaration)."""
    hints = typing.get_type_hints(ctx_cls)
    params = []
    for f in fields(ctx_cls):
        meta = f.metadata
        if meta.get("hidden") or f.name.startswith("_"):
            continue
        default = f.default if f.default is not MISSING else None
        cli = meta.get("cli") or f"--{f.name.replace('_', '-')}"
        decls = (cli,) if isinstance(cli, str) else tuple(cli)
        if hints[f.name] is bool and "/" not in decls[0]:
            decls = (f"{decls[0]}/--no-{decls[0][2:]}",)
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(default, *decls, help=_help(meta)),
                annotation=_option_type(hints[f.name]),
            )
        )
    return params


_RUN_OPTIONS = {
    "checkpoint": (
        Path | None,
        typer.Option(
            None,
            "--checkpoint",
            help="SQLite checkpoint file; enables resume. With --backend ray: a "
            "folder holding one file per shard.",
        ),
    ),
    "thread_id": (
        str | None,
        typer.Option(
            None, "--thread-id", help="Thread id (default: a digest of the arguments)."
        ),
    ),
    "new_thread": (
        bool,
        typer.Option(
            False,
            "--new-thread",
            help="Discard a stored thread of this id and start over.",
        ),
    ),
    "as_json": (
        bool,
        typer.Option(
            False, "--json", help="Print one JSON report on stdout, nothing else."
        ),
    ),
    "report_dir": (
        Path | None,
        typer.Option(
            None,
            "--report",
            help="Write a self-contained HTML report (DIR/index.html) of the run.",
        ),
    ),
    "seed_list": (
        str | None,
        typer.Option(
            None,
            "--seed-list",
            help="With --backend ray: one whole run per seed (comma-separated, "
            "e.g. 0,1,2,3), all at once, one Ray task each; one report per seed "
            "(a JSON list with --json).",
        ),
    ),
}


def make_command(spec: GraphSpec) -> Callable[..., None]:
    """The ``agenticrec run <spec.name>`` command."""
    params = context_options(spec.context)
    names = {p.name for p in params}
    for name, (ann, opt) in _RUN_OPTIONS.items():
        if name in names:
            raise CheckpointError(
                f"graph {spec.name}: context field {name!r} "
                "clashes with a runner option"
            )
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann
            )
        )
    for answer in spec.answers:
        params.append(
            inspect.Parameter(
                f"answer_{answer}",
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(
                    False,
                    f"--{answer}",
                    help=f"Answer the pending interrupt: {answer}.",
                ),
                annotation=bool,
            )
        )
    field_names = [f.name for f in fields(spec.context) if f.name in names]

    def command(**kw: Any) -> None:
        ctx = spec.context(**{n: kw[n] for n in field_names})
        if kw["seed_list"] is not None:
            reports = seed_runs(spec, ctx, kw["seed_list"], kw["checkpoint"])
            if kw["as_json"]:
                out = [r.model_dump(mode="json") for r in reports]
                emit_report(out, as_json=True)
            for r in [] if kw["as_json"] else reports:
                emit_report(r, as_json=False, title=f"{spec.name}, seed {r.seed}")
            return
        if kw["report_dir"] is not None:
            ctx = report_html.report_context(ctx, kw["report_dir"])
        chosen = [a for a in spec.answers if kw.get(f"answer_{a}")]
        if len(chosen) > 1:
            raise CheckpointError(
                f"pass at most one of {', '.join('--' + a for a in chosen)}"
            )
        resume = spec.answers[chosen[0]] if chosen else None
        interactive = bool(spec.answers) and not kw["as_json"] and sys.stdin.isatty()
        with contextlib.ExitStack() as stack:
            if ctx.backend == "ray":  # a folder of per-shard files, opened there
                ck: Any = kw["checkpoint"]
                interactive = False
            else:
                ck = stack.enter_context(open_checkpointer(kw["checkpoint"]))
            if ck is None and interactive:
                from langgraph.checkpoint.memory import InMemorySaver

                ck = InMemorySaver(serde=SafeSerializer())
            bar = stack.enter_context(progress_bar(spec.name, disable=kw["as_json"]))
            args = dict(thread_id=kw["thread_id"], new_thread=kw["new_thread"])
            report = run(spec, ctx, checkpoint=ck, resume=resume, progress=bar, **args)
            while interactive and report.status == "awaiting_input":
                emit_report(report.pending, as_json=False, title="waiting for input")
                answer = ""
                while answer not in spec.answers:  # typer 0.29 has no Choice
                    answer = typer.prompt(
                        f"answer ({' / '.join(spec.answers)})", err=True
                    ).strip()
                report = run(
                    spec,
                    ctx,
                    checkpoint=ck,
                    resume=spec.answers[answer],
                    progress=bar,
                    thread_id=report.thread_id,
                )
        if kw["report_dir"] is not None:
            report_html.write_report(kw["report_dir"], report, ctx)
        if report.status == "awaiting_input" and not kw["as_json"]:
            flags = " or ".join(f"--{a}" for a in spec.answers)
            stderr.print(
                f"paused for input: re-run with --thread-id "
                f"{report.thread_id} {flags} and the same --checkpoint"
            )
        emit_report(report, as_json=kw["as_json"], title=spec.name)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = spec.description
    command.__name__ = f"run_{spec.name}"
    return command


def seed_runs(
    spec: GraphSpec, ctx: Any, seeds: str, checkpoint: Path | None
) -> list[Report]:
    """``--seed-list``: ``ctx`` once per seed, all at once on Ray
    (:func:`agenticrec.distributed.run_many`), reports in seed order.

    Raises:
        ConfigError: no ``--backend ray``, a seed that is not an integer in
            range, or runs that would share one Skillhub folder.
    """
    from dataclasses import replace

    from agenticrec.errors import ConfigError

    if ctx.backend != "ray":
        raise ConfigError("--seed-list runs the seeds on Ray: add --backend ray")
    try:
        values = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--seed-list {seeds!r}: expected comma-separated integers"
        ) from None
    if not values or len(set(values)) != len(values):
        raise ConfigError(f"--seed-list {seeds!r}: expected distinct seeds")
    # tune's Skillhub is a Chroma folder, not safe across processes
    if getattr(ctx, "skillhub", ":temp:") != ":temp:":
        raise ConfigError(
            "--seed-list: runs at once cannot share one Skillhub folder; pass "
            "--skillhub :temp: (each run its own temporary Skillhub)"
        )
    contexts = [replace(ctx, seed=s, backend="local") for s in values]
    from agenticrec.distributed import run_many

    return run_many(spec, contexts, address=ctx.address, checkpoint=checkpoint)


def register_commands(run_app: typer.Typer) -> None:
    """Add ``agenticrec run <name>`` for every registered graph."""
    for spec in load_graphs().values():
        run_app.command(spec.name, help=spec.description)(make_command(spec))


def debug() -> bool:
    """``AGENTICREC_DEBUG=1`` shows tracebacks of runtime failures."""
    return os.environ.get("AGENTICREC_DEBUG", "") not in ("", "0")
