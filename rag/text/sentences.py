"""Sentence segmentation with exact offsets (pysbd on a masked copy of the text), in linear time.

pysbd's cost grows with the square of what it reads (a 256 KB paragraph took 50 s), so it never
reads more than `MAX_PIECE_CHARS` at once: a longer block is first cut at its last sentence end
(or space) before the limit. Sentences glued to the next with no space are then cut apart, and a
sentence longer than `MAX_SENTENCE_CHARS` (a scraped list run together, a line of code or base64)
is cut at its last clause break before the limit, else at a space, else at the limit: nothing
quoted is longer, and nothing embedded is longer than the model reads.
"""

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


# A sentence glued to the next with no space, as text scraped from block elements leaves it
# ("…à ces opérations.Si vous êtes inscrit…"): a lower-case letter, a closing bracket or quote, an
# end mark, the brackets or quotes it closes ("…moins conservatrice.)Notez que…"), then an
# upper-case letter. The segmenter reads this as one word.
CLOSING = r"(?:[)\]\"”’]|[ \u00a0\u202f]?»)*"  # a French closing quote may keep its space: "fini. »"
CLOSERS = re.compile(CLOSING)
GLUED_END = re.compile(rf"(?<=[a-zß-öø-ÿœ)\]»\"”’])[.!?]{CLOSING}(?=[A-ZÀ-ÖØ-ÞŒ])")
WORD_BEFORE = re.compile(r"\S*$")
LOOK_BACK = 200  # characters read back from a glued end for the word it closes
WORD_AFTER = re.compile(r"[^\W_]*")
# Lower-case abbreviations that a capitalized name or title follows ("cf.Section 7", "av.Foch").
ABBREVIATIONS = frozenset({
    "cf", "av", "bd", "mme", "mmes", "mlle", "mlles", "mm", "dr", "pr", "st", "ste", "mr", "mrs", "ms", "jr", "sr",
    "vs", "fig", "art", "chap", "vol", "ex", "p", "pp", "no", "réf", "éd", "coll", "inc", "ltd", "co", "corp", "dept",
    "ca", "op", "www"})
# How a file or domain name ends, so that a sentence may end just after one ("config.yaml.Le reste…").
NAME_ENDINGS = frozenset({
    "fr", "com", "org", "net", "eu", "be", "ch", "ca", "de", "uk", "io", "gouv", "txt", "md", "pdf", "html", "htm",
    "json", "yaml", "yml", "xml", "csv", "conf", "cfg", "ini", "log", "sh", "py", "js", "css", "doc", "docx", "odt",
    "xls", "xlsx", "zip", "gz", "deb", "png", "jpg", "svg", "list"})


def word_before(segment: str, mark: int) -> str:
    """The word an end mark closes, with the brackets or quotes between them; a French closing quote
    keeps its space ("« aa ».D’abord": the word is "aa »", not a lone "»")."""
    start = max(0, mark - LOOK_BACK)
    before = WORD_BEFORE.search(segment, start, mark).group()
    space = mark - len(before) - 1
    if before and not before.strip("»") and space > start and segment[space] in " \u00a0\u202f":
        return WORD_BEFORE.search(segment, start, space).group() + segment[space:mark]
    return before


def is_glued_end(segment: str, mark: int) -> bool:
    """Whether the end mark at `mark`, between a word and a capital with no space, ends a sentence:
    not after an abbreviation or a single letter ("e.Leclerc", "cf.Section"), not inside a dotted name
    ("java.util.List", "a.b/C"), not before a file extension in capitals ("photo.JPG") or code
    ("String.Format(", "obj.Field.x")."""
    before = word_before(segment, mark)
    letters = before.strip("()[]«»\"”’' \u00a0\u202f").lower()
    if len(letters) < 2 or letters in ABBREVIATIONS or "/" in before or "@" in before:
        return False
    if (segment[mark] == "." and before.rsplit(".", 1)[-1].lower() not in NAME_ENDINGS
            and any(ch == "." and i + 1 < len(before) and not before[i + 1].isupper() for i, ch in enumerate(before))):
        return False  # "java.util" + ".List": a dotted name, whose other dots open no sentence
    begin = CLOSERS.match(segment, mark + 1).end()  # the next sentence starts after what the mark closes
    after = WORD_AFTER.match(segment, begin, min(len(segment), begin + LOOK_BACK)).group()
    rest = segment[begin + len(after) : begin + 2 + len(after)]
    if after.isupper() and len(after) <= 4 and rest[:1] not in ("'", "’"):
        return False  # an extension or an acronym glued to a name ("README.TXT", "ASP.NET"); "L'", "D’" are words
    # Code: a call, an identifier, or a dotted chain going on ("String.Format(", "obj.Field.x").
    return not (rest[:1] in ("(", "_") or (rest[:1] == "." and rest[1:2].isalnum()))


