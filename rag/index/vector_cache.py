"""Vectors computed during a build, kept per document until the build lands.

A build that is interrupted (killed, out of memory, a failing disk) resumes from
here instead of embedding everything again. An entry is addressed by a hash of
the model and of every text embedded for the document, so a change of model,
cleaning or chunking can never bring back stale vectors. Entries are `.npz`
files written atomically and read without pickle; a damaged one is recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

FOLDER = ".vectors"


@dataclass(frozen=True)
class DocumentVectors:
    """The vectors of one document's passages, sentences and clauses, in their order, and of its
    title (one row when the document states one, none otherwise)."""

    passages: np.ndarray
    sentences: np.ndarray
    clauses: np.ndarray
    titles: np.ndarray

    def counts(self) -> tuple[int, int, int, int]:
        return len(self.passages), len(self.sentences), len(self.clauses), len(self.titles)

    def parts(self) -> tuple[np.ndarray, ...]:
        return self.passages, self.sentences, self.clauses, self.titles


def entry_key(model_id: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(model_id.encode("utf-8"))
    for text in texts:
        digest.update(b"\0" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


class VectorCache:
    """`index_dir/.vectors/<key>.npz`: one entry per embedded document."""

    def __init__(self, index_dir: Path) -> None:
        self.folder = index_dir / FOLDER

    def get(self, key: str, counts: tuple[int, ...], dim: int) -> DocumentVectors | None:
        path = self.folder / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                vectors = DocumentVectors(data["passages"], data["sentences"], data["clauses"], data["titles"])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cached vectors %s are unreadable (%s); computing them again", path.name, exc)
            return None
        if vectors.counts() != counts or any(v.ndim != 2 or (len(v) and v.shape[1] != dim) for v in vectors.parts()):
            return None
        return vectors

    def put(self, key: str, vectors: DocumentVectors) -> None:
        """Write one entry atomically; a full or read-only disk only costs the resumption."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self.folder / f".{key}.{os.getpid()}.tmp.npz"
            np.savez(temporary, passages=vectors.passages, sentences=vectors.sentences, clauses=vectors.clauses,
                     titles=vectors.titles)
            os.replace(temporary, self.folder / f"{key}.npz")
        except OSError as exc:
            log.warning("could not keep vectors for resuming (%s); the build goes on", exc)

    def clear(self) -> None:
        """Forget every entry: called once a build has landed, its vectors now live in the index."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.npz"))) if self.folder.is_dir() else 0
