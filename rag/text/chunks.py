"""Passages: sentence-aligned windows that never leave a block (a paragraph, or a part
of one that a tooltip interrupted). Each sentence belongs to exactly one passage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config import CLEANING_RULES
from ..records import Span
from .sentences import split_sentences

# Bumped whenever the same file would split differently, so that every index is rebuilt:
# 2 a list is one block with its lead-in; 3 terms are headings; 4 rows are found by their heading's
# words; 5 a section label is not a title; 6 the heading after it is; 7 lines repeated across the
# collection; 8 a term's definition is body text; 9 numbered headings and questions on their own line;
# 10 sentences glued with no space ("opérations.Si") are cut apart; 11 a stated title is embedded, and
# its words find the document's passages; 12 a sentence is at most 500 characters, and long blocks are
# segmented in pieces; 13 a glued end before an elided capital ("Debian.L'exécution") is cut; 14 so is
# one followed by what it closes ("conservatrice.)Notez"); 15 one after a French closing quote and its
# space ("« oui ».D’abord").
CHUNKING_VERSION = 15


@dataclass(frozen=True)
class ChunkSettings:
    max_sentences: int = 4
    max_chars: int = 700
    cleaning: tuple[str, ...] = CLEANING_RULES  # which spans are body text is part of how a document splits

    def __post_init__(self) -> None:
        unknown = set(self.cleaning) - set(CLEANING_RULES)
        if unknown:
            raise ValueError(f"unknown cleaning rules {sorted(unknown)}; known: {', '.join(CLEANING_RULES)}")
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be at least 1, got {self.max_sentences}")
        if self.max_chars < 50:
            raise ValueError(f"max_chars must be at least 50, got {self.max_chars}")

    def as_dict(self) -> dict[str, Any]:
        return {"version": CHUNKING_VERSION, "max_sentences": self.max_sentences, "max_chars": self.max_chars,
                "cleaning": sorted(self.cleaning)}


@dataclass(frozen=True)
class Chunk:
    span: Span
    sentences: tuple[Span, ...]


def window(sentences: list[Span], settings: ChunkSettings) -> list[Chunk]:
    """Group consecutive sentences of one block, up to the sentence and character limits."""
    chunks: list[Chunk] = []
    current: list[Span] = []
    for sentence in sentences:
        too_long = current and sentence.end - current[0].start > settings.max_chars
        if current and (len(current) == settings.max_sentences or too_long):
            chunks.append(Chunk(Span(current[0].start, current[-1].end), tuple(current)))
            current = []
        current.append(sentence)
    if current:
        chunks.append(Chunk(Span(current[0].start, current[-1].end), tuple(current)))
    return chunks


def chunk_blocks(text: str, blocks: tuple[Span, ...], language: str, settings: ChunkSettings) -> list[Chunk]:
    """All passages of a document, in reading order."""
    chunks: list[Chunk] = []
    for block in blocks:
        chunks.extend(window(split_sentences(text, block, language), settings))
    return chunks


CLAUSE_BREAK = re.compile(r",(?=\s)|[;:()\[\]«»—–]|\s-\s")


def clause_spans(text: str, sentence: Span, min_chars: int = 40, long_sentence: int = 140) -> list[Span]:
    """Windows of whole clauses inside a long sentence, each at least `min_chars` long.

    A long sentence's embedding blurs its parts; a question that matches one clause
    ("qui gagne haut la main à l’applaudimètre") is found through that clause.
    Short sentences have no clauses of their own.
    """
    if sentence.end - sentence.start < long_sentence:
        return []
    body = text[sentence.start : sentence.end]
    cuts = [0] + [m.end() for m in CLAUSE_BREAK.finditer(body)] + [len(body)]
    spans: list[Span] = []
    start = 0
    for cut in cuts[1:]:
        if cut <= start:  # a separator at the very end repeats the last cut: nothing lies between
            continue
        if cut - start >= min_chars or cut == len(body):
            piece = Span(sentence.start + start, sentence.start + cut)
            trimmed = _strip_span(text, piece)
            if trimmed is not None and trimmed.end - trimmed.start >= min_chars // 2:
                spans.append(trimmed)
            start = cut
    return spans if len(spans) > 1 else []


def _strip_span(text: str, span: Span) -> Span | None:
    start, end = span.start, span.end
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return Span(start, end) if end > start else None
