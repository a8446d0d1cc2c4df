"""Trajectories: a versioned JSONL record of a run, for replay and distillation.

Schema ``agenticrec.trajectory/1``, one JSON object per line:

* ``run`` (first line of a run): ``run_id``, ``graph``, ``context`` (public
  settings), ``dataset`` (``name``, ``fingerprint``), ``started_at``, ``version``.
* ``step``: ``run_id``, ``step_id`` (unique within the run, stable across
  resumes), ``index``, ``node``, ``role``, ``observation`` (a summary), ``decision``,
  ``policy``, ``latency_ms``, ``fallback_reason``, ``messages`` (OpenAI chat
  form, including assistant ``tool_calls`` and ``tool`` results), ``tool_results``
  (name, args, result: what replay re-executes), ``metrics``, ``rewards``,
  ``user`` and ``extra``.
* ``end``: ``run_id``, ``status``, ``metrics``, ``finished_at``.

Several runs may share a file. Graphs record through explicit node hooks
(:meth:`Recorder.step`) rather than a LangChain callback: a callback sees model
and tool calls but not policy fallbacks, rewards or the rule decisions that
make up most runs, and node hooks give step ids that stay stable when a
checkpointed run resumes, which is what makes appends idempotent.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agenticrec.checkpoint import lock_path
from agenticrec.errors import TrajectoryError

__all__ = [
    "SCHEMA",
    "EndRecord",
    "Recorder",
    "RunRecord",
    "StepRecord",
    "Trajectory",
    "TrajectoryWriter",
    "read_trajectories",
]

SCHEMA = "agenticrec.trajectory/1"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["run"] = "run"
    schema_: str = Field(default=SCHEMA, alias="schema")
    run_id: str
    graph: str
    context: dict[str, Any] = Field(default_factory=dict)
    dataset: dict[str, Any] = Field(default_factory=dict)
    started_at: str = Field(default_factory=_now)
    version: str = "0.1.0"


class StepRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["step"] = "step"
    run_id: str
    step_id: str
    index: int
    node: str
    role: str | None = None
    user: str | int | None = None
    observation: dict[str, Any] = Field(default_factory=dict)
    decision: Any = None
    policy: str | None = None
    latency_ms: float | None = None
    fallback_reason: str | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)
    tool_results: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    rewards: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class EndRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["end"] = "end"
    run_id: str
    status: str = "ok"
    metrics: dict[str, Any] = Field(default_factory=dict)
    finished_at: str = Field(default_factory=_now)


def _dump(record: BaseModel) -> str:
    return json.dumps(
        record.model_dump(mode="json", by_alias=True),
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )


class TrajectoryWriter:
    """Append-only writer of one trajectory file, shared by many runs.

    Each record is one ``write`` of a whole line under a file lock (in
    :func:`agenticrec.checkpoint.lock_dir`, not beside the file), so two
    processes appending to the same file interleave whole lines, never bytes.
    The file is read once on open: a resumed run (same ``run_id``) skips its
    header and every ``step_id`` it already wrote, so nothing is duplicated.
    ``close`` fsyncs.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(lock_path(self.path)))  # not beside the output
        self._tlock = threading.RLock()  # threads of one run share the writer
        self._seen: dict[str, set[str]] = {}
        self._next: dict[str, int] = {}
        if self.path.exists() and self.path.stat().st_size:
            self._repair_tail()
            existing = read_trajectories(self.path)
            for run_id, traj in existing.items():
                self._seen[run_id] = {s.step_id for s in traj.steps}
                if traj.end is not None:
                    self._seen[run_id].add("__end__")
                self._next[run_id] = max((s.index for s in traj.steps), default=-1) + 1
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _repair_tail(self) -> None:
        """End the file on a whole line before appending to it.

        A writer killed mid-``write`` can leave a last line cut anywhere, even
        inside a UTF-8 character: it is cut off (its node never checkpointed,
        so the resumed run writes it again). If only the newline was lost, the
        record is whole and is kept: the newline is added, so the next record
        does not land on the same line.
        """
        with self._lock:
            data = self.path.read_bytes()
            if not data or data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1
            try:
                whole = isinstance(json.loads(data[cut:].decode("utf-8")), dict)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                whole = False
            with open(self.path, "r+b") as fh:
                if whole:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
                else:
                    fh.truncate(cut)

    def _append(self, record: BaseModel) -> None:
        line = _dump(record) + "\n"
        with self._tlock, self._lock:
            self._fh.write(line)
            self._fh.flush()

    def has_run(self, run_id: str) -> bool:
        return run_id in self._seen

    def run(
        self,
        run_id: str,
        *,
        graph: str,
        context: Mapping[str, Any] | None = None,
        dataset: Mapping[str, Any] | None = None,
    ) -> Recorder:
        """A recorder for ``run_id``; writes its header unless already present."""
        with self._tlock:
            return self._run(run_id, graph=graph, context=context, dataset=dataset)

    def _run(self, run_id, *, graph, context, dataset) -> Recorder:
        if run_id not in self._seen:
            self._append(
                RunRecord(
                    run_id=run_id,
                    graph=graph,
                    context=dict(context or {}),
                    dataset=dict(dataset or {}),
                )
            )
            self._seen[run_id] = set()
            self._next[run_id] = 0
        return Recorder(self, run_id)

    def append(self, traj: Trajectory) -> int:
        """Copy one run read from another file (a Ray shard's) into this one,
        records unchanged, skipping what this file already holds of that run
        (its header, every ``step_id`` already written, its end): appending
        the same run twice, or the rest of a half-copied run, writes each
        record once. Returns the records written."""
        run_id = traj.header.run_id
        wrote = 0
        with self._tlock:
            if run_id not in self._seen:
                self._append(traj.header)
                self._seen[run_id] = set()
                self._next[run_id] = 0
                wrote += 1
            seen = self._seen[run_id]
            for step in traj.steps:
                if step.step_id in seen:
                    continue
                self._append(step)
                seen.add(step.step_id)
                self._next[run_id] = max(self._next[run_id], step.index + 1)
                wrote += 1
            if traj.end is not None and "__end__" not in seen:
                self._append(traj.end)
                seen.add("__end__")
                wrote += 1
        return wrote

    def close(self) -> None:
        if self._fh.closed:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


