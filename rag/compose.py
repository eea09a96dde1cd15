"""Wording: turn a `Selection` into the text a person reads, with numbered citations.

Only the words around the quotes follow the question's language; the quotes are
the documents' sentences, verbatim.
"""

from __future__ import annotations

from .answer import Answer, Citation, Quote, Selection
from .records import Passage
from .retrieve import Candidate
from .store import Index

WORDS = {
    "fr": {
        "abstain": "Je n'ai pas trouvé de réponse dans les documents.",
        "closest": "Passages les plus proches (ils ne répondent pas à la question) :",
        "intro": "D'après les documents :",
        "broad_intro": "Voici ce que disent les documents :",
        "quotes_in": "(Les citations sont en {languages}, telles qu'écrites dans les documents.)",
        "languages": {"fr": "français", "en": "anglais"},
        "open": "« ", "close": " »",
        "no_year": "année non précisée",
    },
    "en": {
        "abstain": "The documents don't answer this.",
        "closest": "Closest passages (they do not answer the question):",
        "intro": "According to the documents:",
        "broad_intro": "Here is what the documents say:",
        "quotes_in": "(Quotes are in {languages}, as written in the documents.)",
        "languages": {"fr": "French", "en": "English"},
        "open": "“", "close": "”",
        "no_year": "year not stated",
    },
}


def words(language: str) -> dict:
    return WORDS.get(language, WORDS["fr"])


def section_of(index: Index, passage: Passage) -> str:
    document = index.documents.get(passage.doc_id)
    if document is None:
        return ""
    current = ""
    for start, heading in document.headings:
        if start <= passage.start:
            current = heading
    return current


def _citation(index: Index, n: int, passage: Passage, score: float) -> Citation:
    return Citation(
        n=n, doc_id=passage.doc_id, document=passage.source, title=passage.title, year=passage.year,
        start=passage.start, end=passage.end, passage=passage.text, score=score, position=passage.position,
        section=section_of(index, passage), kind=passage.kind,
    )


def _number_passages(index: Index, ordered: list[Candidate]) -> tuple[list[Quote], list[Citation]]:
    numbers: dict[int, int] = {}
    citations: list[Citation] = []
    quotes: list[Quote] = []
    for candidate in ordered:
        passage = candidate.passage
        if passage.passage_id not in numbers:
            numbers[passage.passage_id] = len(numbers) + 1
            citations.append(_citation(index, numbers[passage.passage_id], passage, candidate.fused))
        sentence = candidate.sentence
        quotes.append(Quote(sentence.text, numbers[passage.passage_id], sentence.start, sentence.end, sentence.doc_id))
    return quotes, citations


def _excerpt(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _heading(title: str, year: int | None, language: str) -> str:
    return f"{title} ({year if year else words(language)['no_year']})"


def compose(index: Index, selection: Selection, question: str, language: str) -> Answer:
    w = words(language)
    if selection.abstained:
        citations = [_citation(index, n, passage, score) for n, (passage, score) in enumerate(selection.closest, 1)]
        lines = [w["abstain"]]
        if citations:
            lines += ["", w["closest"]]
            lines += [f"[{c.n}] {w['open']}{_excerpt(c.passage)}{w['close']} — {_heading(c.title, c.year, language)}"
                      for c in citations]
        return Answer(question, language, True, "\n".join(lines), (), tuple(citations), support=selection.support)

    ordered = list(selection.sentences)
    if selection.broad:  # grouped by source, each source's sentences in reading order
        first_seen: dict[str, int] = {}
        for rank, candidate in enumerate(ordered):
            first_seen.setdefault(candidate.sentence.doc_id, rank)
        ordered.sort(key=lambda c: (first_seen[c.sentence.doc_id], c.sentence.start))
    quotes, citations = _number_passages(index, ordered)
    lines = [w["broad_intro"] if selection.broad else w["intro"]]
    # Say so when the quotes are not in the question's language (the documents decide, not a guess).
    quoted = sorted({index.documents[q.doc_id].language for q in quotes if q.doc_id in index.documents} - {language})
    if quoted:
        lines.append(w["quotes_in"].format(languages=", ".join(w["languages"].get(l, l) for l in quoted)))
    current_doc = None
    for quote in quotes:
        if selection.broad and quote.doc_id != current_doc:
            current_doc = quote.doc_id
            citation = next(c for c in citations if c.doc_id == quote.doc_id)
            lines += ["", _heading(citation.title, citation.year, language)]
        lines.append(f"- {w['open']}{quote.text}{w['close']} [{quote.citation}]")
    if not selection.broad and len({c.doc_id for c in citations}) == 1:
        lines.insert(1 + (1 if quoted else 0), f"({_heading(citations[0].title, citations[0].year, language)})")
    return Answer(question, language, False, "\n".join(lines), tuple(quotes), tuple(citations), support=selection.support)
