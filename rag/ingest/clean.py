"""Decide which spans of a document are body text, without rewriting a character.

A scraped page carries furniture a reader must never be quoted: category lines,
URL slugs, author-box buttons, photo credits, lists of related articles, and
glossary tooltips glued into the sentence they explain ("Social SellingLe social
selling consiste à …, et…"). Cleaning returns *spans* of the original text, so
every later offset is an offset into the file as read.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ..config import CLEANING_RULES
from ..records import Definition, Span

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)+$")
# A year, as documents are dated by it and questions choose documents by it (the one definition).
YEAR = re.compile(r"(?<!\d)(?:19[5-9]\d|20\d\d)(?!\d)")
TERMINAL = tuple(".!?…:;»\"”)")
# A glossary tooltip starts where a lower-case letter runs straight into an
# article with no space: "SellingLe social selling …", "blancLe livre blanc …".
GLUED_ARTICLE = re.compile(r"(?<=[a-zà-ÿ0-9])(?P<article>Le |La |Les |L[’']|The |An |A )(?=\w)")
# The tooltip ends with a full stop followed by the interrupted sentence,
# which resumes with a comma or a lower-case word: "commerciales., et…", "expertise. paru".
TOOLTIP_END = re.compile(r"\.(?=,|\s+[a-zà-ÿ])")
WORD = re.compile(r"[\w’'-]+")
LEADING_JUNK = " \t,;:"


@dataclass(frozen=True)
class Cleaned:
    title: str
    blocks: tuple[Span, ...]
    metadata: tuple[tuple[str, str], ...]
    definitions: tuple[Definition, ...]
    dropped: tuple[tuple[str, int, int], ...]  # (reason, start, end)
    headings: tuple[Span, ...]
    year: int | None
    title_stated: bool = False  # the title is the page's own (its heading, <title>, a PDF's), not its first words


@lru_cache(maxsize=1)
def boilerplate_patterns() -> tuple[re.Pattern[str], ...]:
    lines = resources.files("rag.data").joinpath("boilerplate.txt").read_text(encoding="utf-8").splitlines()
    return tuple(re.compile(line, re.IGNORECASE) for line in lines if line.strip() and not line.startswith("#"))


def is_boilerplate(line: str) -> bool:
    return any(pattern.fullmatch(line) for pattern in boilerplate_patterns())


# A body line found word for word in this many documents, and in this share of them, is the
# site's furniture (footer, licence, "Partager sur Facebook", "--help afficher l'aide-mémoire et
# quitter."), not what any one page says. The share keeps the clauses a few pages share
# ("Le délai de recours est de deux mois.") and two documents never make furniture.
REPEATED_MIN_DOCUMENTS = 3
REPEATED_MIN_SHARE = 0.25


def repeated_lines(texts: Iterable[str], min_documents: int = REPEATED_MIN_DOCUMENTS,
                   min_share: float = REPEATED_MIN_SHARE) -> frozenset[str]:
    """The lines (stripped) that stand word for word in enough of `texts` to be furniture."""
    counts: Counter[str] = Counter()
    total = 0
    for text in texts:
        total += 1
        counts.update(_lines(text))
    least = max(min_documents, math.ceil(min_share * total))
    return frozenset(line for line, count in counts.items() if count >= least)


def furniture_in(text: str, repeated: Collection[str]) -> frozenset[str]:
    """The collection's furniture lines this text holds: all of the collection that its cleaning reads."""
    return frozenset(_lines(text) & set(repeated)) if repeated else frozenset()


def _lines(text: str) -> set[str]:
    """The text's lines as `clean` reads them (`line_spans`), so that `content in repeated` matches."""
    return {text[span.start : span.end] for span in line_spans(text)}


def line_spans(text: str) -> list[Span]:
    """Spans of the non-blank lines, stripped of surrounding white space."""
    spans = []
    position = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped and any(ch.isalnum() for ch in stripped):
            start = position + (len(raw) - len(raw.lstrip()))
            spans.append(Span(start, start + len(stripped)))
        position += len(raw) + 1
    return spans


def word_count(line: str) -> int:
    return len(WORD.findall(line))


MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+\S")
# "3.2.1. Je sais que Knoppix est basée sur Debian. Puis-je utiliser apt ?": a section number with
# its closing dot. "1.5 million d'abonnés…" opening a paragraph has none.
NUMBERED_HEADING = re.compile(r"^\d{1,3}(?:\.\d{1,3})+\.\s+\S")
MAX_NUMBERED_HEADING_WORDS = 40


def is_heading(line: str) -> bool:
    """A title or section heading: a Markdown heading ("## Qui est concerné ?"), a numbered one
    ("6.2.1. Quels noms de code ont déjà été utilisés ?"), a short question standing on its own
    line ("Qui peut en bénéficier ?", a FAQ's entry), or a short line that does not end like a
    sentence. Headings give sections their names; they are never quoted."""
    if MARKDOWN_HEADING.match(line):
        return True
    words = word_count(line)
    if NUMBERED_HEADING.match(line):
        return words <= MAX_NUMBERED_HEADING_WORDS
    end = line.rstrip()
    return words <= 14 and (end.endswith("?") or not end.endswith(TERMINAL))


