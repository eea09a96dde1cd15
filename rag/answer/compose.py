"""Wording: turn a `Selection` into an `Answer`: quotes, numbered citations, and the few
words around them in the question's language. The quotes are the documents' sentences,
verbatim; `Answer.answer` is the plain text, built here from the same fields the
renderers read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..index.reader import IndexReader
from ..ingest.clean import is_term
from ..records import Answer, Citation, Column, Passage, Quote, Sentence
from ..query.understand import Query
from ..retrieve.hybrid import Candidate
from .select import Selection

WORDS = {
    "fr": {
        "abstain": "Je n'ai pas trouvé de réponse dans les documents.",
        "closest": "Passages les plus proches (ils ne répondent pas à la question) :",
        "intro": "D'après les documents :",
        "broad_intro": "Voici ce que disent les documents :",
        "compare_intro": "Les sources côte à côte :",
        "compare_none": "Aucune des sources comparées ne parle de ce sujet.",
        "refusals": {"empty": "Posez une question.", "not_text": "La question doit être du texte.",
                     "too_long": "La question est trop longue ({length} caractères) ; la limite est de {limit}."},
        "silent": "rien sur ce sujet",
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
        "compare_intro": "The sources side by side:",
        "compare_none": "None of the compared sources speaks of this.",
        "refusals": {"empty": "Please type a question.", "not_text": "The question must be text.",
                     "too_long": "The question is too long ({length} characters); the limit is {limit}."},
        "silent": "nothing on this topic",
        "quotes_in": "(Quotes are in {languages}, as written in the documents.)",
        "languages": {"fr": "French", "en": "English"},
        "open": "“", "close": "”",
        "no_year": "year not stated",
    },
}


def words(language: str) -> dict:
    return WORDS.get(language, WORDS["fr"])


def section_of(index: IndexReader, passage: Passage) -> str:
    document = index.documents.get(passage.doc_id)
    return document.section_at(passage.start) if document is not None else ""


def _citation(index: IndexReader, n: int, passage: Passage, score: float) -> Citation:
    document = index.documents.get(passage.doc_id)
    page, last = (document.page_at(passage.start), document.page_at(max(passage.start, passage.end - 1))) \
        if document is not None else (None, None)
    return Citation(
        n=n, doc_id=passage.doc_id, document=passage.source, title=passage.title, year=passage.year,
        start=passage.start, end=passage.end, passage=passage.text, score=score, position=passage.position,
        section=section_of(index, passage), kind=passage.kind, page=page, last_page=last,
    )


def defined_terms(index: IndexReader, sentences: Sequence[Sentence]) -> list[str]:
    """For each sentence, the term it defines: the heading above it when that is a term ("-n,
    --no-clobber", "/etc/skel") and no other sentence stands between them. A definition without its
    term does not say which option (or file, or word) it is about. Read from the headings and the
    sentences before, in one batch, never from the document's text (a remote read with Milvus)."""
    above = [_heading_above(index, sentence) for sentence in sentences]
    asked = [s.sentence_id - 1 for s, heading in zip(sentences, above) if heading and s.sentence_id > 0]
    before = {p.sentence_id + 1: p for p in index.sentences_by_id(asked)} if asked else {}
    terms = []
    for sentence, heading in zip(sentences, above):
        previous = before.get(sentence.sentence_id)
        first_under = previous is None or previous.doc_id != sentence.doc_id or previous.end <= heading[0] \
            if heading else False
        terms.append(heading[1] if heading and first_under else "")
    return terms


def _heading_above(index: IndexReader, sentence: Sentence) -> tuple[int, str] | None:
    """(start, text) of the last heading before the sentence, when it is a term (the title, "mv -
    Déplacer des fichiers", names the page, and defines none of its sentences)."""
    document = index.documents.get(sentence.doc_id)
    if document is None:
        return None
    above = [(start, heading) for start, heading in document.headings if start < sentence.start]
    return above[-1] if above and above[-1][1] != document.title and is_term(above[-1][1]) else None


def _number_passages(index: IndexReader, ordered: list[Candidate]) -> tuple[list[Quote], list[Citation]]:
    numbers: dict[int, int] = {}
    citations: list[Citation] = []
    quotes: list[Quote] = []
    terms = defined_terms(index, [candidate.sentence for candidate in ordered])
    for candidate, term in zip(ordered, terms):
        passage = candidate.passage
        if passage.passage_id not in numbers:
            numbers[passage.passage_id] = len(numbers) + 1
            citations.append(_citation(index, numbers[passage.passage_id], passage, candidate.fused))
        sentence = candidate.sentence
        quotes.append(Quote(sentence.text, numbers[passage.passage_id], sentence.start, sentence.end, sentence.doc_id,
                            term))
    return quotes, citations


def on_one_line(text: str) -> str:
    """A quote or passage for display: a list quoted with its lead-in runs over several lines."""
    return " ".join(text.split())


def excerpt(text: str, limit: int = 160) -> str:
    text = on_one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def heading(title: str, year: int | None, language: str) -> str:
    return f"{title} ({year if year else words(language)['no_year']})"


def plain_text(answer: Answer) -> str:
    """The answer as plain text with [n] markers (CLI, JSON), from the answer's fields."""
    w = words(answer.language)
    if answer.abstained:
        lines = [answer.lead] + [f"- {column.heading} — ({answer.silent_label})" for column in answer.comparison]
        if answer.citations:
            lines += ["", answer.closest_label]
            lines += [f"[{c.n}] {w['open']}{excerpt(c.passage)}{w['close']} — {heading(c.title, c.year, answer.language)}"
                      for c in answer.citations]
        return "\n".join(lines)
    lines = [answer.lead] + [line for line in (answer.note, answer.source_line and f"({answer.source_line})") if line]
    if answer.comparison:
        for column in answer.comparison:
            lines += ["", column.heading]
            lines += [f"- {quote_line(answer.sentences[i], w)}" for i in column.quotes] or [f"- ({answer.silent_label})"]
        return "\n".join(lines)
    headings = dict(answer.headings)
    current_doc = None
    for quote in answer.sentences:
        if answer.grouped and quote.doc_id != current_doc:
            current_doc = quote.doc_id
            lines += ["", headings.get(quote.doc_id, "")]
        lines.append(f"- {quote_line(quote, w)}")
    return "\n".join(lines)


def quote_line(quote: Quote, w: dict) -> str:
    """« quote » [n], after the term it defines when it is a definition ("-n, --no-clobber : « … »")."""
    term = f"{on_one_line(quote.term)} : " if quote.term else ""
    return f"{term}{w['open']}{on_one_line(quote.text)}{w['close']} [{quote.citation}]"


def _finish(answer: Answer, selection: Selection) -> Answer:
    return replace(answer, answer=plain_text(answer), judged=selection.judged)


def compose(index: IndexReader, selection: Selection, query: Query) -> Answer:
    """The answer's records and text for `selection`, worded in `query.language`. Pure."""
    language = query.language
    w = words(language)
    if selection.abstained:
        citations = [_citation(index, n, passage, score) for n, (passage, score) in enumerate(selection.closest, 1)]
        silent = tuple(_column(index, doc_id, (), query.language) for doc_id, _ in selection.columns)
        return _finish(Answer(query.text, language, True, "", (), tuple(citations), support=selection.support,
                              reason=selection.reason, lead=w["compare_none"] if silent else w["abstain"],
                              closest_label=w["closest"], comparison=silent,
                              silent_label=w["silent"] if silent else ""), selection)

    if selection.columns:
        return _compose_comparison(index, selection, query)
    ordered = list(selection.sentences)
    if selection.broad:  # grouped by source, each source's sentences in reading order
        first_seen: dict[str, int] = {}
        for rank, candidate in enumerate(ordered):
            first_seen.setdefault(candidate.sentence.doc_id, rank)
        ordered.sort(key=lambda c: (first_seen[c.sentence.doc_id], c.sentence.start))
    quotes, citations = _number_passages(index, ordered)
    # Say so when the quotes are not in the question's language (the documents decide, not a guess).
    quoted = sorted({index.documents[q.doc_id].language for q in quotes if q.doc_id in index.documents} - {language})
    note = w["quotes_in"].format(languages=", ".join(w["languages"].get(code, code) for code in quoted)) if quoted else ""
    headings: tuple[tuple[str, str], ...] = ()
    source_line = ""
    if selection.broad:
        first_citation = {}
        for citation in citations:
            first_citation.setdefault(citation.doc_id, citation)
        headings = tuple((doc_id, heading(c.title, c.year, language)) for doc_id, c in first_citation.items())
    elif len({c.doc_id for c in citations}) == 1:
        source_line = heading(citations[0].title, citations[0].year, language)
    return _finish(Answer(query.text, language, False, "", tuple(quotes), tuple(citations), support=selection.support,
                          lead=w["broad_intro"] if selection.broad else w["intro"], note=note,
                          source_line=source_line, headings=headings), selection)


def _compose_comparison(index: IndexReader, selection: Selection, query: Query) -> Answer:
    """One column per compared source, in the order of the columns; quotes numbered across them."""
    w = words(query.language)
    ordered = [c for _, chosen in selection.columns for c in sorted(chosen, key=lambda c: c.sentence.start)]
    quotes, citations = _number_passages(index, ordered)
    columns, position = [], 0
    for doc_id, chosen in selection.columns:
        columns.append(_column(index, doc_id, tuple(range(position, position + len(chosen))), query.language))
        position += len(chosen)
    quoted = sorted({index.documents[q.doc_id].language for q in quotes} - {query.language})
    note = w["quotes_in"].format(languages=", ".join(w["languages"].get(code, code) for code in quoted)) if quoted else ""
    return _finish(Answer(query.text, query.language, False, "", tuple(quotes), tuple(citations),
                          support=selection.support, lead=w["compare_intro"], note=note,
                          comparison=tuple(columns), silent_label=w["silent"]), selection)


def _column(index: IndexReader, doc_id: str, quotes: tuple[int, ...], language: str) -> Column:
    document = index.documents[doc_id]
    return Column(doc_id, document.source, document.title, document.year,
                  heading(document.title, document.year, language), quotes)


def refusal(question: object, key: str, params: dict[str, object], fallback: str) -> Answer:
    """A refused question, worded in its language, French when it has none (an empty question)."""
    from ..text.language import detect_language

    text = question if isinstance(question, str) else ""
    sample = text[:500]
    language = detect_language(sample) if sum(ch.isalpha() for ch in sample) >= 12 and " " in sample.strip() else "fr"
    template = words(language)["refusals"].get(key)
    message = template.format(**params) if template else fallback
    return Answer(text[:200], language, True, message, (), (), {"total": 0.0}, message=message)
