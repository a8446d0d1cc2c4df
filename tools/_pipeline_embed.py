"""Item text embeddings for the content channel and the diversity metrics.

Default source, ``"lsa"``: TF-IDF over the catalog's own text followed by a
truncated SVD (latent semantic analysis). Why not the MiniLM model the Skillhub
uses: on this project's reference CPU (2 cores) MiniLM needs ~70 ms per item,
about ten minutes for the 9,742 items of ml-latest-small, while LSA takes well
under a second, needs no model files, and on MovieLens the text is mostly
genre and tag vocabulary that TF-IDF captures directly (LSA neighbours of
*Toy Story*: *Toy Story 2*, *Antz*, *Monsters, Inc.*). ``"minilm"`` is
available where the model is installed (see
:class:`agenticrec.embedding.MiniLMEmbedding`); it is cached on disk and falls
back to LSA, with a warning, when the model files are missing.

The LSA features of an item are: words of its title (release year removed),
each category as one token, each tag as one token plus its words, and the
release decade. Term frequencies are sublinear (``1 + log tf``), weighted by
smooth IDF, rows L2-normalised; the SVD is a seeded randomized SVD
(Halko et al., 16 oversamples, 2 power iterations), so equal catalogs give
equal embeddings.

Every source returns unit rows rounded to multiples of ``2**-10`` (zero rows
for items without any text). The rounding makes every dot product of two
embeddings exact in float32 whatever the summation order, so the jitted
kernel and the numpy reference compute identical similarities.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

from agenticrec.data import Dataset, cache_dir
from agenticrec.errors import AgenticRecError, ConfigError

__all__ = ["EmbeddingSource", "item_embeddings", "item_texts", "quantize"]

EmbeddingSource = Literal["lsa", "minilm"]
QUANTUM = 2.0**-10
_TOKEN = re.compile(r"[a-z0-9]+")
_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")


def quantize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows, round to multiples of ``2**-10``: ``f32[n, d]``.

    Products of two such numbers need at most 22 significant bits and their
    partial sums stay below 2 in magnitude, so float32 dot products of these
    rows are exact in any order.
    """
    v = np.asarray(vectors, np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.where(norm > 0, v / np.where(norm > 0, norm, 1.0), 0.0)
    return (np.round(v / QUANTUM) * QUANTUM).astype(np.float32)


def item_texts(dataset: Dataset) -> list[str]:
    """One text per item: ``"title. Genres: a, b. Tags: t1, t2"``."""
    out = []
    for title, cats, text in zip(
        dataset.titles, dataset.categories, dataset.text, strict=True
    ):
        parts = [title] if title else []
        if cats:
            parts.append("Genres: " + ", ".join(cats))
        if text:
            parts.append("Tags: " + text)
        out.append(". ".join(parts))
    return out


def _features(dataset: Dataset) -> sp.csr_matrix:
    """TF-IDF rows (L2-normalised) of the LSA features of each item."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i in range(dataset.n_items):
        counts: dict[str, int] = {}
        title = _YEAR.sub("", dataset.titles[i]).lower()
        for w in _TOKEN.findall(title):
            counts["t:" + w] = counts.get("t:" + w, 0) + 1
        for c in dataset.categories[i]:
            counts["c:" + c.lower()] = 1
        for tag in dataset.text[i].split(","):
            tag = tag.strip().lower()
            if tag:
                counts["k:" + tag] = counts.get("k:" + tag, 0) + 1
            for w in _TOKEN.findall(tag):
                counts["w:" + w] = counts.get("w:" + w, 0) + 1
        year = int(dataset.release_year[i])
        if year > 0:
            counts[f"y:{year // 10 * 10}"] = 1
        for key in sorted(counts):
            rows.append(i)
            cols.append(vocab.setdefault(key, len(vocab)))
            vals.append(1.0 + np.log(counts[key]))
    m = sp.csr_matrix(
        (np.asarray(vals), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(dataset.n_items, max(len(vocab), 1)),
    )
    df = np.bincount(m.indices, minlength=m.shape[1])
    m = m @ sp.diags(np.log((1.0 + m.shape[0]) / (1.0 + df)) + 1.0)
    norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.csr_matrix(
        sp.diags(np.where(norm > 0, 1.0 / np.maximum(norm, 1e-300), 0)) @ m
    )


def _orthonormal(y: np.ndarray, passes: int = 1) -> np.ndarray:
    """Orthonormal basis of the columns of a tall ``y`` by Cholesky QR.

    Written with ``einsum`` (numpy's own loops) rather than LAPACK QR: on a
    busy shared CPU, multi-threaded BLAS on tall-skinny matrices can take
    seconds instead of milliseconds.
    """
    for _ in range(passes):
        gram = np.einsum("ik,il->kl", y, y)
        gram[np.diag_indices_from(gram)] += 1e-12 * np.trace(gram) + 1e-300
        r = np.linalg.cholesky(gram).T
        y = np.einsum("ik,kl->il", y, np.linalg.inv(r))
    return y


def _randomized_svd(
    m: sp.csr_matrix, dim: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors and values of the top ``dim`` components
    (randomized range finder, 16 oversamples, 2 power iterations)."""
    n, v = m.shape
    k = min(dim + 16, n, v)
    rng = np.random.default_rng(seed)
    q = _orthonormal(m @ rng.standard_normal((v, k)), passes=2)
    for _ in range(2):
        q = _orthonormal(m @ _orthonormal(m.T @ q))
    q = _orthonormal(q)
    b = np.asarray(m.T @ q)  # [v, k]: the projected matrix, transposed
    evals, evecs = np.linalg.eigh(np.einsum("ik,il->kl", b, b))
    order = np.argsort(-evals, kind="stable")[:dim]
    s = np.sqrt(np.maximum(evals[order], 0.0))
    u = np.einsum("ik,kl->il", q, evecs[:, order])
    # Sign convention: each component's largest entry is positive.
    flip = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    return u * np.where(flip == 0, 1.0, flip), s


def _lsa(dataset: Dataset, dim: int, seed: int) -> np.ndarray:
    m = _features(dataset)
    dim = min(dim, *m.shape)
    u, s = _randomized_svd(m, dim, seed)
    return quantize(u * s)


def _minilm(dataset: Dataset, cache: bool) -> np.ndarray:
    texts = item_texts(dataset)
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:24]
    path = cache_dir() / "embeddings" / f"minilm-{digest}.npz"
    if cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                if str(npz["key"]) == digest:
                    return npz["vectors"]
        except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt
            pass
    from agenticrec.embedding import MiniLMEmbedding

    vectors = quantize(np.asarray(MiniLMEmbedding(batch_size=64)(texts)))
    vectors[[not t for t in texts]] = 0.0
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, key=np.str_(digest), vectors=vectors)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return vectors


