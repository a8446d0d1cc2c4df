"""The ``agenticrec`` command line.

``agenticrec data info NAME|PATH``, ``agenticrec tools list``,
``agenticrec run GRAPH ...``, ``agenticrec eval list``, ``agenticrec eval NAME
[ARGS]`` (the scripts of ``agenticrec.evals``, arguments passed through).
With ``--json`` a command prints one JSON object on stdout and nothing else
(progress and notes go to stderr); otherwise it prints rich tables.
``agenticrec --version`` prints the installed version.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agenticrec.errors import AgenticRecError
from agenticrec.runner import JsonOpt, emit_report, stderr

app = typer.Typer(
    help="agenticrec: agentic recommender systems on LangGraph and JAX.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
tools_app = typer.Typer(help="Inspect the tool registry.", no_args_is_help=True)
run_app = typer.Typer(help="Run a graph.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("agenticrec")
        except PackageNotFoundError:  # a source tree not installed
            from agenticrec import __version__ as found
        sys.stdout.write(f"agenticrec {found}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """agenticrec: agentic recommender systems on LangGraph and JAX."""


app.add_typer(data_app, name="data")
app.add_typer(tools_app, name="tools")
app.add_typer(run_app, name="run")


@data_app.command("info")
def data_info(
    source: Annotated[str, typer.Argument(help="Dataset name or path.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="Force a format (detection is skipped)."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="--format delimited: role=column pairs, e.g. "
            "'user=uid,item=iid,rating=score,timestamp=ts' (a column is a header "
            "name or a 0-based position; rating may be called weight).",
        ),
    ] = None,
    sep: Annotated[
        str | None,
        typer.Option(
            "--sep",
            help="--format delimited: field separator, any string ('\\t' is a "
            "tab; default ',').",
        ),
    ] = None,
    header: Annotated[
        bool | None,
        typer.Option(
            "--header/--no-header",
            help="--format delimited: line 1 names the columns (default: when "
            "--columns names any column).",
        ),
    ] = None,
    item_file: Annotated[
        Path | None,
        typer.Option("--item-file", help="RecBole: the .item catalog file to use."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts, density, time span, ordering and a popularity histogram."""
    from agenticrec import data

    ds = data.load(
        source,
        format=fmt,
        columns=_column_map(columns),
        sep=None if sep is None else sep.replace("\\t", "\t"),
        header=header,
        item_file=item_file,
    )
    info = ds.info()
    if as_json:
        emit_report(info, as_json=True)
        return
    console = Console()
    table = Table(title=f"dataset {source}", show_header=False)
    for key in ("users", "items", "catalog_items", "interactions", "density"):
        value = info.get(key)
        table.add_row(key, f"{value:,}" if isinstance(value, int) else f"{value:.4%}")
    for key, value in info.items():
        if key not in {
            "users",
            "items",
            "catalog_items",
            "interactions",
            "density",
            "popularity_histogram",
            "report",
        }:
            table.add_row(key, str(value))
    report = dict(info.get("report") or {})
    for note in report.pop("notes", ()):
        table.add_row("note", str(note))
    for key, value in report.items():
        if value:  # counts of what loading dropped or kept: only those that happened
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    hist = info.get("popularity_histogram")
    if hist:
        h = Table(title="item popularity (interactions per item)")
        h.add_column("bin")
        h.add_column("items", justify="right")
        h.add_column("")
        peak = max(hist["counts"]) or 1
        edges = hist["bins"]
        for i, c in enumerate(hist["counts"]):
            h.add_row(
                f"{edges[i]:g}-{edges[i + 1] - 1:g}",
                f"{c:,}",
                "#" * max(0, round(30 * c / peak)),
            )
        console.print(h)


