"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings of sentences and passages,
fused by weighted reciprocal rank, with a preference for the documents a question names."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from .lexical import analyze
from .records import Passage, Sentence
from .store import Index
from .vectors import search

# Fusion weights: cosine of the sentence (or its best clause), cosine of its passage, and
# BM25 scaled to [0, 1] per question. Cosines of this model differ by hundredths, so the
# lexical weights are small: they break ties and rescue names and numbers. Chosen on a
# plateau of a grid search over the eval set (bench/tune_fusion.py).
WEIGHTS = {"dense_sentence": 1.0, "dense_passage": 0.4, "lexical_sentence": 0.03, "lexical_passage": 0.02}
DENSE_CANDIDATES = 100
COMMON_NAME_SENTENCES = 2
CROSS_LINGUAL_LEXICAL = 0.5
RARE_TERM_SENTENCES = 2
YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d)(?!\d)")
CAPITALIZED = re.compile(r"\b[A-Z][\w’'-]*[a-z]\w*|\b[A-Z]{2,}\b")


@dataclass(frozen=True)
class Candidate:
    sentence: Sentence
    passage: Passage
    dense: float  # cosine of the question and the sentence
    passage_dense: float  # cosine of the question and the sentence's passage
    lexical: float  # BM25 of the sentence, scaled to [0, 1] over this question's results
    fused: float
    lexical_passage: float = 0.0  # BM25 of the passage, scaled likewise


@dataclass(frozen=True)
class Retrieval:
    candidates: tuple[Candidate, ...]  # best first
    preferred_documents: frozenset[str]
    timings_ms: dict[str, float] = field(default_factory=dict)

    def top_passages(self, n: int) -> list[tuple[Passage, float]]:
        seen: dict[int, tuple[Passage, float]] = {}
        for candidate in self.candidates:
            if candidate.passage.passage_id not in seen:
                seen[candidate.passage.passage_id] = (candidate.passage, candidate.fused)
            if len(seen) == n:
                break
        return list(seen.values())


@dataclass(frozen=True)
class Selectors:
    """Names and years in a question that only some documents contain, and those documents."""

    documents: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()


def named_documents(index: Index, question: str) -> Selectors:
    """Documents the question points at by a name or a year that only some documents contain."""
    all_docs = set(index.documents)
    chosen: set[str] = set()
    words: list[str] = []
    for word in sorted(set(CAPITALIZED.findall(question)) | set(YEAR.findall(question))):
        name = re.sub(r"[’']s$", "", word)
        if len(name) < 3:
            continue
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        holders = {d.doc_id for d in index.documents.values()
                   if pattern.search(d.text) or (name.isdigit() and str(d.year) == name)}
        if holders and holders != all_docs:
            chosen |= holders
            words.append(word)
    return Selectors(frozenset(chosen), tuple(words))


