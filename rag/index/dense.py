"""FAISS indexes over unit vectors (inner product = cosine), and their safe search."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexStoreError


KINDS = ("flat", "hnsw", "ivf")
# Exact search up to this many vectors; beyond, an approximate index (bench/bench_vectors.py).
FLAT_MAX = 20_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 256
# IVF scans a share of its lists: ~16,000 vectors' worth on small indexes (nearly exact),
# a tenth of them on large ones (recall@10 0.977 at 1M passages, bench/bench_vectors.py).
IVF_SCAN_VECTORS, IVF_MIN_FRACTION = 16_000, 1 / 10


def choose_kind(count: int, override: str | None = None) -> str:
    """The FAISS index kind for `count` vectors: exact while it is fast enough, then IVF
    (inverted lists scanned exactly: recall@10 ≥ 0.95 at 1M, and minutes less to build
    than HNSW on two cores; bench/bench_vectors.py has the figures)."""
    if override:
        if override not in KINDS:
            raise IndexStoreError(f"RAG_FAISS_INDEX={override!r} is not one of {', '.join(KINDS)}")
        return override
    return "flat" if count <= FLAT_MAX else "ivf"


def build_faiss(vectors: np.ndarray, dim: int, kind: str = "flat") -> Any:
    """An inner-product FAISS index holding `vectors` (n, dim) in row order."""
    import faiss

    if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dim):
        raise IndexStoreError(f"vectors have shape {vectors.shape}, expected (n, {dim})")
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building is parallel; queries are not (below)
    if kind == "flat" or len(data) < 1000:
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    elif kind == "ivf":
        lists = int(max(16, min(65536, 4 * np.sqrt(len(data)))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
        sample = data[np.random.default_rng(0).choice(len(data), min(len(data), lists * 64), replace=False)]
        index.train(sample)
    else:
        raise IndexStoreError(f"unknown FAISS index kind {kind!r}; use one of {', '.join(KINDS)}")
    if len(data):
        index.add(data)
    configure_search(index, kind)
    return index


def configure_search(index: Any, kind: str) -> None:
    """Search-time settings, which FAISS does not store in the file.

    One thread: a single question gains nothing from FAISS's OpenMP threads, whose
    spin-waiting after each search steals the cores the embedding model needs next
    (measured: question embedding 23 ms alone, 50 ms after parallel IVF searches).
    """
    import faiss

    faiss.omp_set_num_threads(1)
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif isinstance(index, faiss.IndexIVF):
        fraction = min(1.0, max(IVF_MIN_FRACTION, IVF_SCAN_VECTORS / max(1, index.ntotal)))
        index.nprobe = max(1, int(round(index.nlist * fraction)))


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
        index = faiss.read_index(str(path))
        configure_search(index, "")
        return index
    except RuntimeError as exc:  # FAISS reports truncation and bad headers as RuntimeError
        raise IndexStoreError(f"{path} is not a readable FAISS index ({str(exc).splitlines()[0][:200]})") from exc


def faiss_version() -> str:
    import faiss

    return str(getattr(faiss, "__version__", "unknown"))
