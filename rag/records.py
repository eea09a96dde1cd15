"""The records that flow through the pipeline. Every span is exact: `text[start:end]`."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def __post_init__(self) -> None:
        for block in self.blocks:
            if block.end > len(self.text):
                raise ValueError(f"{self.source}: block {block} runs past the end of the text ({len(self.text)})")

    def meta(self, key: str, default: str = "") -> str:
        return dict(self.metadata).get(key, default)


@dataclass(frozen=True)
class Sentence:
    sentence_id: int
    doc_id: str
    passage_id: int
    start: int
    end: int
    text: str

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
