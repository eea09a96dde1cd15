"""Where a build writes and where the app reads: a folder of files (FAISS + bm25s, the
default) or a version in Milvus behind an alias. One object per store, so the build
stage never asks which one it has.

Both answer the same four questions: is the store there (said before minutes of
embedding), what index does it serve now, which vectors can a new build reuse, and
write this new version.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import Settings
from ..errors import IndexStoreError
from ..records import Document, Passage, Sentence
from .dense import build_faiss, write_faiss
from .lexical import LexicalIndex
from .reader import IndexReader
from .store import HEADING_TERMS, document_to_json, exists, load, served_manifest, write_jsonl, write_version
from .vector_cache import DocumentVectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewVersion:
    """Everything one index version holds, in id order: what a build made, ready for either store."""

    manifest: dict[str, Any]
    documents: list[Document]
    passages: list[Passage]
    sentences: list[Sentence]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    clause_vectors: np.ndarray
    clause_sentence: np.ndarray
    passage_lexical: LexicalIndex  # BM25 over each unit, analyzed in its document's language
    sentence_lexical: LexicalIndex
    faiss_kind: str
    title_vectors: np.ndarray  # one row per document, in `documents` order; zeros where it states no title
    heading_terms: dict[str, int] = field(default_factory=dict)  # text.document.heading_terms


class Target(Protocol):
    def check(self) -> None: ...

    def current(self, embedder: Any) -> IndexReader | None: ...

    def served_manifest(self) -> dict[str, Any] | None: ...

    def served(self) -> IndexReader | None: ...

    def reusable_vectors(self, model_id: str, chunking: dict[str, Any], old: Any = None
                         ) -> dict[str, DocumentVectors]: ...

    def write(self, version: NewVersion) -> IndexReader: ...


def target_for(index_dir: Path, settings: Settings) -> Target:
    return MilvusTarget(settings) if settings.store == "milvus" else FolderTarget(index_dir)


class FolderTarget:
    """Versions of files in the index folder, the newest named by CURRENT."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def check(self) -> None:
        return None  # the folder is created by the write; nothing to reach first

    def current(self, embedder: Any) -> IndexReader | None:
        """The index in the folder, or None when there is none or another model made it (both are
        built from the documents). A damaged current version gives the previous one (its `note` says
        so); when no version is usable, IndexStoreError: re-embedding everything is the user's call."""
        if not exists(self.index_dir):
            return None
        index = load(self.index_dir)
        if index.model_id != embedder.model_id:
            log.warning("the index in %s was made by %s; embedding the documents again with %s",
                        self.index_dir, index.model_id, embedder.model_id)
            return None
        return index

    def served_manifest(self) -> dict[str, Any] | None:
        """The manifest of the version CURRENT names (read alone, nothing loaded), None without one."""
        return served_manifest(self.index_dir)

    def served(self) -> IndexReader | None:
        """The version served now, whatever model made it; None when there is none or none is usable."""
        if not exists(self.index_dir):
            return None
        try:
            return load(self.index_dir)
        except IndexStoreError:
            return None

    def reusable_vectors(self, model_id: str, chunking: dict[str, Any], old: Any = None
                         ) -> dict[str, DocumentVectors]:
        """Vectors of the current index (`old`, when loaded already) per document, when it was made by
        the same model and chunking."""
        old = old if old is not None else self.served()
        if old is None:
            return {}
        if old.model_id != model_id or old.manifest.get("chunking") != chunking:
            return {}
        reusable: dict[str, DocumentVectors] = {}
        number = {doc_id: n for n, doc_id in enumerate(old.doc_ids)}
        for doc_id, passage_ids in old.doc_passages.items():
            doc = old.documents[doc_id]
            sentence_ids = [s for p in passage_ids for s in old.passages[p].sentence_ids]
            clause_rows = np.flatnonzero(np.isin(old.clause_sentence, sentence_ids))
            title = old.title_vectors[number[doc_id] : number[doc_id] + 1] if doc.title_stated \
                else np.zeros((0, old.dim), np.float32)
            reusable[f"{doc_id}:{doc.source}"] = DocumentVectors(
                old.passage_vectors[list(passage_ids)], old.sentence_vectors[sentence_ids],
                old.clause_vectors[clause_rows], np.asarray(title, dtype=np.float32))
        return reusable

    def write(self, version: NewVersion) -> IndexReader:
        dim = version.passage_vectors.shape[1]
        files = {
            "documents.jsonl": lambda path: write_jsonl(path, [document_to_json(doc) for doc in version.documents]),
            "passages.jsonl": lambda path: write_jsonl(path, [asdict(p) for p in version.passages]),
            "sentences.jsonl": lambda path: write_jsonl(path, [asdict(s) for s in version.sentences]),
            "passages.npy": lambda path: np.save(path, version.passage_vectors, allow_pickle=False),
            "sentences.npy": lambda path: np.save(path, version.sentence_vectors, allow_pickle=False),
            "passages.faiss": lambda path: write_faiss(build_faiss(version.passage_vectors, dim, version.faiss_kind),
                                                       path),
            "clauses.npy": lambda path: np.save(path, version.clause_vectors, allow_pickle=False),
            "clause_sentence.npy": lambda path: np.save(path, version.clause_sentence, allow_pickle=False),
            "titles.npy": lambda path: np.save(path, version.title_vectors, allow_pickle=False),
            "bm25-passages": lambda path: version.passage_lexical.save(path),
            "bm25-sentences": lambda path: version.sentence_lexical.save(path),
            HEADING_TERMS: lambda path: path.write_text(json.dumps(version.heading_terms, ensure_ascii=False),
                                                        encoding="utf-8"),
        }
        folder = write_version(self.index_dir, version.manifest, files)
        index = load(self.index_dir)
        if index.folder != folder:
            raise IndexStoreError(f"the new index {folder} was written but could not be loaded back")
        return index


