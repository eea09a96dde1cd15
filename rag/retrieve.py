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
# Two stages: the passage index (exact or approximate) proposes passages; every sentence
# of those passages, and every clause of those sentences, is then scored exactly.
DENSE_PASSAGES = 200
LEXICAL_CANDIDATES = 100
PREFERRED_PASSAGES = 2000
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


def sentence_scores(index: Index, sentence_ids: np.ndarray, query: np.ndarray) -> dict[int, float]:
    """Cosine of each sentence with the question, or of its best clause when that is higher:
    a long sentence's vector blurs its parts, a question may match one clause."""
    if len(sentence_ids) == 0:
        return {}
    scores = np.asarray(index.sentence_vectors[sentence_ids] @ query, dtype=np.float32)
    owners = index.clause_sentence
    if len(owners):
        lo = np.searchsorted(owners, sentence_ids, side="left")
        hi = np.searchsorted(owners, sentence_ids, side="right")
        has = np.flatnonzero(hi > lo)
        if len(has):
            rows = np.concatenate([np.arange(lo[i], hi[i]) for i in has])
            which = np.concatenate([np.full(hi[i] - lo[i], i) for i in has])
            clause = np.asarray(index.clause_vectors[rows] @ query, dtype=np.float32)
            np.maximum.at(scores, which, clause)
    return dict(zip(sentence_ids.tolist(), scores.tolist()))


@dataclass(frozen=True)
class Selectors:
    """Names and years in a question that only some documents contain, and those documents."""

    documents: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()


def named_documents(index: Index, question: str) -> Selectors:
    """Documents the question points at by a name or a year that only some documents contain.

    Looked up in the lexical index (which sentences hold the word), so the cost does
    not grow with the size of the documents.
    """
    all_docs = len(index.doc_ids)
    chosen: set[str] = set()
    words: list[str] = []
    for word in sorted(set(CAPITALIZED.findall(question)) | set(YEAR.findall(question))):
        name = re.sub(r"[’']s$", "", word)
        if len(name) < 3:
            continue
        holders: set[str] = set()
        terms = analyze(name, "fr")
        if len(terms) == 1:
            rows = index.sentence_bm25.postings(terms[0])
            holders = {index.doc_ids[int(code)] for code in np.unique(index.sentence_doc[rows])}
        if name.isdigit():
            holders |= {d.doc_id for d in index.documents.values() if d.year == int(name)}
        if holders and len(holders) < all_docs:
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
    p_scores, p_ids = search(index.passage_faiss, q, DENSE_PASSAGES)
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
    frequency = {t: index.sentence_bm25.frequency(t) for t in terms}
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
    passages = set(dense_passage)
    passages |= {int(i) for i in index.passage_bm25.top(lexical_passage, LEXICAL_CANDIDATES)}
    passages |= {index.sentences[int(i)].passage_id for i in index.sentence_bm25.top(lexical_sentence, LEXICAL_CANDIDATES)}
    if preferred:
        kept = {p for p in passages if index.passages[p].doc_id in preferred}
        owned = [p for d in preferred for p in index.doc_passages.get(d, ())]
        if len(owned) <= PREFERRED_PASSAGES:  # the named documents are read whole, however large the index
            kept |= set(owned)
        passages = kept or passages
    pool = sorted(s for p in passages for s in index.passages[p].sentence_ids)
    dense_sentence = sentence_scores(index, np.asarray(pool, dtype=np.int64), q[0])
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
        dense = dense_sentence[sentence_id]
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

