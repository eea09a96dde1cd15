"""FAISS indexes over unit vectors (inner product = cosine), and their safe search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexStoreError


def build_faiss(vectors: np.ndarray, dim: int, kind: str = "flat") -> Any:
    """An inner-product FAISS index holding `vectors` (n, dim) in row order."""
    import faiss

    if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dim):
        raise IndexStoreError(f"vectors have shape {vectors.shape}, expected (n, {dim})")
    if kind != "flat":
        raise IndexStoreError(f"unknown FAISS index kind {kind!r}; use 'flat'")
    index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) per query. FAISS pads with id -1 when k exceeds the index size;
    those are cut here so that -1 can never index a Python list from the end."""
    total = int(index.ntotal)
    k = min(k, total)
    if k <= 0:
        empty = np.zeros((len(queries), 0))
        return empty.astype(np.float32), empty.astype(np.int64)
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    if (ids < 0).any():
        keep = (ids >= 0).all(axis=0)
        scores, ids = scores[:, keep], ids[:, keep]
    return scores, ids


def write_faiss(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read_faiss(path: Path) -> Any:
    import faiss

    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:  # FAISS reports truncation and bad headers as RuntimeError
        raise IndexStoreError(f"{path} is not a readable FAISS index ({str(exc).splitlines()[0][:200]})") from exc


def faiss_version() -> str:
    import faiss

    return str(getattr(faiss, "__version__", "unknown"))
