"""What a document becomes before it is embedded: its passages, sentences, clauses and title as
records with ids from 0, and the vector-cache key of the texts to embed (pure, apart from the
split of documents an older index already holds)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from typing import Callable


from ..config import Settings
from ..ingest.clean import furniture_in, repeated_lines
from ..ingest.files import RawText
from ..records import Passage, Sentence, Skipped, Span
from ..digest import text_hash
from ..text.chunks import Chunk, ChunkSettings, clause_spans
from ..text.document import SplitDocument, sentence_languages_of, split_document
from .reader import IndexReader
from .vector_cache import entry_key


log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stages are "reading", "splitting", "embedding", "writing"."""


def no_progress(stage: str, done: int, total: int) -> None:
    return None


def skip(skipped: list[Skipped], source: str, reason: str) -> None:
    log.info("skipped %s: %s", source, reason)
    skipped.append(Skipped(source, reason))


@dataclass(frozen=True)
class Planned:
    """One document, split, with the texts to embed and their records (ids from 0)."""

    split: SplitDocument
    passages: tuple[Passage, ...]
    sentences: tuple[Sentence, ...]
    clauses: tuple[tuple[int, str], ...]  # (sentence number within the document, clause text)
    key: str  # the vector cache entry: model + every text embedded
    split_key: str = ""  # what the split depends on (`split_key`): equal keys, equal splits

    @property
    def titles(self) -> list[str]:
        """The title to embed: the document's own, when it states one (a page's `# question`, its <title>)."""
        document = self.split.document
        return [document.title] if document.title_stated and document.title.strip() else []

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return len(self.passages), len(self.sentences), len(self.clauses), len(self.titles)

    def texts(self) -> list[str]:
        return [p.text for p in self.passages] + [s.text for s in self.sentences] + [t for _, t in self.clauses] \
            + self.titles


def chunk_settings(settings: Settings) -> ChunkSettings:
    """How documents split, as the settings say (RAG_CLEANING); part of the manifest, so a change rebuilds."""
    return ChunkSettings(cleaning=settings.cleaning)


def plan_document(split: SplitDocument, model_id: str, split_key: str = "") -> Planned:
    """The records and texts of one document. Raises ValueError on a span that cannot be."""
    passages, sentences = records_of(split, 0, 0)
    text = split.document.text
    clauses = tuple((number, text[c.start : c.end]) for number, s in enumerate(sentences)
                    for c in clause_spans(text, Span(s.start, s.end)))
    planned = Planned(split, tuple(passages), tuple(sentences), clauses, "")
    # Separators between the kinds, so the same texts in other roles make another key.
    texts, start = [], 0
    for count in planned.counts:
        texts += planned.texts()[start : start + count] + ["\x01"]
        start += count
    return Planned(split, tuple(passages), tuple(sentences), clauses, entry_key(model_id, texts), split_key)


def split_key(raw: RawText, furniture: frozenset[str]) -> str:
    """Everything a document's split depends on besides the chunking settings: its name, its text,
    and the collection's furniture lines it holds (the rule "repeated" drops them)."""
    digest = hashlib.sha256(f"{raw.source}\0{raw.sha256}\0{text_hash(raw.text)}".encode("utf-8", "surrogatepass"))
    for line in sorted(furniture):
        digest.update(b"\0" + line.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def reusable_splits(old: IndexReader | None, chunking: ChunkSettings) -> dict[str, str]:
    """The served version's documents by their split key (key → doc_id), when it was split the same
    way: a document whose key is unchanged is read back, not split again (a 16 MB page costs a
    minute). Only the documents that match are read back, when they are planned."""
    if old is None or old.manifest.get("chunking") != chunking.as_dict():
        return {}
    return {entry["split_key"]: entry["doc_id"] for entry in old.manifest.get("documents", [])
            if entry.get("split_key") and entry.get("doc_id") in old.documents}


def split_from_index(index: IndexReader, doc_id: str) -> SplitDocument:
    """A document's split as an index version holds it: its passages, each with its sentences."""
    document = index.documents[doc_id]
    text = index.document_text(doc_id)
    if document.text != text:  # a store that keeps texts apart from the metadata (Milvus)
        document = dataclasses.replace(document, text=text)
    passages = index.passages_by_id(index.passage_ids_of(doc_id))
    sentences = {s.sentence_id: s for s in index.sentences_by_id([i for p in passages for i in p.sentence_ids])}
    chunks = tuple(Chunk(Span(p.start, p.end), tuple(Span(sentences[i].start, sentences[i].end) for i in p.sentence_ids))
                   for p in passages)
    languages = tuple(sentences[i].language for p in passages for i in p.sentence_ids)
    if not all(languages):  # a version written before sentences recorded their language
        languages = sentence_languages_of(document.text, chunks, document.language)
    return SplitDocument(document, chunks, languages)


def plan_documents(raws: list[RawText], chunking: ChunkSettings, model_id: str, skipped: list[Skipped],
                   progress: Progress = no_progress, served: IndexReader | None = None) -> list[Planned]:
    """Each document split (or read back from `served`, the version being replaced, when its split
    key is unchanged) and planned."""
    planned = []
    known = reusable_splits(served, chunking)
    # Furniture is a property of the collection: a line most pages repeat says nothing of any one.
    repeated = repeated_lines(raw.text for raw in raws) if "repeated" in chunking.cleaning else frozenset()
    for number, raw in enumerate(raws, 1):
        progress("splitting", number, len(raws))
        key = split_key(raw, furniture_in(raw.text, repeated))
        try:
            split = split_from_index(served, known[key]) if served is not None and key in known \
                else split_document(raw, chunking, repeated)
            item = plan_document(split, model_id, key)
        except Exception as exc:  # cleaning and segmentation are pure: a failure is this document's alone
            log.exception("splitting %s failed", raw.source)
            skip(skipped, raw.source, f"could not be split into sentences ({type(exc).__name__}: {exc})")
            continue
        if not item.passages:
            skip(skipped, raw.source, "no sentences left after cleaning")
            continue
        planned.append(item)
    return planned


def records_of(split: SplitDocument, first_passage: int, first_sentence: int) -> tuple[list[Passage], list[Sentence]]:
    doc = split.document
    definitions = {(d.start, d.end) for d in doc.definitions}
    passages, sentences = [], []
    for position, chunk in enumerate(split.chunks):
        passage_id = first_passage + position
        ids = []
        for span in chunk.sentences:
            sentence_id = first_sentence + len(sentences)
            sentences.append(Sentence(sentence_id, doc.doc_id, passage_id, span.start, span.end,
                                      doc.text[span.start : span.end], split.languages[sentence_id - first_sentence]))
            ids.append(sentence_id)
        is_definition = any(s <= chunk.span.start and chunk.span.end <= e for s, e in definitions)
        passages.append(Passage(
            passage_id=passage_id, doc_id=doc.doc_id, source=doc.source, title=doc.title, year=doc.year,
            start=chunk.span.start, end=chunk.span.end, text=doc.text[chunk.span.start : chunk.span.end],
            sentence_ids=tuple(ids), position=position, kind="definition" if is_definition else "body",
        ))
    return passages, sentences