def unglue(segment: str, start: int, end: int) -> list[tuple[int, int]]:
    """`segment[start:end]` cut after each glued sentence end (`is_glued_end`)."""
    pieces, cursor = [], start
    for match in GLUED_END.finditer(segment, start, end):
        if is_glued_end(segment, match.start()):
            pieces.append((cursor, match.end()))
            cursor = match.end()
    pieces.append((cursor, end))
    return pieces


MAX_PIECE_CHARS = 4000  # the most pysbd reads at once (64 KB took it 3.5 s, 4 KB about 15 ms)
MAX_SENTENCE_CHARS = 500  # the longest sentence quoted or embedded (the model reads about 512 tokens)
PIECE_END = re.compile(r"[.!?…][\"»”’)\]]*\s+(?=[\"«“(\[]?[^\W\d_])")
CLAUSE_END = re.compile(r"[,;:)\]»]\s|\s[-–—]\s")
SPACE = re.compile(r"\s")


def _last_cut(pattern: re.Pattern[str], segment: str, start: int, end: int) -> int | None:
    """The end of the last match of `pattern` inside `segment[start:end]` past its first quarter."""
    cut = None
    for match in pattern.finditer(segment, start + (end - start) // 4, end):
        cut = match.end()
    return cut


def cut_to(segment: str, start: int, end: int, limit: int, breaks: re.Pattern[str]) -> list[tuple[int, int]]:
    """`segment[start:end]` in pieces of at most `limit` characters, each cut after the last `breaks`
    match before the limit, else after the last space, else at the limit. Linear in the length."""
    pieces = []
    while end - start > limit:
        stop = start + limit
        cut = _last_cut(breaks, segment, start, stop) or _last_cut(SPACE, segment, start, stop) or stop
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def _stripped(segment: str, start: int, end: int) -> tuple[int, int]:
    while start < end and segment[start].isspace():
        start += 1
    while end > start and segment[end - 1].isspace():
        end -= 1
    return start, end


def _segmented(segment: str, start: int, end: int, language: str) -> list[tuple[int, int]]:
    """pysbd's sentences of `segment[start:end]`, located by searching forward (offsets exact)."""
    piece = segment[start:end]
    with _lock:  # pysbd keeps state on its segmenter objects
        found_pieces = _segmenter(language).segment(piece)
    out, cursor = [], 0
    for found_piece in found_pieces:
        stripped = found_piece.strip()
        if not stripped:
            continue
        found = piece.find(stripped, cursor)
        if found < 0:  # the segmenter altered the text: the whole rest of the piece is one sentence
            out.append((start + cursor, end))
            break
        cursor = found + len(stripped)
        out.append((start + found, start + cursor))
    return out


def split_sentences(text: str, block: Span, language: str) -> list[Span]:
    """Sentence spans inside `block`, stripped, with offsets exact in `text`.

    The segmenter reads a masked copy (markup turned into letters of the same
    length), so "![espion](http://…)" or "<img …>" never ends a sentence; sentences
    glued with no space between them ("opérations.Si") are then cut apart (`unglue`),
    and none is longer than `MAX_SENTENCE_CHARS`.
    """
    # A block of several lines is a list with its lead-in: one statement, whatever the line breaks.
    segment = mask_markup(text[block.start : block.end]).replace("\n", " ")
    spans: list[Span] = []
    for piece_start, piece_end in cut_to(segment, 0, len(segment), MAX_PIECE_CHARS, PIECE_END):
        for begin, stop in _segmented(segment, piece_start, piece_end, language):
            for glued_start, glued_end in unglue(segment, begin, stop):
                for start, end in cut_to(segment, glued_start, glued_end, MAX_SENTENCE_CHARS, CLAUSE_END):
                    start, end = _stripped(segment, start, end)
                    if end > start and re.search(r"\w", segment[start:end]):
                        spans.append(Span(block.start + start, block.start + end))
    return spans
