"""Hybrid retrieval: dense (FAISS) and lexical (BM25) scores of sentences and passages,
fused by calibrated weights, with a preference for the documents a question names."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..index.dense import search
from ..index.lexical import TermScores, analyze
from ..index.store import Index
from ..records import Passage, Sentence
from .query import YEAR, Query

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
MAX_CANDIDATES = 60  # ranked candidates kept for answer selection
COMMON_NAME_SENTENCES = 2
CROSS_LINGUAL_LEXICAL = 0.5
RARE_TERM_SENTENCES = 2


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


def sentence_scores(index: Index, sentence_ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine of each sentence with the question, or of its best clause when that is higher:
    a long sentence's vector blurs its parts, a question may match one clause."""
    if len(sentence_ids) == 0:
        return np.zeros(0, dtype=np.float32)
    scores = np.asarray(index.sentence_vectors[sentence_ids] @ query, dtype=np.float32)
    owners = index.clause_sentence
    if len(owners):
        lo = np.searchsorted(owners, sentence_ids, side="left")
        hi = np.searchsorted(owners, sentence_ids, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total:
            which = np.repeat(np.arange(len(sentence_ids)), counts)
            rows = np.repeat(lo, counts) + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            clause = np.asarray(index.clause_vectors[rows] @ query, dtype=np.float32)
            np.maximum.at(scores, which, clause)
    return scores


def retrieve(index: Index, query_vector: np.ndarray, query: Query) -> Retrieval:
    """Rank the index's sentences for one question.

    `query_vector` embeds the question's views; `query.lexical` gives the terms
    for BM25; `query.documents` and `query.selector_words` are the documents the
    question named and the names that chose them.
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
    preferred = query.documents
    language = query.language
    words = query.lexical
    terms = list(dict.fromkeys(analyze(words, language) + analyze(words, "fr" if language == "en" else "en")))
    # A name that chose the document, or a year, and that recurs across sentences ("Kantar",
    # "2019") says nothing about which sentence answers; a rare one ("Jourdain") still does.
    # A name in the title of the chosen document is its subject, not a clue to the sentence.
    qualifiers = {t for w in query.selector_words + tuple(YEAR.findall(words)) for t in analyze(w, language) + analyze(w, "fr")}
    title_terms = {t for d in query.documents for t in analyze(index.documents[d].title, "fr")}
    sentence_terms = TermScores(index.sentence_bm25, terms)
    frequency = {t: len(sentence_terms.columns[t][0]) for t in terms}
    terms = [t for t in terms if t not in qualifiers
             or (t not in title_terms and frequency[t] <= COMMON_NAME_SENTENCES)]
    # Across languages a shared *rare* word is a name or a borrowing ("hardware", "B2B"): as
    # good as in one language. A shared common word is often a loose cognate ("social").
    rare = [t for t in terms if frequency[t] <= RARE_TERM_SENTENCES]
    common = [t for t in terms if frequency[t] > RARE_TERM_SENTENCES]
    sentence_terms = sentence_terms.only(terms)
    passage_terms = TermScores(index.passage_bm25, terms)
    lexical_sentence, lexical_passage = sentence_terms.total, passage_terms.total
    timings["lexical_search"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    passages = set(dense_passage)
    passages |= {int(i) for i in index.passage_bm25.top(lexical_passage, LEXICAL_CANDIDATES)}
    passages |= {index.sentences[int(i)].passage_id for i in index.sentence_bm25.top(lexical_sentence, LEXICAL_CANDIDATES)}
    if preferred:
        kept = {p for p in passages if index.passages[p].doc_id in preferred}
        # The named documents are read whole, however large the index, when they are few.
        if sum(len(index.doc_passages.get(d, ())) for d in preferred) <= PREFERRED_PASSAGES:
            kept |= {p for d in preferred for p in index.doc_passages.get(d, ())}
        passages = kept or passages
    pool = np.asarray(sorted(s for p in passages for s in index.passages[p].sentence_ids), dtype=np.int64)
    if len(pool) == 0:
        return Retrieval((), preferred, timings)
    dense = sentence_scores(index, pool, q[0])
    owners = np.fromiter((index.sentences[i].passage_id for i in pool), dtype=np.int64, count=len(pool))
    passage_dense = np.asarray(index.passage_vectors[owners] @ q[0], dtype=np.float32)
    # Shared words across languages: rare ones count fully, common ones at CROSS_LINGUAL_LEXICAL.
    cross_docs = index.doc_languages != language
    weight = np.where(cross_docs[index.sentence_doc[pool]], CROSS_LINGUAL_LEXICAL, 1.0).astype(np.float32)
    lexical = sentence_terms.at(pool, rare) + weight * sentence_terms.at(pool, common)
    lexical_p = passage_terms.at(owners, rare) + weight * passage_terms.at(owners, common)
    lexical = lexical / lexical.max() if lexical.max() > 0 else np.zeros_like(lexical)
    lexical_p = lexical_p / lexical_p.max() if lexical_p.max() > 0 else np.zeros_like(lexical_p)
    fused = (WEIGHTS["dense_sentence"] * dense + WEIGHTS["dense_passage"] * passage_dense
             + WEIGHTS["lexical_sentence"] * lexical + WEIGHTS["lexical_passage"] * lexical_p)
    order = np.lexsort((pool, -fused))[:MAX_CANDIDATES]
    candidates = [
        Candidate(index.sentences[int(pool[i])], index.passages[int(owners[i])], float(dense[i]),
                  float(passage_dense[i]), float(lexical[i]), float(fused[i]), float(lexical_p[i]))
        for i in order
    ]
    timings["fusion"] = (time.perf_counter() - started) * 1000
    return Retrieval(tuple(candidates), preferred, timings)

