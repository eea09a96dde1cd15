"""Hybrid retrieval: dense (FAISS) and lexical (BM25) scores of sentences and passages,
fused by calibrated weights, with a preference for the documents a question names."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..index.lexical import TermScores
from ..index.reader import IndexReader, per_index
from ..policy import DEFAULT, FusionPolicy
from ..query.understand import Query, cognate_words
from ..records import Passage, Sentence
from ..text.analyzer import analyze

# Two stages: the passage index (exact or approximate) proposes passages; every sentence
# of those passages, and every clause of those sentences, is then scored exactly.
DENSE_PASSAGES = DEFAULT.fusion.dense_passages


@dataclass(frozen=True)
class Candidate:
    sentence: Sentence
    passage: Passage
    dense: float  # cosine of the question and the sentence
    passage_dense: float  # cosine of the question and the sentence's passage
    lexical: float  # BM25 of the sentence, scaled to [0, 1] over this question's results
    fused: float
    lexical_passage: float = 0.0  # BM25 of the passage, scaled likewise
    title_vote: float = 0.0  # what its document's title added to `fused` (`title_votes`, weighted)


@dataclass(frozen=True)
class Retrieval:
    candidates: tuple[Candidate, ...]  # best first
    preferred_documents: frozenset[str]
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The ranking before the language correction (`language_shift`), when the correction moved a score:
    # selection answers only when both rankings do (select.py).
    uncorrected: tuple[Candidate, ...] | None = None

    def top_passages(self, n: int) -> list[tuple[Passage, float]]:
        seen: dict[int, tuple[Passage, float]] = {}
        for candidate in self.candidates:
            if candidate.passage.passage_id not in seen:
                seen[candidate.passage.passage_id] = (candidate.passage, candidate.fused)
            if len(seen) == n:
                break
        return list(seen.values())


def context_scores(index: IndexReader, sentence_ids: np.ndarray, query: np.ndarray, policy: FusionPolicy) -> np.ndarray:
    """Cosine of each sentence read together with the sentence before it in its document, discounted.

    A sentence that names its subject by a pronoun or a description ("La filiale du
    groupe WPP perçoit…") is found through the sentence that names it ("…Kantar Media…").
    """
    if policy.context_weight == 0 or len(sentence_ids) == 0:
        return np.full(len(sentence_ids), -np.inf, dtype=np.float32)
    previous_ids = np.maximum(sentence_ids - 1, 0)
    own = index.sentences_by_id(sentence_ids)
    previous = index.sentences_by_id(previous_ids)
    has_previous = np.array([i > 0 and p.doc_id == o.doc_id for i, p, o in zip(sentence_ids, previous, own)], dtype=bool)
    together = index.sentence_vectors_of(sentence_ids) + policy.context_weight * index.sentence_vectors_of(previous_ids)
    together /= np.maximum(np.linalg.norm(together, axis=1, keepdims=True), 1e-12)
    scores = together @ query - policy.context_discount
    return np.where(has_previous, scores, -np.inf).astype(np.float32)


def cognate_keys(text: str, prefix: int) -> set[str]:
    """The openings of a text's content words (accents folded): across French and English, words that
    open alike are often one word ("applause"/"applaudimètre", "influencers"/"influenceurs", "blocks"/"blocs")."""
    return {w[:prefix] for w in cognate_words(text)}


def cognate_scores(query: Query, sentences: Sequence[Sentence], cross: np.ndarray, policy: FusionPolicy) -> np.ndarray:
    """For the sentences in another language than the question's: the share of the question's content
    words whose opening one of the sentence's words shares, each weighted by how few sentences share it."""
    asked = sorted({w[:policy.cognate_prefix] for w in query.cognate_words})
    out = np.zeros(len(sentences), dtype=np.float32)
    rows = np.flatnonzero(cross)
    if not asked or len(rows) == 0:
        return out
    column = {key: j for j, key in enumerate(asked)}
    matches = np.zeros((len(rows), len(asked)), dtype=bool)
    for r, i in enumerate(rows):
        for key in cognate_keys(sentences[i].text, policy.cognate_prefix) & column.keys():
            matches[r, column[key]] = True
    held = matches.sum(axis=0)
    weight = np.log1p(len(rows) / np.maximum(held, 1)) * (held > 0)
    if weight.sum() == 0:
        return out
    out[rows] = (matches * weight).sum(axis=1) / weight.sum()
    return out


def sentence_languages(index: IndexReader, sentences: Sequence[Sentence]) -> list[str]:
    """The language each sentence is written in ("fr"/"en"; its document's when too short to tell): a
    French page may quote English lines. Recorded when the index is built; an index built before that
    was recorded has it detected here, once per open index."""
    if all(s.language for s in sentences):
        return [s.language for s in sentences]
    from ..text.language import detect_language

    known: dict[int, str] = per_index("sentence languages", index, dict)
    for s in sentences:
        if not s.language and s.sentence_id not in known:
            known[s.sentence_id] = detect_language(s.text, default=index.documents[s.doc_id].language)
    return [s.language or known[s.sentence_id] for s in sentences]


LANGUAGE_SAMPLE = 2000  # sentences read to place each language's centroid
MIN_LANGUAGE_SENTENCES = 20  # fewer sampled sentences of a language than this: no centroid for it


def language_centroids(index: IndexReader) -> dict[str, np.ndarray]:
    """The mean vector of the collection's sentences of each language, from a fixed sample; computed
    once per open index. Empty unless both languages have enough sentences to place their centroid:
    in a French collection, the centroid of its English lines is on the same subjects as the French
    one, so the two differ by language alone."""
    return per_index("language centroids", index, lambda: _sampled_centroids(index))


def _sampled_centroids(index: IndexReader) -> dict[str, np.ndarray]:
    count = index.sentence_count
    drawn = np.random.default_rng(0).choice(count, min(count, LANGUAGE_SAMPLE), replace=False) if count else []
    ids = np.sort(drawn).tolist()
    languages = np.asarray(sentence_languages(index, index.sentences_by_id(ids)))
    centroids: dict[str, np.ndarray] = {}
    if all((languages == language).sum() >= MIN_LANGUAGE_SENTENCES for language in ("fr", "en")):
        vectors = index.sentence_vectors_of(ids)
        centroids = {language: vectors[languages == language].mean(axis=0) for language in ("fr", "en")}
    return centroids


def language_lean(index: IndexReader, query_vector: np.ndarray) -> dict[str, float]:
    """The question's cosine with the collection's centroid of each language (empty: no correction)."""
    return {language: float(centroid @ query_vector) for language, centroid in language_centroids(index).items()}


def language_shift(index: IndexReader, sentences: Sequence[Sentence], lean: Mapping[str, float], language: str,
                   policy: FusionPolicy = DEFAULT.fusion) -> np.ndarray:
    """How much of each sentence's cosine with the question is owed to language rather than content;
    zero for a sentence in the question's `language`. For the others, weighted by `policy`: the
    question's lean towards the sentence's language over its own (`lean`, from `language_lean`), and
    the sentence's lean towards the question's language over its own (its cosines with the centroids).
    This takes each side's language centroid out of their cosine, as centring each language does for
    multilingual encoders, but keeps a sentence's distance to its own language's centroid, which ranks
    the sentences of one language among themselves."""
    languages = sentence_languages(index, sentences)
    return lean_shift(languages, lambda rows: index.sentence_vectors_of([sentences[i].sentence_id for i in rows]),
                      lean, language, language_centroids(index), policy)


def lean_shift(languages: Sequence[str], vectors_of: Callable[[list[int]], np.ndarray], lean: Mapping[str, float],
               language: str, centroids: Mapping[str, np.ndarray], policy: FusionPolicy = DEFAULT.fusion) -> np.ndarray:
    """`language_shift` for any texts: their `languages`, and `vectors_of(rows)` for those it must read."""
    out = np.zeros(len(languages), dtype=np.float32)
    rows = [i for i, written in enumerate(languages) if written != language and written in lean and language in lean]
    if not rows:
        return out
    out[rows] = [policy.language_lean_weight * (lean[languages[i]] - lean[language]) for i in rows]
    if policy.sentence_lean_weight and language in centroids:
        vectors = vectors_of(rows)
        toward = vectors @ centroids[language]
        own = np.einsum("ij,ij->i", vectors, np.stack([centroids[languages[i]] for i in rows]))
        out[rows] += policy.sentence_lean_weight * (toward - own)
    return out


def title_votes(index: IndexReader, query_vector: np.ndarray, policy: FusionPolicy = DEFAULT.fusion,
                lean: Mapping[str, float] | None = None, language: str = "") -> np.ndarray:
    """Per document (in `doc_ids` order): how much closer the question is to its stated title than to
    the collection's median title; 0 for a document that states none, and everywhere when fewer than
    two do or when most documents state none (`policy.min_titled_share`). With the question's `lean`
    and `language`, a title in another language has the languages' leans taken out first, as a
    sentence has (`language_shift`): an English question is closer to any English title."""
    titled = index.titled
    votes = np.zeros(len(titled), dtype=np.float32)
    if int(titled.sum()) < max(2, policy.min_titled_share * len(titled)):
        return votes
    cosines = index.title_similarity(query_vector)
    if lean:
        numbers = np.flatnonzero(titled)
        languages = [index.documents[index.doc_ids[int(n)]].language for n in numbers]
        cosines[numbers] -= lean_shift(languages, lambda rows: index.title_vectors[numbers[rows]], lean, language,
                                       language_centroids(index), policy)
    votes[titled] = cosines[titled] - np.median(cosines[titled])
    return votes


def document_numbers(index: IndexReader) -> dict[str, int]:
    """doc_id → position in `doc_ids`."""
    return per_index("document numbers", index, lambda: {d: n for n, d in enumerate(index.doc_ids)})


@dataclass(frozen=True)
class LexicalEvidence:
    """The question's BM25 terms over sentences and passages: rare ones count fully across
    languages, common ones at `FusionPolicy.cross_lingual_lexical`."""

    sentences: TermScores
    passages: TermScores
    rare: list[str]
    common: list[str]


def lexical_evidence(index: IndexReader, query: Query, policy: FusionPolicy) -> LexicalEvidence:
    """The terms BM25 matches for `query`, without the names that chose its documents when they
    recur (a name that chose the document, or a year, and that recurs across sentences — "Kantar",
    "2019" — says nothing about which sentence answers; a rare one, "Jourdain", still does; a name in
    the chosen document's title is its subject, not a clue to the sentence)."""
    terms = list(dict.fromkeys(query.terms + query.other_terms))
    title_terms = {t for d in query.documents for t in analyze(index.documents[d].title, "fr")}
    sentence_terms = index.lexical("sentences", terms)
    frequency = {t: sentence_terms.frequency(t) for t in terms}
    terms = [t for t in terms if t not in query.qualifier_terms
             or (t not in title_terms and frequency[t] <= policy.common_name_sentences)]
    # Across languages a shared *rare* word is a name or a borrowing ("hardware", "B2B"): as
    # good as in one language. A shared common word is often a loose cognate ("social").
    rare = [t for t in terms if frequency[t] <= policy.rare_term_sentences]
    common = [t for t in terms if frequency[t] > policy.rare_term_sentences]
    return LexicalEvidence(sentence_terms.only(terms), index.lexical("passages", terms), rare, common)


def candidate_passages(index: IndexReader, query: Query, proposed: set[int], votes: np.ndarray,
                       policy: FusionPolicy) -> dict[int, Passage]:
    """The passages whose sentences are ranked: those the dense and lexical searches `proposed`, the
    leading passages of the documents whose titles the question is closest to, and, when the question
    named documents, only theirs (read whole when they are few)."""
    passages = set(proposed)
    if votes.any():
        for number in np.argsort(-votes, kind="stable")[: policy.title_candidates]:
            passages |= set(index.passage_ids_of(index.doc_ids[int(number)])[: policy.preferred_passages])
    records = {p.passage_id: p for p in index.passages_by_id(sorted(passages))}
    preferred = query.documents
    if preferred:
        named = [p for d in preferred for p in index.passage_ids_of(d)]
        kept = {p for p, record in records.items() if record.doc_id in preferred}
        if len(named) <= policy.preferred_passages:
            kept |= set(named)
        if kept:
            missing = sorted(kept - set(records))
            records = {p: records[p] for p in kept if p in records}
            records.update((p.passage_id, p) for p in index.passages_by_id(missing))
    return records


def retrieve(index: IndexReader, query_vector: np.ndarray, query: Query, policy: FusionPolicy = DEFAULT.fusion,
             language_lean: Mapping[str, float] | None = None) -> Retrieval:
    """Rank the index's sentences for one question.

    `query_vector` embeds the question's views; `query`'s terms go to BM25; `query.documents`
    and `query.selector_words` are the documents the question named and the names that chose
    them. `language_lean`: the question's cosine with each language's centroid (`language_lean`,
    `language_shift`); without it, no correction.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if index.sentence_count == 0:
        return Retrieval((), frozenset(), timings)
    q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    p_scores, p_ids = index.search_passages(q, policy.dense_passages)
    timings["dense_search"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    lexical = lexical_evidence(index, query, policy)
    top_sentences = lexical.sentences.top(policy.lexical_candidates)
    proposed = set(p_ids.tolist()) | {int(i) for i in lexical.passages.top(policy.lexical_candidates)}
    proposed |= {s.passage_id for s in index.sentences_by_id(top_sentences)}
    timings["lexical_search"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    votes = title_votes(index, q, policy, language_lean, query.language) if policy.title_weight \
        else np.zeros(0, dtype=np.float32)
    records = candidate_passages(index, query, proposed, votes, policy)
    pool = np.asarray(sorted(s for p in records.values() for s in p.sentence_ids), dtype=np.int64)
    if len(pool) == 0:
        return Retrieval((), query.documents, timings)
    candidates, uncorrected = fuse(index, q, query, records, pool, lexical, votes, policy, language_lean)
    timings["fusion"] = (time.perf_counter() - started) * 1000
    return Retrieval(candidates, query.documents, timings, uncorrected)


def fuse(index: IndexReader, q: np.ndarray, query: Query, records: dict[int, Passage], pool: np.ndarray,
         lexical: LexicalEvidence, votes: np.ndarray, policy: FusionPolicy,
         language_lean: Mapping[str, float] | None) -> tuple[tuple[Candidate, ...], tuple[Candidate, ...] | None]:
    """The one fusion: each sentence of `pool` scored by its cosine (or its context's), its passage's,
    BM25 of both, its document's title vote, cognates across languages and the language correction;
    the best `max_candidates`, and the ranking before the language correction when it reordered any."""
    language = query.language
    sentences = index.sentences_by_id(pool)
    dense = index.sentence_similarity(pool, q)
    owners = np.fromiter((s.passage_id for s in sentences), dtype=np.int64, count=len(pool))
    passage_dense = index.passage_similarity(owners, q)
    cross = np.fromiter((index.documents[s.doc_id].language != language for s in sentences), dtype=bool, count=len(pool))
    weight = np.where(cross, policy.cross_lingual_lexical, 1.0).astype(np.float32)
    words = lexical.sentences.at(pool, lexical.rare) + weight * lexical.sentences.at(pool, lexical.common)
    words_p = lexical.passages.at(owners, lexical.rare) + weight * lexical.passages.at(owners, lexical.common)
    words = words / words.max() if words.max() > 0 else np.zeros_like(words)
    words_p = words_p / words_p.max() if words_p.max() > 0 else np.zeros_like(words_p)
    in_context = np.maximum(dense, context_scores(index, pool, q, policy))
    fused = (policy.dense_sentence * in_context + policy.dense_passage * passage_dense
             + policy.lexical_sentence * words + policy.lexical_passage * words_p)
    voted = np.zeros(len(pool), dtype=np.float32)
    if votes.any():
        numbers = document_numbers(index)
        voted = policy.title_weight * votes[[numbers[s.doc_id] for s in sentences]]
        fused = fused + voted
    if policy.cognate_weight and cross.any():  # zero for the sentences in the question's language
        fused = fused + policy.cognate_weight * cognate_scores(query, sentences, cross, policy)
    uncorrected = None
    if (policy.language_lean_weight or policy.sentence_lean_weight) and language_lean:
        # Only the leading sentences can be reordered by a lean of hundredths: detect only theirs.
        leading = np.lexsort((pool, -fused))[: 2 * policy.max_candidates]
        shift = language_shift(index, [sentences[i] for i in leading], language_lean, language, policy)
        if shift.any():
            uncorrected = fused.copy()
            fused[leading] -= policy.dense_sentence * shift

    def ranked(scores: np.ndarray) -> tuple[Candidate, ...]:
        return tuple(Candidate(sentences[i], records[int(owners[i])], float(dense[i]), float(passage_dense[i]),
                               float(words[i]), float(scores[i]), float(words_p[i]), float(voted[i]))
                     for i in np.lexsort((pool, -scores))[: policy.max_candidates])

    return ranked(fused), None if uncorrected is None else ranked(uncorrected)