LIST_MARKER = re.compile(r"^(?:[-*•·–—▪►]|\d{1,3}[.)°]|[a-z][.)])\s")
CONTINUES = tuple(",;:-–—(/&+")
SENTENCE_END = (".", "!", "?", "…")
MAX_LIST_CHARS = 1200  # a longer list is quoted in parts: one item per block past this


def is_list_item(line: str, previous: str, in_list: bool = False) -> bool:
    """An item of a list, which is body text however short: it wears a list marker ("- ", "1. "),
    ends as an item that goes on (","), follows a line that announces a list ("… dans le cadre :")
    or an item that went on, or opens in lower case inside a list ("de confirmer un projet").
    A heading does none of these: it stands after a finished sentence. Outside a list, a short
    line in lower case is a term or a name ("/etc/skel", "sleep(3)"): the heading of what follows."""
    if LIST_MARKER.match(line):
        return True
    if line.rstrip().endswith(CONTINUES):
        return True
    if previous and previous.rstrip().endswith(CONTINUES):
        return True
    return in_list and line[:1].islower()


TERM_START = re.compile(r"^(?:[-/\\\[.~@%]|[a-zà-ÿ])")
# "-C     afficher en colonnes", "\\n     saut de ligne": a term, a gap of spaces, what it means.
INLINE_DEFINITION = re.compile(r"^(?:-\S+|\S{1,15})(?:,\s+-\S+)*\s{2,}\w")


def is_term(line: str) -> bool:
    """A term a definition list defines ("-f, --force", "/etc/skel", "none, off"): a short line that
    opens in lower case or with a symbol. What follows it is its definition, however short."""
    return bool(TERM_START.match(line)) and not MARKDOWN_HEADING.match(line)


def is_definition(line: str, after_term: bool) -> bool:
    """The definition of a term: the line under it ("ne pas écraser un fichier existant" under
    "-n, --no-clobber"), or a line that holds both ("-C     afficher en colonnes"). Body text."""
    return after_term or bool(INLINE_DEFINITION.match(line))


def is_section_label(line: str) -> bool:
    """One or two words in capitals: the name of a part ("NOM", "DESCRIPTION", "VOIR AUSSI")."""
    words = WORD.findall(line)
    return 0 < len(words) <= 2 and line.upper() == line and any(ch.isalpha() for ch in line)


def is_header_furniture(line: str) -> str | None:
    """Category lines and URL slugs that sit between a title and the body."""
    if SLUG.match(line):
        return "slug"
    if word_count(line) <= 5 and not line.endswith(TERMINAL):
        return "category"
    return None


def find_glued_definitions(text: str, line: Span) -> list[tuple[Definition, Span]]:
    """Tooltips inside one line: (definition, span removed from the body)."""
    found: list[tuple[Definition, Span]] = []
    segment = text[line.start : line.end]
    for match in GLUED_ARTICLE.finditer(segment):
        before = WORD.findall(segment[: match.start()])[-4:]
        after = [w.lower() for w in WORD.findall(segment[match.end() :])[:4]]
        if not before or before[-1].lower() not in after:
            continue
        # The term is as many words before the boundary as the definition repeats.
        repeated = after.index(before[-1].lower()) + 1
        term = " ".join(before[-repeated:])
        end_match = TOOLTIP_END.search(segment, match.end())
        end = end_match.end() if end_match else len(segment)
        start = line.start + match.start()
        stop = line.start + end
        found.append((Definition(term, start, stop), Span(start, stop)))
    return found


def trim(text: str, span: Span) -> Span | None:
    """Drop leading separators (", et…" → "et…") and trailing spaces; None if nothing is left."""
    start, end = span.start, span.end
    while start < end and text[start] in LEADING_JUNK:
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end or not any(ch.isalnum() for ch in text[start:end]):
        return None
    return Span(start, end)


def split_around(text: str, line: Span, holes: list[Span]) -> list[Span]:
    pieces, cursor = [], line.start
    for hole in sorted(holes, key=lambda s: s.start):
        if hole.start > cursor:
            pieces.append(Span(cursor, hole.start))
        cursor = max(cursor, hole.end)
    if cursor < line.end:
        pieces.append(Span(cursor, line.end))
    return [s for s in (trim(text, p) for p in pieces) if s is not None]


def guess_year(*texts: str) -> int | None:
    """The year most often named, first in the title, then metadata, then body."""
    for text in texts:
        years = YEAR.findall(text)
        if years:
            return int(max(set(years), key=lambda y: (years.count(y), -years.index(y))))
    return None


