"""An index version as answering reads it: the `IndexReader` interface (a folder's `Index` here, a
Milvus version in `milvus.read`), the in-memory `Index`, and what a question may derive once per
open version (`per_index`)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..records import Document, Passage, Sentence
from .dense import search
from .lexical import LexicalIndex, TermScores

log = logging.getLogger(__name__)


def documents_by_year(documents: dict[str, Document]) -> dict[int, list[int]]:
    """Document numbers (positions in the mapping's order) by the year each document is about."""
    years: dict[int, list[int]] = {}
    for number, document in enumerate(documents.values()):
        if document.year is not None:
            years.setdefault(document.year, []).append(number)
    return years


class ManifestFacts:
    """What every store's version reads alike from its manifest and its documents (`Index` here,
    `milvus.read.MilvusIndex`). The derived lookups are computed once, on first use: cached_property
    writes the instance dict directly, so a frozen dataclass stays frozen for everything else."""

    manifest: dict[str, Any]
    documents: dict[str, Document]

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    @cached_property
    def doc_ids(self) -> tuple[str, ...]:
        return tuple(self.documents)

    @cached_property
    def docs_of_year(self) -> dict[int, list[int]]:
        """Document numbers by the year each document is about."""
        return documents_by_year(self.documents)

    @cached_property
    def doc_languages(self) -> np.ndarray:
        """Language of every document, in `doc_ids` order (its words are stemmed in it)."""
        return np.array([self.documents[d].language for d in self.doc_ids], dtype=object)


class IndexReader(Protocol):
    """What answering reads from an index, by batches of ids; `Index` (FAISS files) and
    `milvus.MilvusIndex` both provide it. A reader is one immutable version."""

    store: str
    manifest: dict[str, Any]
    documents: dict[str, Document]  # metadata; the text comes from document_text()
    note: str  # "" unless this is not the version the store names as current (that one is damaged)

    @property
    def doc_ids(self) -> tuple[str, ...]: ...
    @property
    def docs_of_year(self) -> dict[int, list[int]]: ...
    @property
    def doc_languages(self) -> np.ndarray: ...
    @property
    def model_id(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def sentence_count(self) -> int: ...
    @property
    def passage_count(self) -> int: ...
    def prepare(self) -> None: ...
    def current(self) -> "IndexReader": ...
    def passage_ids_of(self, doc_id: str) -> tuple[int, ...]: ...
    def search_passages(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def sentences_by_id(self, ids: Sequence[int]) -> list[Sentence]: ...
    def passages_by_id(self, ids: Sequence[int]) -> list[Passage]: ...
    def sentence_vectors_of(self, ids: Sequence[int]) -> np.ndarray: ...
    def passage_similarity(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray: ...
    def sentence_similarity(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray: ...
    def lexical(self, unit: str, terms: Sequence[str]) -> Any: ...
    def term_documents(self, term: str) -> np.ndarray: ...
    def knows(self, term: str) -> bool: ...
    def own_frequency(self, terms: Sequence[str]) -> dict[str, int]: ...
    def document_text(self, doc_id: str) -> str: ...
    def title_similarity(self, query: np.ndarray) -> np.ndarray: ...
    @property
    def titled(self) -> np.ndarray: ...
    title_vectors: np.ndarray


@dataclass(frozen=True)
class Index(ManifestFacts):
    """One loaded, immutable index version."""

    folder: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    passages: tuple[Passage, ...]
    sentences: tuple[Sentence, ...]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    passage_faiss: Any
    passage_bm25: LexicalIndex
    sentence_bm25: LexicalIndex
    clause_vectors: np.ndarray
    clause_sentence: np.ndarray  # clause row → sentence id, ascending
    title_vectors: np.ndarray  # one row per document, in `doc_ids` order (zeros where it states no title)
    doc_passages: dict[str, tuple[int, ...]] = field(default_factory=dict)
    heading_terms: dict[str, int] | None = None  # text.document.heading_terms; None: not recorded
    note: str = ""  # set when this is not the version CURRENT names (that one is damaged)

    @cached_property
    def sentence_doc(self) -> np.ndarray:
        """Document number (position in `doc_ids`) of every sentence."""
        code = {doc_id: n for n, doc_id in enumerate(self.doc_ids)}
        return np.fromiter((code[s.doc_id] for s in self.sentences), dtype=np.int32, count=len(self.sentences))

    # ------------------------------------------------ what answering reads (rag.index.milvus.MilvusIndex too)
    # Every read goes through these methods, by batches of ids: the Milvus store answers
    # them with one request each, this one from arrays in memory.

    store = "faiss"

    @property
    def sentence_count(self) -> int:
        return len(self.sentences)

    @property
    def passage_count(self) -> int:
        return len(self.passages)

    def prepare(self) -> None:
        """Build the derived lookups now, so that no question pays for them."""
        self.sentence_doc
        self.docs_of_year
        self.doc_languages
        self.titled

    def current(self) -> "Index":
        """The version to answer from: a loaded folder never changes (a rebuild makes a new Index)."""
        return self

    def passage_ids_of(self, doc_id: str) -> tuple[int, ...]:
        """A document's passages, in reading order."""
        return self.doc_passages.get(doc_id, ())

    def search_passages(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k passages closest to the (unit) query vector: (cosines, passage ids), best first."""
        scores, ids = search(self.passage_faiss, query.reshape(1, -1), k)
        return scores[0], ids[0]

    def sentences_by_id(self, ids: Sequence[int]) -> list[Sentence]:
        return [self.sentences[int(i)] for i in ids]

    def passages_by_id(self, ids: Sequence[int]) -> list[Passage]:
        return [self.passages[int(i)] for i in ids]

    def sentence_vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        return np.asarray(self.sentence_vectors[np.asarray(ids, dtype=np.int64)], dtype=np.float32)

    def passage_similarity(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        return np.asarray(self.passage_vectors[ids] @ query, dtype=np.float32)

    def sentence_similarity(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Cosine of each sentence with the question, or of its best clause when that is higher:
        a long sentence's vector blurs its parts, a question may match one clause."""
        if len(ids) == 0:
            return np.zeros(0, dtype=np.float32)
        scores = np.asarray(self.sentence_vectors[ids] @ query, dtype=np.float32)
        owners = self.clause_sentence
        if len(owners):
            lo = np.searchsorted(owners, ids, side="left")
            hi = np.searchsorted(owners, ids, side="right")
            counts = hi - lo
            total = int(counts.sum())
            if total:
                which = np.repeat(np.arange(len(ids)), counts)
                rows = np.repeat(lo, counts) + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
                clause = np.asarray(self.clause_vectors[rows] @ query, dtype=np.float32)
                np.maximum.at(scores, which, clause)
        return scores

    def lexical(self, unit: str, terms: Sequence[str]) -> TermScores:
        """BM25 of `terms` over the sentences or the passages (`unit`)."""
        return TermScores(self.sentence_bm25 if unit == "sentences" else self.passage_bm25, list(terms))

    def term_documents(self, term: str) -> np.ndarray:
        """Numbers (positions in `doc_ids`) of the documents with a sentence holding `term`."""
        rows = self.sentence_bm25.postings(term)
        return np.flatnonzero(np.bincount(self.sentence_doc[rows], minlength=len(self.doc_ids)))

    def knows(self, term: str) -> bool:
        """Whether any sentence holds `term`."""
        return self.sentence_bm25.knows(term)

    def own_frequency(self, terms: Sequence[str]) -> dict[str, int]:
        """How many sentences hold each term in their own words (BM25 finds a sentence by its section
        heading's words too)."""
        return {t: self.sentence_bm25.frequency(t) - self._heading_terms.get(t, 0) for t in terms}

    @cached_property
    def _heading_terms(self) -> dict[str, int]:
        if self.heading_terms is not None:
            return self.heading_terms
        from ..text.document import heading_terms  # a version built before they were recorded

        return heading_terms(self.documents, self.sentences)

    def document_text(self, doc_id: str) -> str:
        return self.documents[doc_id].text

    def title_similarity(self, query: np.ndarray) -> np.ndarray:
        """Cosine of the question with each document's stated title, in `doc_ids` order (0 where none)."""
        return np.asarray(self.title_vectors @ query, dtype=np.float32)

    @cached_property
    def titled(self) -> np.ndarray:
        """Whether each document (in `doc_ids` order) states a title of its own."""
        return np.array([self.documents[d].title_stated for d in self.doc_ids], dtype=bool)

    @cached_property
    def sentence_sample(self) -> np.ndarray:
        """Vectors of up to 2,000 sentences drawn once (fixed seed): the corpus's own score
        distribution for a question, against which its best evidence must stand out."""
        count = len(self.sentences)
        rows = np.sort(np.random.default_rng(0).choice(count, min(count, 2000), replace=False)) if count else []
        return np.ascontiguousarray(self.sentence_vectors[rows], dtype=np.float32) if count \
            else np.zeros((0, self.dim), dtype=np.float32)


_PER_INDEX: dict[tuple[Any, int], tuple[weakref.ref, Any]] = {}


def per_index(key: Any, index: IndexReader, make: Callable[[], Any]) -> Any:
    """What `make()` returns, computed once for as long as `index` stays open: what a question
    derives from the whole collection (title names, sentence languages). A rebuilt collection is
    a new reader, so it is derived again. `key` names what is kept (with the policy it depends on)."""
    slot = (key, id(index))
    cached = _PER_INDEX.get(slot)
    if cached is None or cached[0]() is not index:
        cached = (weakref.ref(index, lambda _, slot=slot: _PER_INDEX.pop(slot, None)), make())
        _PER_INDEX[slot] = cached
    return cached[1]
