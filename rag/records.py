"""The records that flow through the pipeline. Every span is exact: `text[start:end]`."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any


def _check_span(owner: str, start: int, end: int, text: str | None = None) -> None:
    if not (0 <= start < end):
        raise ValueError(f"{owner}: invalid span start={start} end={end}; need 0 <= start < end")
    if text is not None and len(text) != end - start:
        raise ValueError(f"{owner}: text of {len(text)} characters does not fit the span {start}–{end}")


@dataclass(frozen=True)
class Span:
    start: int
    end: int

    def __post_init__(self) -> None:
        _check_span("Span", self.start, self.end)


@dataclass(frozen=True)
class Definition:
    """A glossary tooltip found glued into a sentence, kept apart from the body text."""

    term: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A cleaned document. `text` is the file's text exactly as read; nothing is rewritten,
    the cleaning only decides which spans (`blocks`) are body text worth quoting."""

    doc_id: str
    source: str
    title: str
    text: str
    kind: str
    language: str
    year: int | None
    sha256: str
    blocks: tuple[Span, ...]
    metadata: tuple[tuple[str, str], ...] = ()
    definitions: tuple[Definition, ...] = ()
    dropped: tuple[tuple[str, int, int], ...] = ()
    headings: tuple[tuple[int, str], ...] = ()  # (start offset, heading), for positions
    title_stated: bool = False  # the title is the document's own (a heading, <title>), not its first words

    def __post_init__(self) -> None:
        for block in self.blocks:
            if block.end > len(self.text):
                raise ValueError(f"{self.source}: block {block} runs past the end of the text ({len(self.text)})")

    def meta(self, key: str, default: str = "") -> str:
        return dict(self.metadata).get(key, default)

    @property
    def page_starts(self) -> tuple[int, ...]:
        """Where each page begins in the text (a PDF's), or () for a document without pages."""
        raw = self.meta("page_starts", "")
        return tuple(int(n) for n in str(raw).split(",") if n.strip().isdigit()) if raw else ()

    def page_at(self, offset: int) -> int | None:
        """The page (from 1) holding `offset`, or None for a document without pages."""
        starts = self.page_starts
        return bisect.bisect_right(starts, offset) or 1 if starts else None

    def section_at(self, offset: int) -> str:
        """The heading in force at `offset` (the title line counts), or ""."""
        current = ""
        for start, heading in self.headings:
            if start <= offset:
                current = heading
        return current


@dataclass(frozen=True)
class Sentence:
    sentence_id: int
    doc_id: str
    passage_id: int
    start: int
    end: int
    text: str
    # The language it is written in, detected when the index is built (a French page may quote English
    # lines); "" in an index built before it was recorded, where answering detects it on first use.
    language: str = ""

    def __post_init__(self) -> None:
        _check_span(f"Sentence {self.sentence_id}", self.start, self.end, self.text)


@dataclass(frozen=True)
class Passage:
    passage_id: int
    doc_id: str
    source: str
    title: str
    year: int | None
    start: int
    end: int
    text: str
    sentence_ids: tuple[int, ...] = field(default_factory=tuple)
    position: int = 0  # 0-based order of the passage within its document
    kind: str = "body"  # "body", or "definition" for a glossary tooltip

    def __post_init__(self) -> None:
        _check_span(f"Passage {self.passage_id}", self.start, self.end, self.text)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why (shown to the person who added it)."""

    source: str
    reason: str


# ---------------------------------------------------------------- answers

@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer: a passage, exactly `document_text[start:end]`."""

    n: int
    doc_id: str
    document: str
    title: str
    year: int | None
    start: int
    end: int
    passage: str
    score: float
    position: int
    section: str = ""
    kind: str = "body"
    page: int | None = None  # the page (from 1) where the passage begins, for a document with pages (a PDF)
    last_page: int | None = None  # where it ends, when that is a later page

    @property
    def pages(self) -> str:
        """"12" or "12–13" (the pages the passage spans), "" for a document without pages."""
        if self.page is None:
            return ""
        return f"{self.page}–{self.last_page}" if self.last_page and self.last_page != self.page else str(self.page)

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "document": self.document, "title": self.title, "year": self.year,
                "start": self.start, "end": self.end, "passage": self.passage, "score": round(self.score, 4),
                "position": self.position, "section": self.section, "kind": self.kind, "page": self.page,
                **({"last_page": self.last_page} if self.last_page and self.last_page != self.page else {})}


@dataclass(frozen=True)
class Quote:
    """A sentence quoted verbatim: `document_text[start:end]`, inside the passage of citation `citation`."""

    text: str
    citation: int
    start: int
    end: int
    doc_id: str
    term: str = ""  # the term this sentence defines, as written on the line above it ("-n, --no-clobber")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text, "citation": self.citation, "start": self.start, "end": self.end}
        if self.term:
            data["term"] = self.term
        return data


@dataclass(frozen=True)
class Column:
    """One source in a comparison: its quotes (positions in `Answer.sentences`), none when it is silent."""

    doc_id: str
    document: str
    title: str
    year: int | None
    heading: str
    quotes: tuple[int, ...] = ()

    @property
    def silent(self) -> bool:
        return not self.quotes


@dataclass(frozen=True)
class Answer:
    """An answer as records: quotes, citations and the few words around them.

    `answer` is the plain text (CLI, JSON); renderers build their own views from
    the other fields, never by parsing `answer`.
    """

    question: str
    language: str
    abstained: bool
    answer: str
    sentences: tuple[Quote, ...]
    citations: tuple[Citation, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    support: float = 0.0
    judged: float | None = None  # the judge's deciding score: the first statement's to reach its cut, else the best
    reason: str = ""  # why the answer abstained, for the person and the logs
    message: str = ""  # set instead of an answer when the question itself was refused
    lead: str = ""  # "D'après les documents :", or the abstention sentence
    note: str = ""  # the quotes' language, when it is not the question's
    source_line: str = ""  # "Title (2019)" when every quote comes from one document
    closest_label: str = ""  # above the closest passages of an abstention
    headings: tuple[tuple[str, str], ...] = ()  # (doc_id, "Title (year)") when quotes are grouped by source
    comparison: tuple[Column, ...] = ()  # one column per compared source, when the question compares
    silent_label: str = ""  # what a silent column says ("rien sur ce sujet")

    @property
    def grouped(self) -> bool:
        return bool(self.headings)

    def to_json(self) -> dict[str, Any]:
        data = {
            "question": self.question, "language": self.language, "abstained": self.abstained, "answer": self.answer,
            "sentences": [q.to_json() for q in self.sentences],
            "citations": [c.to_json() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "support": round(self.support, 4),
        }
        if self.judged is not None:
            data["judged"] = round(self.judged, 3)
        if self.comparison:
            data["comparison"] = [
                {"document": c.document, "title": c.title, "year": c.year, "silent": c.silent,
                 "quotes": [self.sentences[i].to_json() for i in c.quotes]}
                for c in self.comparison]
        if self.abstained and self.reason:
            data["reason"] = self.reason
        if self.message:
            data["error"] = self.message
        return data