def without_words(text: str, words: tuple[str, ...]) -> str:
    """The question with its document-selecting names removed: what the document must answer."""
    for word in words:
        text = re.sub(rf"\b{re.escape(word)}\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def retrieve(index: Index, query_vector: np.ndarray, query: str, language: str,
             selectors: Selectors = Selectors(), lexical_query: str | None = None) -> Retrieval:
    """Rank the index's sentences for one question.

    `query_vector` embeds the question; `query` (or `lexical_query`, when the words
    to match differ, as in a follow-up) gives the terms for BM25. `selectors` are the
    names and years that chose documents.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    n_sentences = len(index.sentences)
    if n_sentences == 0:
        return Retrieval((), frozenset(), timings)
    q = query_vector.reshape(1, -1).astype(np.float32)
    s_scores, s_ids = search(index.sentence_faiss, q, DENSE_CANDIDATES)
    p_scores, p_ids = search(index.passage_faiss, q, DENSE_CANDIDATES)
    c_scores, c_ids = search(index.clause_faiss, q, DENSE_CANDIDATES)
    dense_sentence = dict(zip(s_ids[0].tolist(), s_scores[0].tolist()))
    for clause, score in zip(c_ids[0].tolist(), c_scores[0].tolist()):
        owner = int(index.clause_sentence[clause])
        # A clause stands for its sentence; the sentence's own vector is computed when it is not a hit.
        own = dense_sentence.get(owner, float(index.sentence_vectors[owner] @ q[0]))
        dense_sentence[owner] = max(own, float(score))
    dense_passage = dict(zip(p_ids[0].tolist(), p_scores[0].tolist()))
    timings["dense_search"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    preferred = selectors.documents
    words = lexical_query or query
    terms = list(dict.fromkeys(analyze(words, language) + analyze(words, "fr" if language == "en" else "en")))
    # A name that chose the document, or a year, and that recurs across sentences ("Kantar",
    # "2019") says nothing about which sentence answers; a rare one ("Jourdain") still does.
    # A name in the title of the chosen document is its subject, not a clue to the sentence.
    qualifiers = {t for w in selectors.words + tuple(YEAR.findall(words)) for t in analyze(w, language) + analyze(w, "fr")}
    title_terms = {t for d in selectors.documents for t in analyze(index.documents[d].title, "fr")}
    frequency = {t: int(np.count_nonzero(index.sentence_bm25.scores([t]))) for t in terms}
    terms = [t for t in terms if t not in qualifiers
             or (t not in title_terms and frequency[t] <= COMMON_NAME_SENTENCES)]
    # Across languages a shared *rare* word is a name or a borrowing ("hardware", "B2B"): as
    # good as in one language. A shared common word is often a loose cognate ("social").
    rare = [t for t in terms if frequency[t] <= RARE_TERM_SENTENCES]
    common = [t for t in terms if frequency[t] > RARE_TERM_SENTENCES]
    rare_s, common_s = index.sentence_bm25.scores(rare), index.sentence_bm25.scores(common)
    rare_p, common_p = index.passage_bm25.scores(rare), index.passage_bm25.scores(common)
    lexical_sentence, lexical_passage = rare_s + common_s, rare_p + common_p
    timings["lexical_search"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    pool = set(dense_sentence)
    pool |= {int(i) for i in np.flatnonzero(lexical_sentence > 0)}
    for passage_id in dense_passage:
        pool |= set(index.passages[passage_id].sentence_ids)
    if preferred:
        kept = {i for i in pool if index.sentences[i].doc_id in preferred}
        pool = kept or pool
    cross = {d for d, doc in index.documents.items() if doc.language != language}
    doc_of = [index.sentences[i].doc_id for i in pool]

    def trusted(rare_scores: np.ndarray, common_scores: np.ndarray, row: int, doc_id: str) -> float:
        weight = CROSS_LINGUAL_LEXICAL if doc_id in cross else 1.0
        return float(rare_scores[row] + weight * common_scores[row])

    lex_max = max((trusted(rare_s, common_s, i, d) for i, d in zip(pool, doc_of)), default=0.0)
    lex_p_max = max((trusted(rare_p, common_p, index.sentences[i].passage_id, d) for i, d in zip(pool, doc_of)),
                    default=0.0)

    candidates = []
    for sentence_id in pool:
        sentence = index.sentences[sentence_id]
        passage = index.passages[sentence.passage_id]
        dense = dense_sentence.get(sentence_id)
        if dense is None:
            dense = float(index.sentence_vectors[sentence_id] @ q[0])
        passage_dense = dense_passage.get(passage.passage_id)
        if passage_dense is None:
            passage_dense = float(index.passage_vectors[passage.passage_id] @ q[0])
        lexical = trusted(rare_s, common_s, sentence_id, sentence.doc_id) / lex_max if lex_max > 0 else 0.0
        lexical_p = trusted(rare_p, common_p, passage.passage_id, sentence.doc_id) / lex_p_max if lex_p_max > 0 else 0.0
        fused = (WEIGHTS["dense_sentence"] * dense + WEIGHTS["dense_passage"] * passage_dense
                 + WEIGHTS["lexical_sentence"] * lexical + WEIGHTS["lexical_passage"] * lexical_p)
        candidates.append(Candidate(sentence, passage, float(dense), float(passage_dense), lexical, fused,
                                    lexical_p))
    candidates.sort(key=lambda c: (-c.fused, c.sentence.sentence_id))
    timings["fusion"] = (time.perf_counter() - started) * 1000
    return Retrieval(tuple(candidates), preferred, timings)

