"""From raw file text to a cleaned `Document` with its passage and sentence spans (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .chunk import Chunk, ChunkSettings, chunk_blocks
from .clean import clean
from .ingest import RawText
from .records import Document
from .segment import detect_language


@dataclass(frozen=True)
class PreparedDocument:
    document: Document
    chunks: tuple[Chunk, ...]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def prepare(raw: RawText, settings: ChunkSettings) -> PreparedDocument:
    cleaned = clean(raw.text, raw.title_hint)
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
        headings=tuple((h.start, raw.text[h.start : h.end]) for h in cleaned.headings),
    )
    chunks = tuple(chunk_blocks(raw.text, cleaned.blocks, language, settings))
    return PreparedDocument(document, chunks)
