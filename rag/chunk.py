"""Passages: sentence-aligned windows that never leave a block (a paragraph, or a part
of one that a tooltip interrupted). Each sentence belongs to exactly one passage."""

from __future__ import annotations

from dataclasses import dataclass

from .records import Span
from .segment import split_sentences

CHUNKING_VERSION = 1


@dataclass(frozen=True)
class ChunkSettings:
    max_sentences: int = 4
    max_chars: int = 700

    def __post_init__(self) -> None:
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be at least 1, got {self.max_sentences}")
        if self.max_chars < 50:
            raise ValueError(f"max_chars must be at least 50, got {self.max_chars}")

    def as_dict(self) -> dict[str, int]:
        return {"version": CHUNKING_VERSION, "max_sentences": self.max_sentences, "max_chars": self.max_chars}


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
