"""The question-answering pipeline, end to end: one object shared by the CLI and the UI.

Thread-safe: the embedder serializes model calls, and the current index is an
immutable object swapped in one assignment, so every answer comes wholly from
one index version even while a rebuild runs.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import threading
import time
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .answer import Answer, select
from .build import BuildReport, Progress, build, open_index
from .compose import compose
from .config import Settings
from .errors import QuestionError
from .lexical import analyze, stop_words
from .question import Question, prepare_question
from .retrieve import CAPITALIZED, YEAR, Retrieval, Selectors, named_documents, retrieve, without_words
from .store import Index

QUESTION_WORDS = re.compile(r"^\W*\w+")


@lru_cache(maxsize=1)
def background_sentences() -> tuple[str, ...]:
    text = resources.files("rag.data").joinpath("background.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def unknown_names(index: Index, question: str, language: str) -> tuple[str, ...]:
    """Names (capitalized words past the first) and years in the question that no indexed sentence contains."""
    first = QUESTION_WORDS.match(question)
    body = question[first.end():] if first else question
    unknown = []
    candidates = set(CAPITALIZED.findall(body)) | set(YEAR.findall(question))
    for name in sorted(candidates):
        name = re.sub(r"[’']s$", "", name)
        if len(name) < 3 or name.lower() in stop_words():
            continue
        terms = set(analyze(name, language)) | set(analyze(name, "fr"))
        if terms and not any(index.sentence_bm25.knows(term) for term in terms):
            unknown.append(name)
    return tuple(unknown)


def prepared(index: Index) -> Index:
    """The index with its derived lookups built, so that no question pays for them.

    The index's millions of records live as long as the process: gc.freeze() moves
    them out of the garbage collector's sight, which otherwise walks them all during
    full collections triggered in the middle of answers (+10 ms at 100k passages).
    """
    index.sentence_doc
    index.docs_of_year
    index.doc_languages
    gc.collect()
    gc.freeze()
    return index


def query_views(q: Question, selectors: Selectors) -> list[str]:
    """The texts whose mean embedding stands for the question (one model call, batched).

    A follow-up is the earlier question joined to this one, plus this one alone, so
    that what is asked now weighs more than what was asked before. When names chose
    the documents, the question without them is added: a sentence must match what
    is asked, not merely repeat "Kantar".
    """
    views = [q.query]
    if q.context:
        views.append(q.text)
    if selectors.words:
        focus = without_words(q.query, selectors.words)
        if any(ch.isalnum() for ch in focus):
            views.append(focus)
    return views


class Engine:
    """Ask questions of an index of documents. Builds or updates the index on first use."""

    def __init__(self, settings: Settings | None = None, embedder: Any = None) -> None:
        from .embed import Embedder

        self.settings = settings or Settings.resolve()
        self.embedder = embedder or Embedder(model=self.settings.model, cache_dir=self.settings.cache_dir)
        self._index: Index | None = None
        self._background: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def index(self) -> Index:
        if self._index is None:
            self.open()
        assert self._index is not None
        return self._index

    def open(self, progress: Progress | None = None) -> Index:
        """Load the index, building or updating it from the documents folder when needed."""
        with self._lock:
            if self._index is None:
                self._index = prepared(open_index(self.settings.docs_dir, self.settings.index_dir, self.embedder,
                                                  progress=progress or (lambda stage, fraction: None)))
            return self._index

    def rebuild(self, progress: Progress | None = None) -> BuildReport:
        """Re-index the documents folder (incrementally) and swap the new index in."""
        report = build(self.settings.docs_dir, self.settings.index_dir, self.embedder,
                       progress=progress or (lambda stage, fraction: None))
        self._index = prepared(report.index)  # one assignment: answers in flight keep the old version
        return report

    def background(self) -> np.ndarray:
        """Vectors of the background sentences, cached on disk per model (saves a second per start)."""
        if self._background is None:
            sentences = list(background_sentences())
            key = hashlib.sha256("\n".join([self.embedder.model_id, *sentences]).encode()).hexdigest()[:16]
            path = self.settings.cache_dir / f"background-{key}.npy"
            try:
                vectors = np.load(path, allow_pickle=False)
                if vectors.shape != (len(sentences), self.embedder.dim):
                    raise ValueError("stale background cache")
            except (OSError, ValueError):
                vectors = self.embedder.encode_passages(sentences)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
                    np.save(temporary, vectors, allow_pickle=False)
                    os.replace(temporary, path)
                except OSError:  # a read-only cache only costs the recomputation
                    pass
            self._background = vectors
        return self._background

    def warm_up(self) -> None:
        self.index
        self.background()
        self.ask("Qu'est-ce que Kantar prévoit ?")

    def _retrieve(self, index: Index, q: Question, timings: dict[str, float]) -> tuple[Retrieval, np.ndarray]:
        mark = time.perf_counter()
        # Names and years said in this very turn outrank those of the turn it follows up on.
        selectors = named_documents(index, q.text)
        if not selectors.documents and q.context:
            selectors = named_documents(index, q.context)
        vector = self.embedder.encode_queries(query_views(q, selectors)).mean(axis=0)
        timings["embed"] = (time.perf_counter() - mark) * 1000
        # In a follow-up, the words of this turn ("des partenariats") count twice those of the last one.
        lexical = f"{q.text} {q.query}" if q.context else q.query
        retrieval = retrieve(index, vector, q.query, q.language, selectors, lexical_query=lexical)
        timings.update(retrieval.timings_ms)
        return retrieval, vector

    def retrieve(self, question: str, history: list[str] | None = None) -> Retrieval:
        """The ranked candidates for a question, without choosing or wording an answer (for tuning)."""
        return self._retrieve(self.index, prepare_question(question, history), {})[0]

    def ask(self, question: object, history: list[str] | None = None, threshold: float | None = None) -> Answer:
        """Answer one question (with the earlier questions of the conversation, if any).

        Never raises for a bad question: an empty or oversized one comes back as an
        Answer with `message` set and the model never called.
        """
        started = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            q = prepare_question(question, history)
        except QuestionError as exc:
            text = question if isinstance(question, str) else ""
            return Answer(text[:200], "fr", True, str(exc), (), (), {"total": 0.0}, message=str(exc))
        timings["normalize"] = (time.perf_counter() - started) * 1000
        index = self.index  # one version for the whole answer
        background = self.background()

        retrieval, vector = self._retrieve(index, q, timings)

        mark = time.perf_counter()
        background_max = float((background @ vector).max()) if len(background) else 0.0
        selection = select(index, retrieval, background_max, q.text, unknown_names(index, q.text, q.language),
                           threshold=threshold)
        timings["selection"] = (time.perf_counter() - mark) * 1000

        mark = time.perf_counter()
        answer = compose(index, selection, q.text, q.language)
        timings["formatting"] = (time.perf_counter() - mark) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(answer.question, answer.language, answer.abstained, answer.answer, answer.sentences,
                      answer.citations, timings, answer.support, reason=selection.reason)
