"""Export trajectories as distillation data for a single student model.

Formats (one JSONL file each, written atomically into the output folder):

* ``sft`` -> ``sft.jsonl``: TRL conversational rows ``{"messages", "tools"}``;
  assistant turns carry ``tool_calls`` (arguments as objects) followed by
  ``tool`` messages, as TRL's chat templates expect.
* ``openai`` -> ``openai.jsonl``: OpenAI chat fine-tuning rows; tool-call
  ``arguments`` are JSON strings and ``tools`` are ``{"type": "function"}``.
* ``grpo`` -> ``grpo.jsonl``: prompt-only rows (``prompt`` as system + user
  messages) with the held-out item as ``target`` and the ``candidates``;
  score completions with :func:`agenticrec.rewards.reward`.
* ``star`` -> ``star.jsonl``: one linear chain of thought per run (STAR):
  ``<plan>..</plan><tool_call>..</tool_call><tool_response>..</tool_response>
  <reflection>..</reflection><recommend>[ids]</recommend>`` as ``completion``.
* ``student`` -> ``student.jsonl``: the one format SFT and GRPO share
  (``agenticrec distill``): ``prompt`` is the student's system message
  (``prompts/student.md``) and the user's task (history and candidates as
  data), ``completion`` one assistant message holding the STAR chain that ends
  in the ``<recommend>[ids]</recommend>`` the GRPO reward parses, beside the
  ``target`` and ``candidates`` the reward reads. A student that learnt the
  chain in SFT therefore starts GRPO with a non-zero format reward.

``keep="hit@K"`` keeps only runs whose final top-K holds the held-out item
(outcome filtering); the summary counts kept and dropped runs.

Nothing unvalidated becomes training data:

* **Runs must replay.** The file is replayed first
  (:func:`agenticrec.replay.replay_file`: tool results, the evidence derived
  from them, the dataset fingerprint); a run that differs is refused
  (``TrajectoryError`` naming the runs, CLI exit 2) unless
  ``skip_unreplayable=True`` (``--skip-unreplayable``), which skips and counts
  them.
* **Model-written and data text is neutralised.** Rationales, reasons,
  issues, tool names, ids and arguments, evidence and the task's titles pass
  :func:`neutralise`: chat-template special tokens (``<|im_start|>``,
  ``<|im_end|>``, ``<|eot_id|>``, ``<|start_header_id|>``, any ``<|...|>``
  or ``<｜...｜>``, ``[INST]``, ``<<SYS>>``, ``<s>``, ``</s>``) and the tags
  this module writes and the GRPO reward parses (``<recommend>``, ``<plan>``,
  ``<tool_call>``, ``<tool_response>``, ``<reflection>``, ``<think>`` and
  their closers, with or without attributes) get their angle brackets
  replaced by ``‹``/``›`` and square brackets by ``⟦``/``⟧`` (visible, and
  not folded back by NFKC; fullwidth ``＜ ＞`` count as brackets too), so no
  row holds a live special token and the reward can only parse the export's
  own final ``<recommend>``. Only the export's structural tags and the
  graph's own system prompt stay as written.
* A killed export leaves no half-written file; the next export removes the
  stale temp files of its own output (``.<format>.jsonl.*.tmp``). Files get
  the mode the umask gives.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Literal

from agenticrec._io import atomic_write_text, remove_stale_temps
from agenticrec.errors import ConfigError, TrajectoryError
from agenticrec.trajectory import Trajectory, read_trajectories

__all__ = ["FORMATS", "export_file", "neutralise", "student_prompt", "tools_schema"]

Format = Literal["sft", "openai", "grpo", "star", "student"]
FORMATS: tuple[str, ...] = ("sft", "openai", "grpo", "star", "student")


# Angle brackets, bars and square brackets as written, fullwidth or small
# (a tokenizer that applies NFKC folds those back to ASCII).
_LT, _GT, _BAR = "<\uff1c\ufe64", ">\uff1e\ufe65", "|\uff5c"
_LSQ, _RSQ = r"\[\uff3b", r"\]\uff3d"
_TAGS = (
    "recommend|plan|tool_call|tool_response|reflection|think|answer|"
    "function_call|start_of_turn|end_of_turn"
)
_CONTROL = re.compile(
    # <|im_start|>, <|eot_id|>, <|endoftext|>, <｜begin▁of▁sentence｜>, ...
    rf"[{_LT}][{_BAR}][^{_LT}{_GT}{_BAR}]{{0,64}}[{_BAR}][{_GT}]"
    rf"|[{_LT}]/?(?:s|bos|eos|pad|unk)[{_GT}]"  # <s>, </s>, <eos>, ...
    rf"|[{_LT}]{{2}}/?SYS[{_GT}]{{2}}"  # <<SYS>>, <</SYS>>
    # the STAR / reward tags, with or without attributes
    rf"|[{_LT}]\s*/?\s*(?:{_TAGS})\b[^{_LT}{_GT}]{{0,64}}[{_GT}]"
    rf"|[{_LSQ}]/?(?:INST|SYS|SYSTEM_PROMPT|TOOL_CALLS|TOOL_RESULTS|"
    rf"AVAILABLE_TOOLS)[{_RSQ}]",  # [INST], [/INST], Mistral's control tokens
    re.I,
)
# Visible, never parsed, and left alone by NFKC.
_INERT = str.maketrans(
    {
        **dict.fromkeys("<\uff1c\ufe64", "\u2039"),  # ‹
        **dict.fromkeys(">\uff1e\ufe65", "\u203a"),  # ›
        **dict.fromkeys("[\uff3b", "\u27e6"),  # ⟦
        **dict.fromkeys("]\uff3d", "\u27e7"),  # ⟧
    }
)


def neutralise(text: str) -> str:
    """``text`` with chat-template control sequences and answer tags made
    inert (visible, never parsed): ``<|im_start|>`` -> ``‹|im_start|›``,
    ``</recommend>`` -> ``‹/recommend›``, ``[INST]`` -> ``⟦INST⟧``.

    Ordinary text (``a < b``, ``[x]``, ``<recommendation>``) is kept. The
    substitution repeats until nothing matches, so a sequence that only
    becomes a tag once an inner one is neutralised (``<plan<|x|>>``) is caught.
    """
    while True:
        out = _CONTROL.sub(lambda m: m.group(0).translate(_INERT), text)
        if out == text:
            return out
        text = out


def _clean(obj: Any) -> Any:
    """Every string inside ``obj`` neutralised."""
    if isinstance(obj, str):
        return neutralise(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _dump(obj: Any) -> str:
    return json.dumps(_clean(obj), ensure_ascii=False)


def _parse_keep(keep: str | None) -> int | None:
    if keep is None:
        return None
    m = re.fullmatch(r"hit@(\d+)", keep.strip())
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"--keep {keep!r}: expected hit@K with K >= 1, e.g. hit@10")
    return int(m.group(1))


def tools_schema(header_graph: str) -> list[dict[str, Any]]:
    """OpenAI function schemas of the graph's tools (what the student may call)."""
    from agenticrec.graphspec import load_graphs

    spec = load_graphs().get(header_graph)
    if spec is None:
        raise TrajectoryError(
            f"the trajectory was written by graph {header_graph!r}, which is not "
            f"registered here (registered: {', '.join(sorted(load_graphs()))})"
        )
    return spec.tool_schemas() if spec.tool_schemas is not None else []


