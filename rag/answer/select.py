"""Selection: choose the verbatim sentences that answer, or decide to abstain.

Pure functions over a `Retrieval`: no model, no disk. The support test compares
the best evidence with the closest *background* sentence (everyday text from
unrelated domains, `data/background.txt`): evidence that is no closer to the
question than unrelated text does not answer it. The margin threshold is
measured per model on the tuning half of eval/ (`calibration.py`); the engine passes it in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import islice

from ..index.reader import IndexReader
from ..ingest.clean import YEAR
from ..policy import DEFAULT, SelectionPolicy
from ..records import Passage, Sentence
from ..query.understand import Query
from ..retrieve.hybrid import Candidate, Retrieval, sentence_languages
from ..text.analyzer import analyze


SILENT_SOURCES = "none of the compared sources speaks of the topic"


@dataclass(frozen=True)
class Selection:
    """What the answer stage decided, before wording."""

    abstained: bool
    sentences: tuple[Candidate, ...]
    closest: tuple[tuple[Passage, float], ...]
    support: float
    broad: bool
    reason: str = ""
    columns: tuple[tuple[str, tuple[Candidate, ...]], ...] = ()  # (doc_id, its sentences) when comparing
    judged: float | None = None  # the judge's deciding score (Answer.judged), when it read the statements


def _redundant(index: IndexReader, chosen: list[Candidate], candidate: Candidate, limit: float) -> bool:
    if not chosen:
        return False
    vectors = index.sentence_vectors_of([c.sentence.sentence_id for c in chosen] + [candidate.sentence.sentence_id])
    return bool((vectors[:-1] @ vectors[-1] > limit).any())


def _neighbour(index: IndexReader, sentence: Sentence, step: int) -> Sentence | None:
    """The sentence before (step=-1) or after (step=1) in the same document, if any."""
    number = sentence.sentence_id + step
    if not 0 <= number < index.sentence_count:
        return None
    neighbour = index.sentences_by_id([number])[0]
    return neighbour if neighbour.doc_id == sentence.doc_id else None


def _as_candidate(index: IndexReader, sentence: Sentence, like: Candidate) -> Candidate:
    return Candidate(sentence, index.passages_by_id([sentence.passage_id])[0], like.dense, like.passage_dense, 0.0, like.fused,
                     title_vote=like.title_vote)


def _in_context(index: IndexReader, chosen: Candidate, policy: SelectionPolicy) -> list[Candidate]:
    """The sentence with what it needs to be read alone: the sentence before it when it opens by
    pointing back ("C’est le dernier mot…")."""
    out = [chosen]
    if policy.anaphoric_start.match(chosen.sentence.text):
        previous = _neighbour(index, chosen.sentence, -1)
        if previous is not None:
            out.insert(0, _as_candidate(index, previous, chosen))
    return out


def select(index: IndexReader, retrieval: Retrieval, query: Query, background_max: float,
           threshold: float, policy: SelectionPolicy = DEFAULT.selection) -> Selection:
    """Pick the answer sentences, or decide to abstain. Pure.

    `background_max` is the best cosine of the question with unrelated text;
    `threshold`: the least margin over it that counts as support (the model's calibration).
    When the language correction reordered the candidates (`retrieval.uncorrected`), the answer
    is taken from the corrected ranking, and given only when the uncorrected one answers too.
    """
    selection = _select(index, retrieval, query, background_max, threshold, policy)
    if retrieval.uncorrected is None or selection.abstained:
        return selection
    # The correction lets a sentence in another language than the question's win on its content. The
    # checks were calibrated on the model's own cosines, and the shared-word check cannot read across
    # languages: the ranking they were made for must answer too, or a question about something else
    # is answered by whichever line of the other language is least unlike it.
    plain = _select(index, replace(retrieval, candidates=retrieval.uncorrected, uncorrected=None), query,
                    background_max, threshold, policy)
    if plain.abstained:
        return replace(plain, closest=selection.closest)
    # Both rankings' supports had to pass the margin: the lower is the one a margin decides on, and what
    # a calibration, or a sweep of margins over recorded supports, must read.
    return replace(selection, support=min(selection.support, plain.support))


def _select(index: IndexReader, retrieval: Retrieval, query: Query, background_max: float,
            threshold: float, policy: SelectionPolicy) -> Selection:
    candidates = statements(retrieval.candidates, policy)
    closest = tuple(retrieval.top_passages(policy.max_closest))
    broad = query.broad
    if not candidates:
        return Selection(True, (), closest, 0.0, broad, "the index is empty")
    best_dense = max(c.dense for c in candidates[:3])
    support = best_dense - background_max
    if query.unknown_names and policy.unknown_names_refuse:
        return Selection(True, (), closest, support, broad,
                         "names the documents never mention: " + ", ".join(query.unknown_names))
    if query.unfamiliar_words:
        return Selection(True, (), closest, support, broad,
                         "words the documents never use: " + ", ".join(query.unfamiliar_words))
    if support < threshold:
        return Selection(True, (), closest, support, broad, "no passage is closer to the question than unrelated text")
    if broad:
        # Each sentence of a broad answer must still beat unrelated text, and stay near the best one.
        floor = max(background_max, best_dense - policy.broad_dense_window)
        return Selection(False, tuple(_select_broad(index, candidates, floor, policy)), closest, support, True)
    best = candidates[0]
    chosen = _in_context(index, best, policy)
    # A near tie means the ranking cannot tell which of two sentences answers, and a runner-up
    # that the model finds closer in meaning than the winner (its title's vote counted as meaning)
    # was only outranked by word overlap: in both cases show it too.
    runner_up = next((c for c in candidates[1:3] if c.sentence not in [x.sentence for x in chosen]), None)
    if runner_up is not None and (runner_up.fused >= best.fused - policy.second_sentence_gap
                                  or (policy.meaning_runner_up
                                      and runner_up.dense + runner_up.title_vote > best.dense + best.title_vote)) \
            and not _redundant(index, chosen, runner_up, policy.redundant):
        chosen.append(runner_up)
    chosen.extend(_continuations(best, candidates[1:3], policy))
    if policy.shared_word_required and not _shares_a_word(index, query, chosen):
        return Selection(True, (), closest, support, False,
                         "the closest passages, in the question's language, share none of its words")
    missing = missing_kind(query.asks, [c.sentence.text for c in answering(chosen, best)], policy)
    if policy.answer_kind_required and missing:
        return Selection(True, (), closest, support, False, f"the question asks for {missing}; no quote holds one")
    return Selection(False, tuple(_once_each(chosen)), closest, support, False)


def answering(chosen: Sequence[Candidate], best: Candidate) -> list[Candidate]:
    """The quotes that answer: the best one and those next to it. The kind a question asks for must
    be there, not in a runner-up elsewhere that happens to hold a number ("30 experts" to "Combien
    coûte le rapport de Digimind ?")."""
    return [c for c in chosen if c.sentence.doc_id == best.sentence.doc_id
            and abs(c.sentence.sentence_id - best.sentence.sentence_id) <= 1]


def missing_kind(asks: Sequence[str], quotes: Sequence[str], policy: SelectionPolicy = DEFAULT.selection) -> str:
    """The first kind the question `asks` for ("a quantity", "a time": `Query.asks`) that none of
    `quotes` holds, else "". A year alone is no quantity."""
    text = " ".join(quotes)
    for kind in asks:
        if kind == "a quantity" and not policy.quantity.search(YEAR.sub(" ", text)):
            return kind
        if kind == "a time" and not policy.time.search(text):
            return kind
    return ""


WORD = re.compile(r"[^\W\d_]{2,}")


# A question mark that ends a clause: not the one of a URL's query ("https://x.fr/?id=3").
QUESTION_MARK = re.compile(r"\?(?![\w=&/])")


@lru_cache(maxsize=16384)  # pure, and asked of the same leading sentences by both rankings and by each turn
def is_statement(text: str, policy: SelectionPolicy = DEFAULT.selection) -> bool:
    """Says something in words: at least `policy.min_quote_words` words written in lower case or
    capitalized. A usage line ("wc [OPTION]... [FICHIER]...") is placeholders around a name; a
    sentence written all in capitals still counts when it is long (`policy.min_shouted_words`).
    A question does not answer one, nor does a sentence that cites one (a FAQ's "Voir Section 7.7,
    « Qu'est-ce qu'un paquet virtuel ? »" holds the very words asked, and points elsewhere)."""
    if QUESTION_MARK.search(text):
        return False
    words = [token for token in text.split() if WORD.search(token)]  # "/etc/cron.deny" is one word
    written = sum(1 for w in words if any(ch.islower() for ch in w))
    return written >= policy.min_quote_words or len(words) >= policy.min_shouted_words


def statements(candidates: tuple[Candidate, ...], policy: SelectionPolicy) -> tuple[Candidate, ...]:
    """The candidates that say something (`is_statement`)."""
    return tuple(c for c in candidates if is_statement(c.sentence.text, policy))


def judged_positions(candidates: Sequence[Candidate], policy: SelectionPolicy) -> list[int]:
    """Where the statements the judge reads stand in a ranking: its first `policy.judged_statements`."""
    said = (i for i, c in enumerate(candidates) if is_statement(c.sentence.text, policy))
    return list(islice(said, policy.judged_statements))


def judged_texts(retrieval: Retrieval, policy: SelectionPolicy) -> tuple[str, ...]:
    """What the judge reads: the first `policy.judged_statements` statements of the ranking."""
    return tuple(retrieval.candidates[i].sentence.text for i in judged_positions(retrieval.candidates, policy))


def judge_vetoed(selection: Selection, score: float, cut: float) -> Selection:
    """The selection, refused when it answered and the judge's deciding score over its statements (the
    first to reach the cut, else the best) is below `cut`; an answer keeps the score either way. Pure."""
    if selection.abstained:
        return selection
    if score >= cut:
        return replace(selection, judged=score)
    return replace(selection, abstained=True, sentences=(), reason="the judge finds no sentence that answers",
                   judged=score)


def _shares_a_word(index: IndexReader, query: Query, chosen: list[Candidate]) -> bool:
    """Whether a passage quoted shares a content word (stemmed) with the question and its context.
    Only asked of quotes written in the question's language, whatever their document's (an English
    copyright line in a French manual page is English): across languages the words differ anyway."""
    same_language = [c for c, language in zip(chosen, sentence_languages(index, [c.sentence for c in chosen]))
                     if language == query.language]
    if not same_language:
        return True
    asked = set(query.terms)

    def words_of(c: Candidate) -> set[str]:
        # A document the question chose by the name its title gives it is about that name ("Que
        # signifie « now » pour shutdown ?" is answered in "shutdown - Arrêter…", whose lines rarely
        # repeat it). Not a year or a title's other words: "2020" in a title is not a topic.
        names = [word for word, documents in query.by_title if c.sentence.doc_id in documents]
        return set(analyze(" ".join([*names, c.passage.text]), query.language))

    return any(asked & words_of(c) for c in same_language)


def _continuations(best: Candidate, runners_up: Sequence[Candidate], policy: SelectionPolicy) -> list[Candidate]:
    """A runner-up that is the very next sentence and opens by pointing back at the best one
    ("Le livre blanc est un des piliers… Il est la preuve de votre expertise.") goes on with the
    same statement: it is quoted with it, whatever its own score, since the pronoun hides from
    the question the subject they share."""
    return [c for c in runners_up if c.sentence.doc_id == best.sentence.doc_id
            and c.sentence.sentence_id == best.sentence.sentence_id + 1
            and policy.anaphoric_start.match(c.sentence.text)]


def _once_each(chosen: list[Candidate]) -> list[Candidate]:
    """Each sentence once (a runner-up may be the sentence a lead-in brought in)."""
    seen: set[int] = set()
    out = []
    for candidate in chosen:
        if candidate.sentence.sentence_id not in seen:
            seen.add(candidate.sentence.sentence_id)
            out.append(candidate)
    return out


def _select_broad(index: IndexReader, candidates: tuple[Candidate, ...], floor: float,
                  policy: SelectionPolicy) -> list[Candidate]:
    """Several sentences from different passages, diverse, each closer than unrelated text."""
    chosen: list[Candidate] = []
    used_passages: set[int] = set()
    for candidate in candidates[:40]:
        if len(chosen) == policy.max_broad_sentences:
            break
        if candidate.dense < floor or candidate.passage.passage_id in used_passages:
            continue
        if _redundant(index, chosen, candidate, limit=policy.broad_redundant):
            continue
        chosen.append(candidate)
        used_passages.add(candidate.passage.passage_id)
    return chosen or [candidates[0]]


def topic_weights(index: IndexReader, query: Query, policy: SelectionPolicy = DEFAULT.selection) -> dict[str, float]:
    """The content terms of the question's topic (`Query.topic`), in both languages' analysis,
    without the terms most sentences contain, each with its rarity (an IDF; 0 for a word no sentence
    holds). Counted in the sentences' own words, as `topic_statements` reads them: a section heading's
    words, by which BM25 also finds the sentences under it, once made "influence" common in the seeds
    (the heading over 15 of Digimind's sentences), and Kantar silent on it."""
    count = max(index.sentence_count, 1)
    common = policy.compare_common_share * count
    return {t: math.log(count / (1 + n)) + 1 if n > 0 else 0.0
            for t, n in index.own_frequency(sorted(query.topic_terms)).items() if n <= common}


def topic_statements(index: IndexReader, retrievals: dict[str, Retrieval], query: Query, floor: float,
                     policy: SelectionPolicy = DEFAULT.selection) -> dict[str, tuple[Candidate, ...]]:
    """Per compared document, its statements that speak of the topic, in ranking order: closer to the
    question than unrelated text (`floor`: the closest unrelated sentence plus the margin), and holding
    the topic's words: in the question's language, `policy.compare_topic_share` of them weighed by
    rarity; in the other, any one. (A sentence as close to the question as the best source's best one
    counted too, for questions in the other language: measured on labelled comparisons, it gave most
    silent sources a borrowed quote; BENCHMARKS, "Comparisons".)
    """
    weights = topic_weights(index, query, policy)
    needed = policy.compare_topic_share * sum(weights.values())

    def on_topic(candidate: Candidate) -> bool:
        language = index.documents[candidate.sentence.doc_id].language
        held = weights.keys() & set(analyze(candidate.sentence.text, language))
        return candidate.dense >= floor and bool(held) and (
            language != query.language or sum(weights[t] for t in held) >= needed)

    return {doc_id: tuple(c for c in statements(retrieval.candidates, policy) if on_topic(c))
            for doc_id, retrieval in retrievals.items()}


def select_comparison(index: IndexReader, retrievals: dict[str, Retrieval], overall: Retrieval, query: Query,
                      background_max: float, threshold: float,
                      policy: SelectionPolicy = DEFAULT.selection) -> Selection:
    """One column per compared document: its best sentences on the topic (`topic_statements`), or none.
    A source with no such sentence is silent: it gets no borrowed quote."""
    if policy.compare_margin is not None:
        threshold = policy.compare_margin
    general = select(index, overall, query, background_max, threshold, policy)
    if general.abstained:
        return general
    floor = background_max + threshold
    columns, sentences = [], []
    for doc_id, relevant in topic_statements(index, retrievals, query, floor, policy).items():
        chosen = _select_broad(index, relevant, floor, policy)[: policy.compare_sentences] if relevant else []
        columns.append((doc_id, tuple(chosen)))
        sentences.extend(chosen)
    if not sentences:
        # No source speaks of the topic: a refusal, which names the sources it read and shows each one's
        # closest passages to check, not a page of silent columns with nothing to open.
        return Selection(True, (), closest_in_each(retrievals, policy.max_closest) or general.closest,
                         general.support, False, SILENT_SOURCES, columns=tuple(columns))
    return Selection(False, tuple(sentences), general.closest, general.support, False, columns=tuple(columns))


def closest_in_each(retrievals: dict[str, Retrieval], count: int) -> tuple[tuple[Passage, float], ...]:
    """About `count` closest passages in all, taken in turn from each source's own ranking (at least one
    of each source that has any), the sources in their columns' order."""
    each = max(1, math.ceil(count / max(len(retrievals), 1)))
    ranked = [r.top_passages(each) for r in retrievals.values()]
    return tuple(passages[rank] for rank in range(each) for passages in ranked if rank < len(passages))


def compared_documents(index: IndexReader, query: Query, overall: Retrieval, policy: SelectionPolicy = DEFAULT.selection
                       ) -> list[str]:
    """The sources to lay side by side: those the question names, else all when few, else the
    closest; never more than `policy.max_compared` (a name found in hundreds of documents of a
    large collection must not ask hundreds of questions and draw hundreds of columns). The names the
    question compares (`Query.compared`) come before the others it holds."""
    ranked = list(dict.fromkeys(c.sentence.doc_id for c in overall.candidates))
    sources = query.compared if len(query.compared) >= 2 else query.documents
    if len(sources) >= 2:
        named = [d for d in ranked if d in sources]
        named += sorted(sources - set(named), key=index.doc_ids.index)
        return sorted(named[: policy.max_compared], key=index.doc_ids.index)
    if len(index.doc_ids) <= policy.max_compared:
        return list(index.doc_ids)
    return ranked[: policy.max_compared]
