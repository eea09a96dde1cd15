"""Sentence segmentation with exact offsets (pysbd on a masked copy of the text)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

from ..records import Span
from .language import LANGUAGES

_lock = threading.Lock()


@lru_cache(maxsize=4)
def _segmenter(language: str) -> Any:
    import pysbd

    return pysbd.Segmenter(language=language if language in LANGUAGES else "en", clean=False, char_span=False)


# Markup whose punctuation is not a sentence end: Markdown images and links, HTML tags, URLs.
MARKUP = re.compile(r'!?\[[^\]\n]{0,300}\]\([^)\s]{0,500}\)|<[^<>\n]{1,500}>|\b(?:https?|ftp)://[^\s<>"]*[^\s<>".,;:!?)»]')


def mask_markup(segment: str) -> str:
    """The same text with markup replaced by letters of the same length, so offsets still match."""
    return MARKUP.sub(lambda m: "x" * len(m.group()), segment)


def split_sentences(text: str, block: Span, language: str) -> list[Span]:
    """Sentence spans inside `block`, stripped, located by searching forward so offsets are exact.

    The segmenter reads a masked copy (markup turned into letters of the same
    length), so "![espion](http://…)" or "<img …>" never ends a sentence.
    """
    # A block of several lines is a list with its lead-in: one statement, whatever the line breaks.
    segment = mask_markup(text[block.start : block.end]).replace("\n", " ")
    with _lock:  # pysbd keeps state on its segmenter objects
        pieces = _segmenter(language).segment(segment)
    spans: list[Span] = []
    cursor = 0
    for piece in pieces:
        stripped = piece.strip()
        if not stripped:
            continue
        found = segment.find(stripped, cursor)
        if found < 0:  # the segmenter altered the text: fall back to the whole rest of the block
            rest = segment[cursor:].strip()
            if rest:
                begin = segment.find(rest, cursor)
                spans.append(Span(block.start + begin, block.start + begin + len(rest)))
            break
        cursor = found + len(stripped)
        if re.search(r"\w", stripped):
            spans.append(Span(block.start + found, block.start + cursor))
    return spans