def _step(traj: Trajectory, node: str):
    return [s for s in traj.steps if s.node == node]


def _conversation(traj: Trajectory, *, string_args: bool) -> list[dict[str, Any]]:
    plan = _step(traj, "planner")
    if not plan:
        raise ConfigError(f"run {traj.header.run_id} has no planner step")
    extra = plan[0].extra
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": extra.get("system", "")},
        {"role": "user", "content": neutralise(extra.get("task", ""))},
    ]
    for s in traj.steps:
        if s.node in ("planner", "ranker", "reflector"):
            msgs.append({"role": "assistant", "content": _dump(s.decision)})
        elif s.node == "tools":
            calls = []
            for c in s.tool_results:
                args = _dump(c["args"]) if string_args else _clean(c["args"])
                calls.append(
                    {
                        "id": neutralise(str(c["id"])),
                        "type": "function",
                        "function": {"name": neutralise(c["name"]), "arguments": args},
                    }
                )
            msgs.append({"role": "assistant", "content": "", "tool_calls": calls})
            for c in s.tool_results:
                msgs.append(
                    {
                        "role": "tool",
                        "tool_call_id": neutralise(str(c["id"])),
                        "name": neutralise(c["name"]),
                        "content": neutralise("\n".join(c.get("evidence", []))),
                    }
                )
    return msgs


def _star(traj: Trajectory) -> str:
    parts = []
    for s in traj.steps:
        if s.node == "planner":
            parts.append(f"<plan>{_dump(s.decision)}</plan>")
        elif s.node == "tools":
            for c in s.tool_results:
                call = _dump({"name": c["name"], "arguments": c["args"]})
                parts.append(f"<tool_call>{call}</tool_call>")
                text = neutralise("\n".join(c.get("evidence", [])))
                parts.append(f"<tool_response>{text}</tool_response>")
        elif s.node == "reflector":
            parts.append(f"<reflection>{_dump(s.decision)}</reflection>")
    ranking = [int(i) for i in _final(traj)["ranking"]]
    parts.append(f"<recommend>{json.dumps(ranking)}</recommend>")
    return "\n".join(parts)


