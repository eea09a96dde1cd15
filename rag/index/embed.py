"""Embedding the planned documents: texts of many documents per model call (large batches, resumable
at this grain through the vector cache), one document that cannot be embedded skipped with its
reason, unchanged documents taking their vectors from the index being replaced."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import RagError
from ..records import Skipped
from ..text.chunks import ChunkSettings
from .reader import IndexReader
from .targets import Target
from .vector_cache import DocumentVectors, VectorCache

from .plan import Planned, Progress, no_progress, skip

log = logging.getLogger(__name__)

ROUND_TEXTS = 512  # texts per model call across documents: large batches, and resumable at this grain


def _split_vectors(vectors: np.ndarray, item: Planned) -> DocumentVectors:
    p, s, c, _ = item.counts
    return DocumentVectors(vectors[:p], vectors[p : p + s], vectors[p + s : p + s + c], vectors[p + s + c :])


def _rounds(items: list[Planned]) -> Iterator[list[Planned]]:
    batch: list[Planned] = []
    size = 0
    for item in items:
        batch.append(item)
        size += sum(item.counts)
        if size >= ROUND_TEXTS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _encode_together(embedder: Any, batch: list[Planned]) -> dict[str, DocumentVectors]:
    texts = [t for item in batch for t in item.texts()]
    # A one-sentence passage is also its sentence: each distinct text goes to the model once.
    unique = list(dict.fromkeys(texts))
    row = {text: number for number, text in enumerate(unique)}
    vectors = embedder.encode_passages(unique)[[row[text] for text in texts]]
    out, start = {}, 0
    for item in batch:
        size = sum(item.counts)
        out[item.key] = _split_vectors(vectors[start : start + size], item)
        start += size
    return out


def _encode_round(embedder: Any, batch: list[Planned], skipped: list[Skipped]) -> dict[str, DocumentVectors]:
    """One model call for the whole round; if it fails, each document alone, skipping those that fail.

    A RagError (the model cannot load) is nobody's document's fault and stops the build;
    so does a round where every document fails (the vectors of earlier rounds are kept).
    """
    try:
        return _encode_together(embedder, batch)
    except RagError:
        raise
    except Exception as exc:
        first_error = exc
    if len(batch) == 1:
        _skip_unembeddable(skipped, batch[0], first_error)
        return {}
    out: dict[str, DocumentVectors] = {}
    for item in batch:
        try:
            out.update(_encode_together(embedder, [item]))
        except RagError:
            raise
        except Exception as exc:
            _skip_unembeddable(skipped, item, exc)
    if not out:
        raise RagError(f"the embedding model failed on all {len(batch)} documents of a batch "
                       f"({type(first_error).__name__}: {first_error})") from first_error
    return out


def _skip_unembeddable(skipped: list[Skipped], item: Planned, exc: Exception) -> None:
    skip(skipped, item.split.document.source, f"could not be embedded ({type(exc).__name__}: {exc})")


def embed_documents(planned: list[Planned], embedder: Any, index_dir: Path, chunking: ChunkSettings,
                    skipped: list[Skipped], target: Target, progress: Progress = no_progress,
                    served: IndexReader | None = None) -> tuple[list[tuple[Planned, DocumentVectors]], dict[str, int]]:
    """Vectors for every document: reused from the served index, resumed from the cache
    (in `index_dir`), or embedded in large rounds."""
    reusable = target.reusable_vectors(embedder.model_id, chunking.as_dict(), served)
    cache = VectorCache(index_dir)
    found: dict[str, DocumentVectors] = {}
    counts = {"reused": 0, "resumed": 0, "embedded": 0, "texts": 0}
    pending = []
    for item in planned:
        doc = item.split.document
        vectors = reusable.get(f"{doc.doc_id}:{doc.source}")
        if vectors is not None and vectors.counts() == item.counts:
            found[item.key], counts["reused"] = vectors, counts["reused"] + 1
            continue
        vectors = cache.get(item.key, item.counts, embedder.dim)
        if vectors is not None:
            found[item.key], counts["resumed"] = vectors, counts["resumed"] + 1
            continue
        pending.append(item)
    if counts["resumed"]:
        log.info("resuming an interrupted build: %d documents' vectors were already computed", counts["resumed"])
    total_texts = sum(sum(item.counts) for item in pending)
    done = 0
    progress("embedding", 0, total_texts)
    for batch in _rounds(pending):
        for key, vectors in _encode_round(embedder, batch, skipped).items():
            cache.put(key, vectors)
            found[key] = vectors
            counts["embedded"] += 1
        done += sum(sum(item.counts) for item in batch)
        counts["texts"] += len({t for item in batch for t in item.texts()})  # what the model was given
        progress("embedding", done, total_texts)
    return [(item, found[item.key]) for item in planned if item.key in found], counts