class Recorder:
    """Records the steps of one run into a :class:`TrajectoryWriter`.

    ``Recorder(path, graph=..., run_id=...)`` opens its own writer (closed by
    :meth:`close`); ``writer.run(...)`` shares one writer between many runs.
    """

    def __init__(
        self,
        target: str | Path | TrajectoryWriter,
        run_id: str | None = None,
        *,
        graph: str | None = None,
        context: Mapping[str, Any] | None = None,
        dataset: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(target, TrajectoryWriter):
            self._writer, self._owns = target, False
            self.run_id = run_id or uuid.uuid4().hex
        else:
            if graph is None:
                raise TrajectoryError("Recorder(path, ...) needs graph=")
            self._writer, self._owns = TrajectoryWriter(target), True
            self.run_id = run_id or uuid.uuid4().hex
            self._writer.run(self.run_id, graph=graph, context=context, dataset=dataset)

    @property
    def path(self) -> Path:
        return self._writer.path

    def step(self, step_id: str | None = None, **fields: Any) -> StepRecord | None:
        """Append one step; returns ``None`` if ``step_id`` was already written."""
        w = self._writer
        index = w._next[self.run_id]
        sid = step_id or f"{index}"
        if sid in w._seen[self.run_id]:
            return None
        try:
            record = StepRecord(run_id=self.run_id, step_id=sid, index=index, **fields)
        except ValidationError as exc:
            raise TrajectoryError(f"invalid step record {sid!r}: {exc}") from exc
        w._append(record)
        w._seen[self.run_id].add(sid)
        w._next[self.run_id] = index + 1
        return record

    def decision_step(
        self, decision, *, node: str, step_id: str | None = None, **fields: Any
    ) -> StepRecord | None:
        """Append a step built from a policy :class:`~agenticrec.policy.Decision`."""
        rec = decision.record()
        return self.step(
            step_id,
            node=node,
            role=rec["role"],
            decision=rec["decision"],
            policy=rec["policy"],
            latency_ms=rec["latency_ms"],
            fallback_reason=rec["fallback_reason"],
            messages=rec["messages"] + list(fields.pop("messages", [])),
            **fields,
        )

    def end(self, status: str = "ok", metrics: Mapping[str, Any] | None = None) -> None:
        """Append the end record (once per run)."""
        seen = self._writer._seen[self.run_id]
        if "__end__" in seen:
            return
        self._writer._append(
            EndRecord(run_id=self.run_id, status=status, metrics=dict(metrics or {}))
        )
        seen.add("__end__")

    def close(self) -> None:
        if self._owns:
            self._writer.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


@dataclass
class Trajectory:
    """One run read back from a file."""

    header: RunRecord
    steps: list[StepRecord] = field(default_factory=list)
    end: EndRecord | None = None

    @property
    def complete(self) -> bool:
        return self.end is not None


@dataclass
class ReadReport:
    """What the reader noticed: a truncated last line is tolerated and named."""

    truncated_line: int | None = None
    warnings: list[str] = field(default_factory=list)


class TrajectoryFile(dict):
    """``run_id -> Trajectory`` in file order, plus the :class:`ReadReport`."""

    report: ReadReport


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    last_complete = data.endswith(b"\n")
    for i, raw in enumerate(lines, start=1):
        is_last = i == len(lines)
        if is_last and raw == b"":
            return
        unterminated = is_last and not last_complete
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not unterminated:
                raise TrajectoryError(f"{path}, line {i}: not UTF-8 ({exc})") from exc
            text = raw.decode("utf-8", "replace")  # cut inside a character
        yield i, text, unterminated


def read_trajectories(path: str | Path) -> TrajectoryFile:
    """Read every run in ``path``.

    A last line cut off mid-write (a killed process) is dropped and reported in
    ``result.report.truncated_line``; any other malformed line raises
    :class:`TrajectoryError` naming the file and line.
    """
    path = Path(path)
    out = TrajectoryFile()
    out.report = ReadReport()
    if not path.exists():
        raise TrajectoryError(f"{path}: no such trajectory file")
    kinds = {"run": RunRecord, "step": StepRecord, "end": EndRecord}
    for lineno, text, unterminated in _lines(path):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            if unterminated:
                out.report.truncated_line = lineno
                out.report.warnings.append(
                    f"{path}, line {lineno}: truncated last line dropped"
                )
                break
            raise TrajectoryError(
                f"{path}, line {lineno}: invalid JSON ({exc})"
            ) from exc
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind not in kinds:
            raise TrajectoryError(
                f"{path}, line {lineno}: unknown record type {kind!r}"
            )
        if kind == "run" and obj.get("schema") != SCHEMA:
            raise TrajectoryError(
                f"{path}, line {lineno}: schema {obj.get('schema')!r}, "
                f"expected {SCHEMA!r}"
            )
        try:
            rec = kinds[kind].model_validate(obj)
        except ValidationError as exc:
            raise TrajectoryError(f"{path}, line {lineno}: {exc}") from exc
        if kind == "run":
            out.setdefault(rec.run_id, Trajectory(header=rec))
            continue
        traj = out.get(rec.run_id)
        if traj is None:
            raise TrajectoryError(
                f"{path}, line {lineno}: {kind} record for run {rec.run_id!r} "
                "before its run header"
            )
        if kind == "step":
            traj.steps.append(rec)
        else:
            traj.end = rec
    return out
