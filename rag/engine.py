"""The question-answering pipeline, end to end: one object shared by the CLI and the UI.

A question goes down one straight line: understand it (`query.understand`), embed its
views, retrieve (`retrieve.hybrid`), select (`answer.select`), word (`answer.compose`).

Thread-safe: the embedder serializes model calls, and the current index is an
immutable object swapped in one assignment, so every answer comes wholly from
one index version even while a rebuild runs.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .answer.background import background_vectors
from .answer.calibration import Calibration, find_calibration
from .answer.compose import compose, refusal
from .policy import DEFAULT, Policies
from .query.understand import Query, language_shares, parse_question, title_names, understand
from .retrieve.hybrid import Retrieval, language_centroids, language_lean, retrieve, sentence_languages
from .answer.select import Selection, compared_documents, judge_vetoed, judged_texts, select, select_comparison
from .config import Settings
from .errors import IndexStoreError, QuestionError
from .index.build import BuildReport, Progress, build, documents_folder, open_index
from .index.reader import IndexReader
from .index.store import load_version, read_pointer
from .ingest.files import Placed, add_files, document_path, replace_file
from .records import Answer

if TYPE_CHECKING:
    from .embedding.judge import Judge

log = logging.getLogger(__name__)


def ready_for_questions(index: IndexReader, policies: Policies = DEFAULT) -> IndexReader:
    """The index with its derived lookups built, so that no question pays for them: the store's
    own, and the collection facts the answer stage reads (the names titles give their documents,
    the share of each language, each language's centroid). Each sentence's language was recorded
    by the build (`Sentence.language`).

    The index's millions of records live as long as the process: gc.freeze() moves
    them out of the garbage collector's sight, which otherwise walks them all during
    full collections triggered in the middle of answers (+10 ms at 100k passages).
    """
    index.prepare()
    title_names(index, policies.question)
    language_shares(index)
    language_centroids(index)
    gc.unfreeze()  # a version replaced since is released: its records may be collected now
    gc.collect()
    gc.freeze()
    return index


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class Engine:
    """Ask questions of an index of documents. Builds or updates the index on first use."""

    def __init__(self, settings: Settings | None = None, embedder: Any = None, policies: Policies = DEFAULT,
                 calibration: Calibration | None = None, judge: Judge | str | None = "settings") -> None:
        self.settings = settings or Settings.resolve()
        self.policies = policies
        if embedder is None:
            from .embedding.embedder import Embedder

            embedder = Embedder(model=self.settings.model, cache_dir=self.settings.cache_dir,
                                adapter=self.settings.embed_adapter)
        self.embedder = embedder
        self._index: IndexReader | None = None
        self._background: np.ndarray | None = None
        self._calibration = calibration  # None: the one measured for the embedder's model
        self._judge = judge  # "settings": the one RAG_JUDGE names, loaded on first use; None: no veto
        self._lock = threading.Lock()
        self._refused: set[str] = set()  # versions landed by another process that could not be served
        self._stop = threading.Event()
        self._rebuilding = threading.Event()
        self._follower: threading.Thread | None = None

    @property
    def index(self) -> IndexReader:
        """The version to answer from now (a Milvus alias may have moved since the last question)."""
        if self._index is None:
            self.open()
        assert self._index is not None
        return self._index.current()

    def open(self, progress: Progress | None = None) -> IndexReader:
        """Load the index, building or updating it from the documents folder when needed.

        An index of another documents folder is refused before the model loads."""
        with self._lock:
            if self._index is None:
                docs_dir = documents_folder(self.settings)
                self.settings = self.settings.replace(docs_dir=docs_dir, docs_named=self.settings.docs_named)
                self.calibration
                judge_loaded = self._load_judge_aside()
                self._index = ready_for_questions(open_index(
                    docs_dir, self.settings.index_dir, self.embedder,
                    progress=progress or _no_progress, settings=self.settings), self.policies)
                judge_loaded()
            return self._index

    def _load_judge_aside(self) -> Callable[[], None]:
        """Start loading the judge beside the index (on a first start, its merge and ONNX export take
        about 12 s; after that, about 0.1 s); returns what waits for it and raises its error: a judge that
        cannot load says so when the engine opens, not at the first answer."""
        if not self.policies.selection.judge_veto or self.judge is None:
            return lambda: None
        failure: list[BaseException] = []

        def load() -> None:
            try:
                self.judge.cut
            except BaseException as exc:  # re-raised in the opening thread
                failure.append(exc)

        loader = threading.Thread(target=load, name="rag-judge-load", daemon=True)
        loader.start()

        def wait() -> None:
            loader.join()
            if failure:
                raise failure[0]

        return wait

    def rebuild(self, progress: Progress | None = None) -> BuildReport:
        """Re-index the documents folder (incrementally) and swap the new index in."""
        return self._rebuild(progress)

    def _rebuild(self, progress: Progress | None, removing: frozenset[str] = frozenset()) -> BuildReport:
        self.open()
        self._rebuilding.set()  # the version it lands is this process's own: the follower need not load it
        try:
            report = build(self.settings.docs_dir, self.settings.index_dir, self.embedder,
                           progress=progress or _no_progress, settings=self.settings, removing=removing)
            self._index = ready_for_questions(report.index, self.policies)  # one assignment: answers in flight keep the old one
        finally:
            self._rebuilding.clear()
        return report

    def remove(self, source: str, progress: Progress | None = None) -> BuildReport:
        """Take the document `source` (as citations name it) out of the collection: a version without
        it is built and swapped in, and only then is its file deleted. A failure leaves all as it was."""
        self.open()
        document_path(self.settings.docs_dir, source)  # a name outside the folder or of no file: one sentence
        return self._rebuild(progress, removing=frozenset({source}))

    def add(self, files: list[tuple[Path, str]], folder: str = "uploads", progress: Progress | None = None
            ) -> tuple[BuildReport, list[Placed]]:
        """Copy `files` (each a path and the name it was given) into the documents folder's `folder`
        under plain, unused names, and re-index. The report's skipped list says which could not be read."""
        self.open()
        placed = add_files(self.settings.docs_dir / folder, files)
        return self._rebuild(progress), placed

    def replace(self, source: str, new_file: Path, progress: Progress | None = None) -> BuildReport:
        """Put `new_file` in place of the document `source` and re-index. A replacement that cannot be
        read is refused before anything changes."""
        self.open()
        replace_file(self.settings.docs_dir, source, new_file, self.settings.max_file_bytes)
        return self._rebuild(progress)

    def follow_versions(self, interval: float = 0.25) -> None:
        """Answer from every version another process lands in the index folder (a CLI `rag build`
        beside the server), checking `CURRENT` every `interval` seconds in a background thread.
        Answers in flight finish on the version they started with. Milvus readers follow their
        alias already (`IndexReader.current`)."""
        if self.settings.store != "faiss" or self._follower is not None:
            return
        self._follower = threading.Thread(target=self._follow, args=(interval,), name="rag-follow", daemon=True)
        self._follower.start()

    def close(self) -> None:
        self._stop.set()

    def _follow(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.pick_up_new_version()
            except Exception:  # the thread must outlive any one bad version
                log.exception("following the index folder failed")

    def pick_up_new_version(self) -> bool:
        """Load the version `CURRENT` names when it is not the one answering; True when swapped in.
        A version that cannot be served (damaged, another model's) is refused once, with its name."""
        served = self._index
        name = read_pointer(self.settings.index_dir).get("current")
        if self._rebuilding.is_set() or served is None or not name or name in self._refused or getattr(served, "folder", None) is None \
                or served.folder.name == name:
            return False
        try:
            new = load_version(self.settings.index_dir / str(name))
            if new.model_id != self.embedder.model_id:
                raise IndexStoreError(f"it was made by {new.model_id}, not {self.embedder.model_id}")
        except IndexStoreError as exc:
            self._refused.add(str(name))
            log.warning("the new index version %s is not served (%s); answering from %s", name, exc, served.folder.name)
            return False
        ready = ready_for_questions(new, self.policies)
        with self._lock:
            if self._index is served:  # not replaced meanwhile by this process's own rebuild
                self._index = ready
        log.info("answering from the new index version %s", name)
        return True

    def background(self) -> np.ndarray:
        if self._background is None:
            self._background = background_vectors(self.embedder, self.settings.cache_dir)
        return self._background

    @property
    def calibration(self) -> Calibration:
        """The abstention threshold measured for this model: shipped, or kept by `rag calibrate`
        (a model with neither is refused with one sentence, before any index is built)."""
        if self._calibration is None:
            self._calibration = find_calibration(self.embedder.model_id, self.settings.cache_dir)
        return self._calibration

    @property
    def judge(self) -> Judge | None:
        """The judge that vetoes answers (embedding/judge.py), or None when RAG_JUDGE=none."""
        if isinstance(self._judge, str):
            from .embedding.judge import resolve_judge, shared_judge

            folder = resolve_judge(self.settings.judge)
            self._judge = None if folder is None else shared_judge(folder, self.settings.cache_dir,
                                                                   self.settings.embed_threads)
        return self._judge

    def _judged(self, selection: Selection, retrieval: Retrieval, query: Query, timings: dict[str, float]
                ) -> Selection:
        """The selection, refused when the judge finds that none of the ranking's top statements answers
        (one the judge has read already, rescuing it, is kept)."""
        policy = self.policies.selection
        if selection.abstained or selection.judged is not None or not policy.judge_veto or query.compare \
                or query.context or self.judge is None:
            return selection
        return judge_vetoed(selection, self._judge_score(retrieval, query, timings), self.judge.cut)

    def _judge_score(self, retrieval: Retrieval, query: Query, timings: dict[str, float]) -> float:
        """The judge's deciding score over the ranking's top statements: the first to reach its cut, else
        the best (all read, the best, with `judge_reads_all`)."""
        mark = time.perf_counter()
        texts = judged_texts(retrieval, self.policies.selection)
        score = self.judge.best(query.query, texts) if self.policies.selection.judge_reads_all \
            else self.judge.first_reaching(query.query, texts, self.judge.cut)
        timings["judge"] = (time.perf_counter() - mark) * 1000
        return score

    def _rescued(self, refused: Selection, index: IndexReader, retrieval: Retrieval, query: Query,
                 background_max: float, timings: dict[str, float]) -> Selection:
        """A refusal that the margin alone made, overturned when the judge's deciding score (the one its veto
        reads) reaches `SelectionPolicy.judge_rescue`; else `refused` as it was."""
        policy = self.policies.selection
        if policy.judge_rescue is None or query.context or self.judge is None:
            return refused
        unrefused = select(index, retrieval, query, background_max, threshold=-np.inf, policy=policy)
        if unrefused.abstained:  # another rule refuses it too
            return refused
        score = self._judge_score(retrieval, query, timings)
        return replace(unrefused, judged=score) if score >= policy.judge_rescue else refused

    def warm_up(self) -> None:
        self.index
        self.calibration
        self.background()
        self.ask("Qu'est-ce que Kantar prévoit ?")

    def _retrieve(self, index: IndexReader, query: Query, timings: dict[str, float]
                  ) -> tuple[Retrieval, np.ndarray, dict[str, float]]:
        """The ranked candidates, the question's vector, and its lean towards each language's centroid."""
        mark = time.perf_counter()
        vector = self.embedder.encode_queries(list(query.views)).mean(axis=0)
        timings["embed"] = (time.perf_counter() - mark) * 1000
        lean = language_lean(index, vector)
        retrieval = retrieve(index, vector, query, self.policies.fusion, language_lean=lean)
        timings.update(retrieval.timings_ms)
        return retrieval, vector, lean

    def retrieve(self, question: str, history: list[str] | None = None) -> Retrieval:
        """The ranked candidates for a question, without choosing or wording an answer (for tuning)."""
        index = self.index
        query = understand(parse_question(question, history, policy=self.policies.question), index, self.policies.question)
        return self._retrieve(index, query, {})[0]

    def support_measures(self, question: str, history: list[str] | None = None) -> dict[str, float]:
        """The measures an abstention could rest on, for one question (bench/abstention_study.py,
        bench/abstention_corpora.py): those of `answer.support`, the best evidence's cosine, and
        whether that evidence is in another language than the question (1.0) or not (0.0)."""
        from .answer.support import support_measures

        index = self.index
        query = understand(parse_question(question, history, policy=self.policies.question), index,
                           self.policies.question)
        retrieval, vector, _ = self._retrieve(index, query, {})
        evidence = max(retrieval.candidates[:3], key=lambda c: c.dense, default=None)
        best = evidence.dense if evidence is not None else 0.0
        across = evidence is not None and sentence_languages(index, [evidence.sentence])[0] != query.language
        return {**support_measures(best, self.background() @ vector, index.sentence_sample @ vector),
                "cosine": best, "across": float(across)}

    def ask(self, question: object, history: list[str] | None = None, threshold: float | None = None) -> Answer:
        """Answer one question (with the earlier questions of the conversation, if any).

        Never raises for a bad question: an empty or oversized one comes back as an
        Answer with `message` set and the model never called. `threshold` replaces the
        model's calibrated margin (calibration itself asks with -1: abstention off).
        """
        return self.ask_with_index(question, history, threshold)[0]

    def ask_with_index(self, question: object, history: list[str] | None = None, threshold: float | None = None
                       ) -> tuple[Answer, IndexReader | None]:
        """`ask`, and the index version that answered (None for a question refused unread): what
        shows the answer's passages must read that version, not one a rebuild swapped in since."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            parsed = parse_question(question, history, policy=self.policies.question)
        except QuestionError as exc:
            return refusal(question, exc.key, exc.params, str(exc)), None
        index = self.index  # one version for the whole answer
        query = understand(parsed, index, self.policies.question)
        timings["understand"] = (time.perf_counter() - started) * 1000
        background = self.background()

        retrieval, vector, lean = self._retrieve(index, query, timings)

        mark = time.perf_counter()
        threshold = self.calibration.margin_threshold if threshold is None else threshold
        background_max = float((background @ vector).max()) if len(background) else 0.0
        if query.compare:
            per_document = {doc_id: retrieve(index, vector, replace(query, documents=frozenset({doc_id})),
                                             self.policies.fusion, language_lean=lean)
                            for doc_id in compared_documents(index, query, retrieval, self.policies.selection)}
            selection = select_comparison(index, per_document, retrieval, query, background_max, threshold,
                                          self.policies.selection)
        else:
            selection = select(index, retrieval, query, background_max, threshold=threshold,
                               policy=self.policies.selection)
        timings["selection"] = (time.perf_counter() - mark) * 1000
        if selection.abstained and not query.compare:
            selection = self._rescued(selection, index, retrieval, query, background_max, timings)
        selection = self._judged(selection, retrieval, query, timings)

        mark = time.perf_counter()
        answer = compose(index, selection, query)
        timings["formatting"] = (time.perf_counter() - mark) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return replace(answer, timings_ms=timings), index
