"""What every ``agenticrec run GRAPH`` shares: options, checkpoints, reports.

Graph modules add their own command to the ``run`` group through
``register_cli(run_app)``; the modules are listed in ``GRAPH_MODULES``. The
common options (``--data --seed --checkpoint --thread-id --json``) are
declared once here so they mean the same everywhere.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = [
    "GRAPH_MODULES",
    "CheckpointOpt",
    "DataOpt",
    "JsonOpt",
    "SeedOpt",
    "ThreadOpt",
    "TrajectoriesOpt",
    "emit_report",
    "open_checkpointer",
    "progress_bar",
    "stderr",
]

GRAPH_MODULES: tuple[str, ...] = (
    # modules exposing register_cli(run_app) and demo(dataset, seed=...)
    "agenticrec.graphs.teacher",
    "agenticrec.graphs.dualagent",
    "agenticrec.graphs.system",
    "agenticrec.graphs.tune",
)

stderr = Console(stderr=True)

DataOpt = Annotated[
    str, typer.Option("--data", help="Dataset name (ml-latest-small) or path.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed; same seed, same report.")]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", help="SQLite checkpoint file; enables resume."),
]
ThreadOpt = Annotated[
    str | None,
    typer.Option("--thread-id", help="Thread id; re-running it resumes the run."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON report on stdout, nothing else.")
]
TrajectoriesOpt = Annotated[
    Path | None,
    typer.Option("--trajectories", help="Append the run's trajectory here."),
]


@contextlib.contextmanager
def open_checkpointer(path: Path | None) -> Iterator[Any]:
    """A LangGraph ``SqliteSaver`` on ``path`` (or ``None`` without a path)."""
    if path is None:
        yield None
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


@contextlib.contextmanager
def progress_bar(label: str, *, disable: bool = False) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``update(done, total)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    if disable:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as prog:
        task = prog.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        yield update


def emit_report(report: dict[str, Any], *, as_json: bool, title: str = "") -> None:
    """Print ``report``: JSON alone on stdout, or a readable view on stdout."""
    if as_json:
        sys.stdout.write(json.dumps(report, default=_jsonable, sort_keys=True) + "\n")
        sys.stdout.flush()
        return
    from rich.pretty import Pretty

    console = Console()
    if title:
        console.rule(title)
    console.print(Pretty(report, expand_all=False))


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