def student_prompt(task: str) -> list[dict[str, str]]:
    """The student's prompt for one user's task JSON: its system message
    (``prompts/student.md``) and the task, neutralised. Export and the
    student graph build it here, so training and serving see the same text."""
    from agenticrec.prompts import load

    return [
        {"role": "system", "content": load("student").strip()},
        {"role": "user", "content": neutralise(task)},
    ]


def _final(traj: Trajectory) -> dict[str, Any]:
    if traj.end is None:
        raise ConfigError(f"run {traj.header.run_id} has no end record")
    return traj.end.metrics


def _refusal(path: str | Path, replay: Any, shown: int = 5) -> str:
    """One message naming the runs that do not replay and why (first diff)."""
    first: dict[str, str] = {}
    for d in replay.differences:
        first.setdefault(d.run_id, d.message)
    lines = list(first.values())
    more = f"; and {len(lines) - shown} more" if len(lines) > shown else ""
    return (
        f"{path}: {len(lines)} run(s) do not replay, refusing to export them as "
        f"training data: {'; '.join(lines[:shown])}{more} (agenticrec replay "
        "shows every difference; --skip-unreplayable exports the other runs)"
    )


def export_file(
    path: str | Path,
    out_dir: str | Path,
    fmt: str,
    *,
    keep: str | None = None,
    skip_unreplayable: bool = False,
) -> dict[str, Any]:
    """Write ``fmt`` rows for every complete run in ``path`` into ``out_dir``.

    Returns a summary: the file written, rows kept, runs dropped by the
    outcome filter, incomplete runs skipped, runs skipped because they did
    not replay (with ``skip_unreplayable``) and stale temp files removed.

    Raises:
        TrajectoryError: a run does not replay (without ``skip_unreplayable``).
    """
    from agenticrec.replay import replay_file

    started = time.time()
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}: expected one of {FORMATS}")
    k = _parse_keep(keep)
    out = Path(out_dir)
    target = out / f"{fmt}.jsonl"
    if target.resolve().parent != out.resolve():
        raise ConfigError(f"refusing to write outside {out}")
    stale = remove_stale_temps(target, older_than=started)
    runs = read_trajectories(path)
    replay = replay_file(path)
    bad = replay.failed_runs
    if bad and not skip_unreplayable:
        raise TrajectoryError(_refusal(path, replay))
    rows: list[dict[str, Any]] = []
    dropped = incomplete = 0
    schemas: dict[str, list] = {}
    for traj in runs.values():
        if traj.header.run_id in bad:
            continue
        if traj.end is None or not _step(traj, "planner"):
            incomplete += 1
            continue
        final = _final(traj)
        if k is not None and not (0 <= final.get("rank", -1) < k):
            dropped += 1
            continue
        graph = traj.header.graph
        if graph not in schemas:
            schemas[graph] = tools_schema(graph)
        extra = _step(traj, "planner")[0].extra
        base = {"run_id": traj.header.run_id, "target": final["target"]}
        if fmt == "sft":
            rows.append(
                {
                    **base,
                    "messages": _conversation(traj, string_args=False),
                    "tools": schemas[graph],
                }
            )
        elif fmt == "openai":
            rows.append(
                {
                    "messages": _conversation(traj, string_args=True),
                    "tools": schemas[graph],
                }
            )
        elif fmt == "grpo":
            rows.append(
                {
                    **base,
                    "prompt": [
                        {"role": "system", "content": extra.get("system", "")},
                        {"role": "user", "content": neutralise(extra.get("task", ""))},
                    ],
                    "candidates": extra.get("candidates", []),
                }
            )
        elif fmt == "star":
            rows.append(
                {
                    **base,
                    "prompt": neutralise(extra.get("task", "")),
                    "completion": _star(traj),
                }
            )
        else:
            rows.append(
                {
                    **base,
                    "prompt": student_prompt(extra.get("task", "")),
                    "completion": [{"role": "assistant", "content": _star(traj)}],
                    "candidates": extra.get("candidates", []),
                }
            )
    atomic_write_text(
        target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    )
    return {
        "format": fmt,
        "file": str(target),
        "rows": len(rows),
        "kept": len(rows),
        "dropped": dropped,
        "incomplete": incomplete,
        "unreplayable": len(bad),
        "unreplayable_runs": sorted(bad),
        "stale_temps_removed": len(stale),
        "keep": keep,
    }