def _column_map(text: str | None) -> dict[str, str | int] | None:
    """``"user=uid,item=1"`` -> ``{"user": "uid", "item": 1}``."""
    if text is None:
        return None
    from agenticrec.errors import ConfigError

    out: dict[str, str | int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        role, eq, col = part.partition("=")
        if not eq or not role.strip() or not col.strip():
            raise ConfigError(
                f"--columns: expected role=column pairs separated by ',', got {part!r}"
            )
        col = col.strip()
        out[role.strip()] = int(col) if col.isdigit() else col
    return out


@tools_app.command("list")
def tools_list(
    as_json: JsonOpt = False,
    no_plugins: Annotated[
        bool, typer.Option("--no-plugins", help="Skip entry-point plugins.")
    ] = False,
) -> None:
    """Every tool agents can call, with its origin and arguments."""
    from agenticrec.plugins import load_tools

    reg = load_tools(plugins=False if no_plugins else None)
    rows = [
        {
            "name": i.tool.name,
            "origin": i.origin,
            "args": sorted(
                i.tool.args_schema.model_json_schema().get("properties", {})
            ),
            "description": (i.tool.description or "").strip().splitlines()[0],
        }
        for i in reg.infos()
    ]
    if as_json:
        emit_report({"tools": rows}, as_json=True)
        return
    table = Table(title=f"{len(rows)} tools")
    for col in ("name", "origin", "args", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["origin"], ", ".join(r["args"]), r["description"])
    Console().print(table)


@app.command("demo")
def demo(
    data_name: Annotated[
        str, typer.Option("--data", help="Dataset every graph runs on.")
    ] = "ml-latest-small",
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Run every registered graph briefly on one dataset (rule policies unless an
    LLM endpoint is configured). Each result is printed as it finishes, so one
    failing graph never hides the others; the exit code is 1 if any failed."""
    from agenticrec import data
    from agenticrec.context import Context
    from agenticrec.graphspec import load_graphs
    from agenticrec.plugins import load_tools
    from agenticrec.runner import run

    ctx = Context(seed=seed)
    policy = "llm" if ctx.llm_configured else "rule (no LLM endpoint configured)"
    stderr.print(f"[bold]agenticrec demo[/] on {data_name!r}; policy: {policy}")
    ds = data.load(data_name)
    report: dict = {
        "data": {
            k: v
            for k, v in ds.info().items()
            if k in ("users", "items", "interactions", "catalog_items")
        },
        "tools": [t.name for t in load_tools().tools()],
        "graphs": {},
    }
    failed = []
    console = Console()
    for name, spec in load_graphs().items():
        stderr.rule(f"graph: {name}")
        if spec.requires is not None:
            report["graphs"][name] = {"summary": f"skipped: needs {spec.requires}"}
            if not as_json:
                console.print(f"[bold]{name}[/]: skipped (needs {spec.requires})")
            continue
        try:
            ctx = spec.context(data=data_name, seed=seed, **dict(spec.demo))
            rep = run(spec, ctx)
            found = {"summary": rep.summary(), "report": rep.model_dump(mode="json")}
        except AgenticRecError as exc:
            failed.append(name)
            found = {"summary": f"failed: {exc}", "error": str(exc)}
        report["graphs"][name] = found
        if not as_json:
            from rich.markup import escape

            console.print(
                f"[bold]{name}[/]: {escape(found['summary'])}", highlight=False
            )
    if as_json:
        emit_report(report, as_json=True)
    if failed:
        stderr.print(f"[bold red]demo:[/] {', '.join(failed)} failed")
        raise typer.Exit(1)


@app.command("replay")
def replay(
    path: Annotated[Path, typer.Argument(help="Trajectory JSONL file.")],
    as_json: JsonOpt = False,
) -> None:
    """Re-execute every recorded tool call and report results that differ."""
    from agenticrec.replay import replay_file

    report = replay_file(path)
    emit_report(report.as_dict(), as_json=as_json, title=f"replay {path}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="Trajectory JSONL file.")],
    fmt: Annotated[
        str, typer.Option("--format", help="sft | openai | grpo | star | student")
    ] = "sft",
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("export"),
    keep: Annotated[
        str | None, typer.Option("--keep", help="Outcome filter, e.g. hit@10.")
    ] = None,
    skip_unreplayable: Annotated[
        bool,
        typer.Option(
            "--skip-unreplayable",
            help="Skip (and count) runs that do not replay instead of refusing.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export trajectories as distillation data (SFT, OpenAI, GRPO, STAR).
    Every run must replay first; model-written text is neutralised."""
    from agenticrec.export import export_file

    summary = export_file(
        path, out, fmt, keep=keep, skip_unreplayable=skip_unreplayable
    )
    emit_report(summary, as_json=as_json, title="export")


distill_app = typer.Typer(
    help="Distil teacher trajectories into a one-pass student (agenticrec[distill]).",
    no_args_is_help=True,
)
app.add_typer(distill_app, name="distill")
_DataArg = Annotated[
    Path, typer.Argument(help="Student rows: agenticrec export --format student.")
]
_OutOpt = Annotated[Path, typer.Option("--out", help="Folder of the student.")]
_SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed, 0.. .", min=0)]
_ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="Continue from the newest checkpoint in --out."),
]