class MilvusTarget:
    """Versions of five collections in Milvus, the served one named by the alias."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _connection(self) -> Any:
        from .milvus import connect

        return connect(self.settings)

    def check(self) -> None:
        """An unreachable Milvus is said before minutes of reading and embedding."""
        self._connection().served_version()

    def current(self, embedder: Any) -> IndexReader | None:
        """The version the alias serves, if any; refused when another model made it, since
        re-embedding would change the vectors under every other process reading the same alias."""
        from .milvus import open_served

        connection = self._connection()
        served = open_served(connection)
        if served is not None and (served.model_id != embedder.model_id or served.dim != embedder.dim):
            raise IndexStoreError(
                f"the Milvus collection {connection.prefix!r} at {connection.uri} holds vectors of "
                f"{served.model_id} ({served.dim} dimensions), not of {embedder.model_id} ({embedder.dim}); set "
                "RAG_EMBED_MODEL to its model, choose another RAG_MILVUS_COLLECTION, or re-embed it on purpose "
                "with: rag build --store milvus")
        return served

    def served_manifest(self) -> dict[str, Any] | None:
        served = self.served()
        return served.manifest if served is not None else None

    def served(self) -> IndexReader | None:
        from .milvus import open_served

        return open_served(self._connection())

    def reusable_vectors(self, model_id: str, chunking: dict[str, Any], old: Any = None
                         ) -> dict[str, DocumentVectors]:
        old = old if old is not None else self.served()
        if old is None or old.model_id != model_id or old.manifest.get("chunking") != chunking:
            return {}
        return {f"{doc_id}:{source}": DocumentVectors(p, s, c, t) for doc_id, source, p, s, c, t in old.document_vectors()}

    def write(self, version: NewVersion) -> IndexReader:
        from .milvus import MilvusIndex, dense_index, write_version as write_milvus

        connection = self._connection()
        index_type, _ = dense_index(len(version.passages), self.settings.faiss_index)
        manifest = {key: value for key, value in version.manifest.items() if key != "faiss"}
        manifest["milvus"] = {"passages": index_type, "metric": "IP",
                              "sparse": "SPARSE_INVERTED_INDEX, IP over BM25 rows"}
        version = replace(version, manifest=manifest)
        return MilvusIndex(connection, write_milvus(connection, version, self.settings.faiss_index))
