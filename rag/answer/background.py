"""Unrelated everyday text: what evidence must beat to count as an answer.

The vectors are computed once per model and kept in the cache folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def background_sentences() -> tuple[str, ...]:
    text = resources.files("rag.data").joinpath("background.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def background_vectors(embedder: Any, cache_dir: Path) -> np.ndarray:
    """(n, dim) vectors of the background sentences, read from the cache or computed and kept."""
    sentences = list(background_sentences())
    key = hashlib.sha256("\n".join([embedder.model_id, *sentences]).encode()).hexdigest()[:16]
    path = cache_dir / f"background-{key}.npy"
    try:
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == (len(sentences), embedder.dim):
            return vectors
    except (OSError, ValueError):
        pass
    vectors = embedder.encode_passages(sentences)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(temporary, vectors, allow_pickle=False)
        os.replace(temporary, path)
    except OSError as exc:  # a read-only cache only costs the recomputation at the next start
        log.info("background vectors not cached (%s)", exc)
    return vectors