@distill_app.command("sft")
def distill_sft(
    data: _DataArg,
    out: _OutOpt = Path("student-sft"),
    base: Annotated[
        str, typer.Option("--base", help="tiny | smollm2 | a model folder.")
    ] = "tiny",
    steps: Annotated[int, typer.Option("--steps", help="1..10^6.")] = 100,
    batch: Annotated[int, typer.Option("--batch", help="Rows per step, 1..1024.")] = 2,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate, (0, 1].")] = 5e-4,
    max_length: Annotated[
        int, typer.Option("--max-length", help="Tokens per row, 64..131072.")
    ] = 4096,
    save_steps: Annotated[
        int, typer.Option("--save-steps", help="Checkpoint every N steps, 1..10^6.")
    ] = 50,
    seed: _SeedOpt = 0,
    resume: _ResumeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Supervised fine-tuning of a student on the teacher's chains (TRL)."""
    from agenticrec import distill

    card = distill.sft(
        data,
        out,
        base=base,
        steps=steps,
        batch=batch,
        lr=lr,
        max_length=max_length,
        save_steps=save_steps,
        seed=seed,
        resume=resume,
    )
    emit_report(card.model_dump(), as_json=as_json, title=f"student {out}")


@distill_app.command("grpo")
def distill_grpo(
    data: _DataArg,
    model: Annotated[
        Path, typer.Option("--model", help="The student to start from (e.g. SFT's).")
    ],
    out: _OutOpt = Path("student-grpo"),
    steps: Annotated[int, typer.Option("--steps", help="1..10^6.")] = 50,
    batch: Annotated[
        int, typer.Option("--batch", help="Prompts per step, 1..256.")
    ] = 1,
    generations: Annotated[
        int, typer.Option("--generations", help="Completions per prompt, 2..64.")
    ] = 4,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate, (0, 1].")] = 1e-5,
    max_completion_length: Annotated[
        int, typer.Option("--max-completion-length", help="Tokens, 8..32768.")
    ] = 512,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Sampling, (0, 5].")
    ] = 1.0,
    save_steps: Annotated[
        int, typer.Option("--save-steps", help="Checkpoint every N steps, 1..10^6.")
    ] = 25,
    seed: _SeedOpt = 0,
    resume: _ResumeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """GRPO of a student with the export's reward (format + rank of the
    held-out item), on TRL."""
    from agenticrec import distill

    card = distill.grpo(
        data,
        out,
        model=model,
        steps=steps,
        batch=batch,
        generations=generations,
        lr=lr,
        max_completion_length=max_completion_length,
        temperature=temperature,
        save_steps=save_steps,
        seed=seed,
        resume=resume,
    )
    emit_report(card.model_dump(), as_json=as_json, title=f"student {out}")


agents_app = typer.Typer(help="Inspect declared agents.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


@agents_app.command("list")
def agents_list(as_json: JsonOpt = False) -> None:
    """Every declared agent: loop, evaluation, decision space, reward."""
    from agenticrec.agents import agents

    _register_graphs()
    rows = [
        {
            "name": a.name,
            "kind": a.kind,
            "inputs": list(a.inputs),
            "outputs": list(a.outputs),
            "reward": a.reward,
            "evolution": a.evolution,
            "decision_space": sorted(a.space().get("properties", {})),
            "description": a.description,
        }
        for a in sorted(agents().values(), key=lambda a: a.name)
    ]
    if as_json:
        emit_report({"agents": rows}, as_json=True)
        return
    table = Table(title=f"{len(rows)} agents")
    for col in ("name", "kind", "reward", "evolution", "loop", "decision space"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["reward"],
            r["evolution"],
            f"{', '.join(r['inputs'])} -> {', '.join(r['outputs'])}",
            ", ".join(r["decision_space"]),
        )
    Console().print(table)


graphs_app = typer.Typer(help="Inspect registered graphs.", no_args_is_help=True)
app.add_typer(graphs_app, name="graphs")


@graphs_app.command("list")
def graphs_list(as_json: JsonOpt = False) -> None:
    """Every registered graph (entry-point group ``agenticrec.graphs``)."""
    from agenticrec.graphspec import load_graphs

    rows = [
        {"name": s.name, "module": s.module, "description": s.description}
        for s in load_graphs().values()
    ]
    if as_json:
        emit_report({"graphs": rows}, as_json=True)
        return
    table = Table(title=f"{len(rows)} graphs")
    for col in ("name", "module", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["module"], r["description"])
    Console().print(table)


@graphs_app.command("langgraph-json")
def graphs_langgraph_json(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """A ``langgraph.json`` naming every registered graph (plugins included),
    by the installed file of each graph module, for ``langgraph dev``."""
    import importlib
    import json

    from agenticrec._io import atomic_write_text
    from agenticrec.graphspec import load_graphs

    graphs = {
        s.name: f"{importlib.import_module(s.module).__file__}:graph"
        for s in load_graphs().values()
    }
    text = json.dumps({"dependencies": ["."], "graphs": graphs}, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)


eval_app = typer.Typer(
    help="Evaluation and benchmark scripts (agenticrec.evals).", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")

EVALS_PACKAGE = "agenticrec.evals"
"""Where ``agenticrec eval`` finds its scripts: every public module of this
package that defines ``main(argv)``. Named by string: the kernel never imports
the evals layer statically (tests/test_layers.py)."""


def find_evals() -> dict[str, str]:
    """``{name: first docstring line}`` of every eval script, read from source
    (nothing is imported: evals pull in JAX, pymoo, Optuna...)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(EVALS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return {}
    out: dict[str, str] = {}
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).glob("*.py")):
            if path.name.startswith("_") or path.stem in out:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(
                isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body
            ):
                doc = (ast.get_docstring(tree) or "").strip().split("\n\n")[0]
                out[path.stem] = " ".join(doc.split())
    return out


@eval_app.command("list")
def eval_list(as_json: JsonOpt = False) -> None:
    """Every eval script; run one with ``agenticrec eval NAME [ARGS]``."""
    rows = [{"name": k, "description": v} for k, v in find_evals().items()]
    if as_json:
        emit_report({"evals": rows}, as_json=True)
        return
    table = Table(title=f"{len(rows)} evals (agenticrec eval NAME --help)")
    for col in ("name", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["description"])
    Console().print(table)


def _eval_command(name: str, description: str):
    def command(ctx: typer.Context) -> None:
        import importlib

        module = importlib.import_module(f"{EVALS_PACKAGE}.{name}")
        argv0, sys.argv[0] = sys.argv[0], f"agenticrec eval {name}"  # argparse prog
        try:
            rc = module.main(list(ctx.args))
        finally:
            sys.argv[0] = argv0
        raise typer.Exit(rc if isinstance(rc, int) else 0)

    command.__name__ = f"eval_{name}"
    return command


def _register_evals() -> None:
    for name, description in find_evals().items():
        if name == "list":
            continue
        eval_app.command(
            name,
            help=f"{description} Arguments go to the script (see its --help).",
            context_settings={
                "allow_extra_args": True,
                "ignore_unknown_options": True,
                "help_option_names": [],
            },
            add_help_option=False,
        )(_eval_command(name, description))


_REGISTERED = False


def _register_graphs() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    _REGISTERED = True
    from agenticrec.runner import register_commands

    register_commands(run_app)
    _register_evals()


def main() -> None:
    """Console entry point. Project errors (bad settings, files, checkpoints)
    become one line and exit 2; any other failure one line and exit 1
    (``AGENTICREC_DEBUG=1`` shows its traceback)."""
    from typer._click import exceptions as click  # typer vendors click

    from agenticrec.runner import debug

    try:
        _register_graphs()
        rc = app(standalone_mode=False)
        raise SystemExit(rc or 0)
    except click.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(2) from None
    except click.UsageError as exc:  # wrong type, unknown option: one line
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        _say("error", where + exc.format_message())
        raise SystemExit(2) from None
    except typer.Abort:
        stderr.print("aborted")
        raise SystemExit(1) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except AgenticRecError as exc:
        _say("error", str(exc))
        raise SystemExit(2) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the one place runtime failures end
        if debug():
            raise
        _say("failed", f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None


def _say(label: str, text: str) -> None:
    """One line on stderr; the text is data (escaped, never rich markup)."""
    from rich.markup import escape

    line = " ".join(text.split())
    stderr.print(
        f"[bold red]{label}:[/] {escape(line)}", highlight=False, soft_wrap=True
    )


if __name__ == "__main__":
    main()
