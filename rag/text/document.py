"""From a file's raw text to a cleaned `Document` and its passage and sentence spans (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from ..digest import text_hash
from ..ingest.clean import clean
from ..ingest.files import RawText
from ..records import Document, Sentence
from .analyzer import analyze
from .chunks import Chunk, ChunkSettings, chunk_blocks
from .language import detect_language


@dataclass(frozen=True)
class SplitDocument:
    """A document and its passages (each a run of sentence spans), in reading order, with the
    language each sentence is written in (a French page may quote English lines)."""

    document: Document
    chunks: tuple[Chunk, ...]
    languages: tuple[str, ...] = ()  # one per sentence span, chunk after chunk


def sentence_languages_of(text: str, chunks: tuple[Chunk, ...], default: str) -> tuple[str, ...]:
    """The language of each sentence of `chunks` ("fr"/"en"; `default` when too short to tell)."""
    return tuple(detect_language(text[s.start : s.end], default=default) for c in chunks for s in c.sentences)


def found_by(document: Document, start: int, text: str, title: bool) -> str:
    """The words a row (a passage or a sentence at `start`) is found by: its own, its section heading's
    ("/etc/skel" above "Quand un nouveau compte est créé, les fichiers de ce répertoire sont copiés…";
    "Durée" above "Elle ne peut excéder un mois."), and with `title` its document's stated title ("#
    Comment résilier mon abonnement ?" above "Envoyez une lettre recommandée…"). A passage is found by
    its title, a sentence is not: a passage's words choose where to look, a sentence's which one of
    the document to quote, and words that every sentence of a document shares only dilute that choice
    (why the title was left out of every row at first; that reason holds for sentences only)."""
    section = document.section_at(start)
    above = [section] if section and section != document.title else []
    if title and document.title_stated:
        above.insert(0, document.title)
    return "\n".join([*above, text])


def heading_terms(documents: Mapping[str, Document], sentences: Iterable[Sentence]) -> dict[str, int]:
    """How many sentences hold each term through the section heading above them only, not in their own
    words (`found_by` gives BM25 both). What a sentence says is told by its own words: a heading over
    fifteen of a short collection's forty sentences must not make its words common to them all."""
    counts: Counter[str] = Counter()
    for sentence in sentences:
        document = documents[sentence.doc_id]
        found = found_by(document, sentence.start, sentence.text, title=False)
        if found != sentence.text:
            counts.update(set(analyze(found, document.language)) - set(analyze(sentence.text, document.language)))
    return dict(sorted(counts.items()))


def split_document(raw: RawText, settings: ChunkSettings, repeated: Collection[str] = frozenset()) -> SplitDocument:
    """`repeated`: the collection's furniture lines (ingest.clean.repeated_lines), when it has some."""
    cleaned = clean(raw.text, raw.title_hint, settings.cleaning, repeated)
    body = " ".join(raw.text[b.start : b.end] for b in cleaned.blocks[:20])
    language = detect_language(body or raw.text[:2000])
    metadata = list(cleaned.metadata)
    if raw.page_starts:
        metadata.append(("page_starts", ",".join(str(s) for s in raw.page_starts)))
    document = Document(
        doc_id=text_hash(raw.text)[:16],
        source=raw.source,
        title=cleaned.title,
        text=raw.text,
        kind=raw.kind,
        language=language,
        year=cleaned.year,
        sha256=raw.sha256,
        blocks=cleaned.blocks,
        metadata=tuple(metadata),
        definitions=cleaned.definitions,
        dropped=cleaned.dropped,
        headings=tuple((h.start, raw.text[h.start : h.end].lstrip("#").strip()) for h in cleaned.headings),
        title_stated=cleaned.title_stated,
    )
    chunks = tuple(chunk_blocks(raw.text, cleaned.blocks, language, settings))
    return SplitDocument(document, chunks, sentence_languages_of(raw.text, chunks, language))