def item_embeddings(
    dataset: Dataset,
    source: EmbeddingSource = "lsa",
    *,
    dim: int = 64,
    seed: int = 0,
    cache: bool = True,
) -> np.ndarray:
    """Deterministic text embeddings of every catalog item.

    Args:
        dataset: the catalog (titles, categories, text, release years) is read.
        source: ``"lsa"`` (default; TF-IDF + randomized SVD) or ``"minilm"``
            (all-MiniLM-L6-v2, 384-d; cached as ``.npz`` under
            ``cache_dir()/embeddings``, keyed by a hash of the item texts and
            written atomically; LSA with a warning if the model is missing).
        dim: LSA components.
        seed: seed of the randomized SVD.
        cache: read and write the MiniLM cache.

    Returns:
        ``f32[n_items, d]`` unit rows on the ``2**-10`` grid (see `quantize`),
        zero rows for items without text.
    """
    if source == "lsa":
        return _lsa(dataset, dim, seed)
    if source == "minilm":
        try:
            return _minilm(dataset, cache)
        except (AgenticRecError, ImportError) as exc:
            warnings.warn(
                f"MiniLM item embeddings unavailable ({exc}); using LSA instead",
                RuntimeWarning,
                stacklevel=2,
            )
            return _lsa(dataset, dim, seed)
    raise ConfigError(f"embedding source must be 'lsa' or 'minilm', got {source!r}")