@dataclass
class _Page:
    """What `clean` has read of one page so far, line by line."""

    text: str
    rules: Collection[str]
    repeated: Collection[str]
    title: str
    metadata: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[tuple[str, int, int]] = field(default_factory=list)
    blocks: list[Span] = field(default_factory=list)
    headings: list[Span] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    in_header: bool = True  # until the first line of body text
    previous: str = ""  # the last body line, which may announce a list
    in_list: bool = False  # the last body line was an item of a list
    open_list: Span | None = None  # the last block, when its line announces or continues a list
    title_next: bool = False  # the first line was a section label: the heading after it names the page
    after_term: bool = False  # the last line was a term: this one defines it

    def read(self, index: int, line: Span) -> None:
        content = self.text[line.start : line.end]
        if self._names_the_page(index, line, content) or self._header_furniture(index, line, content):
            return
        item = is_list_item(content, self.previous, self.in_list)
        if not self._heading_or_furniture(line, content, item):
            self._body(line, content, item)

    def _names_the_page(self, index: int, line: Span, content: str) -> bool:
        if index == 0 and is_heading(content):
            # A section label ("NOM", "SOMMAIRE") names a part of the page, not the page: the title
            # is then the next line (a manual page's "shred - Écrire par dessus un fichier…").
            self.title_next = not self.title and is_section_label(content)
            self.title = self.title or ("" if self.title_next else content)
            self.headings.append(line)
            return True
        if self.title_next and is_heading(content) and not is_list_item(content, ""):
            self.title, self.title_next = content, False  # "NOM" then "cp - Copier des fichiers et des répertoires"
            self.headings.append(line)
            return True
        self.title_next = False
        return False

    def _header_furniture(self, index: int, line: Span, content: str) -> bool:
        if self.in_header and index > 0 and "header" in self.rules:
            furniture = is_header_furniture(content)
            if furniture:
                self.metadata.append((furniture, content))
                self.dropped.append((furniture, line.start, line.end))
                return True
        self.in_header = False
        return False

    def _heading_or_furniture(self, line: Span, content: str, item: bool) -> bool:
        if "boilerplate" in self.rules and is_boilerplate(content):
            self.dropped.append(("boilerplate", line.start, line.end))
            self.open_list = None
            return True
        if is_heading(content) and not item and not is_definition(content, self.after_term):
            self.headings.append(line)
            self.previous, self.open_list, self.in_list = "", None, False
            self.after_term = is_term(content)
            return True
        self.after_term = False
        if "repeated" in self.rules and self.open_list is None and content in self.repeated:
            self.dropped.append(("repeated", line.start, line.end))  # a heading stays: it names this page's parts
            self.previous, self.in_list = "", False
            return True
        return False

    def _body(self, line: Span, content: str, item: bool) -> None:
        text = self.text
        self.previous, self.in_list = content, item and not content.rstrip().endswith(SENTENCE_END)
        glued = find_glued_definitions(text, line) if "tooltips" in self.rules else []
        if self.open_list is not None and not glued and line.end - self.open_list.start <= MAX_LIST_CHARS:
            # An item of the list its lead-in announced ("… dans le cadre :" / "d'un CDD d'insertion,"):
            # one statement with it, quoted whole, since an item alone says nothing.
            self.blocks[-1] = self.open_list = Span(self.open_list.start, line.end)  # the open list is the last block
            self.open_list = None if content.rstrip().endswith(SENTENCE_END) else self.open_list
            return
        for definition, hole in glued:
            self.definitions.append(definition)
            self.dropped.append(("tooltip", hole.start, hole.end))
            self.blocks.append(hole)  # quotable on its own, never inside the sentence it interrupted
        pieces = split_around(text, line, [hole for _, hole in glued])
        self.blocks.extend(pieces)
        announces = not glued and len(pieces) == 1 and content.rstrip().endswith(CONTINUES)
        self.open_list = pieces[0] if announces else None

    def cleaned(self) -> "Cleaned":
        text, blocks, title = self.text, sorted(self.blocks, key=lambda span: span.start), self.title
        stated = bool(title)
        if not title:
            first = text[blocks[0].start : blocks[0].end] if blocks else ""
            title = first[:80] if len(first) <= 80 else first[:80].rsplit(" ", 1)[0] + "…"
        title = title.lstrip("#").strip() or title  # a Markdown heading's marks are not part of its title
        body = " ".join(text[b.start : b.end] for b in blocks[:3])
        year = guess_year(title, " ".join(value for _, value in self.metadata), body)
        return Cleaned(title, tuple(blocks), tuple(self.metadata), tuple(self.definitions), tuple(self.dropped),
                       tuple(self.headings), year, stated)


def clean(text: str, title_hint: str = "", rules: Collection[str] = CLEANING_RULES,
          repeated: Collection[str] = frozenset()) -> Cleaned:
    """Split `text` into body blocks, headings, metadata, definitions and dropped furniture.
    `rules` (RAG_CLEANING) says which of the scraped-page rules apply; headings and the title
    are always recognized, since no site makes a heading an answer. `repeated`: the collection's
    furniture lines (`repeated_lines`), dropped from the body under the rule "repeated"."""
    page = _Page(text, rules, repeated, title_hint.strip())
    for index, line in enumerate(line_spans(text)):
        page.read(index, line)
    return page.cleaned()
