"""Milvus: writing one index version (five collections) and serving it through the alias."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ...errors import IndexStoreError
from ..lexical import LexicalIndex
from ..store import document_to_json

from .connection import (EMPTY_DIMENSION, EMPTY_WEIGHT, FLAT_MAX, INSERT_ROWS, MAX_DOCS_PER_TERM, PART_CHARS, PARTS,
                         STALE_BUILD_SECONDS, TEXT_BYTES, Connection, new_version, term_key, version_time)

if TYPE_CHECKING:  # the build's record of a version; importing it here would be circular at run time
    from ..targets import NewVersion

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- rows

def sparse_rows(lexical: LexicalIndex) -> list[dict[int, float]]:
    """Each text's BM25 contributions {term dimension: score}: the rows of the score matrix."""
    scores = lexical._model.scores
    indptr = np.asarray(scores["indptr"], dtype=np.int64)
    rows = np.asarray(scores["indices"], dtype=np.int64)
    data = np.asarray(scores["data"], dtype=np.float32)
    terms = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    keep = rows < lexical.size  # an empty corpus has one placeholder text
    rows, data, terms = rows[keep], data[keep], terms[keep]
    order = np.argsort(rows, kind="stable")
    rows, data, terms = rows[order], data[order], terms[order]
    bounds = np.searchsorted(rows, np.arange(lexical.size + 1))
    out = []
    for n in range(lexical.size):
        a, b = bounds[n], bounds[n + 1]
        vector = {int(t): float(v) for t, v in zip(terms[a:b], data[a:b]) if v > 0}
        out.append(vector or {EMPTY_DIMENSION: EMPTY_WEIGHT})
    return out


def text_field(text: str) -> tuple[str, bool]:
    """The text for a VARCHAR field, or "" and True when it must go to the meta collection."""
    return (text, False) if len(text.encode("utf-8")) <= TEXT_BYTES else ("", True)


def clip(text: str, limit: int) -> str:
    """`text` cut to fit a VARCHAR(limit) in UTF-8 (a filterable copy; the whole text is in the meta collection)."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


def blob_rows(key: str, content: str, first_id: int) -> list[dict[str, Any]]:
    parts = [content[i : i + PART_CHARS] for i in range(0, len(content), PART_CHARS)] or [""]
    return [{"id": first_id + n, "key": key, "part": n, "content": part, "unused": [0.0, 0.0]}
            for n, part in enumerate(parts)]



# ---------------------------------------------------------------- writing

def _schemas(dim: int) -> dict[str, Any]:
    from pymilvus import DataType, MilvusClient

    def schema(*fields: tuple[str, Any, dict[str, Any]]) -> Any:
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        for name, dtype, options in fields:
            s.add_field(name, dtype, **options)
        return s

    varchar = lambda n: (DataType.VARCHAR, {"max_length": n})  # noqa: E731
    i64 = (DataType.INT64, {})
    dense = (DataType.FLOAT_VECTOR, {"dim": dim})
    sparse = (DataType.SPARSE_FLOAT_VECTOR, {})
    pk = {"is_primary": True}
    # Where a row comes from, as scalar fields a cluster can filter on (year, language…).
    where = (("source", *varchar(1024)), ("title", *varchar(2048)), ("year", DataType.INT64, {"nullable": True}),
             ("language", *varchar(8)), ("section", *varchar(2048)))
    # Milvus wants a vector field in every collection: meta and terms carry a 2-d one, never searched.
    unused = ("unused", DataType.FLOAT_VECTOR, {"dim": 2})
    return {
        "meta": schema(("id", DataType.INT64, pk), ("key", *varchar(1024)), ("part", *i64),
                       ("content", *varchar(TEXT_BYTES)), unused),
        "passages": schema(("id", DataType.INT64, pk), ("doc_id", *varchar(512)), *where, ("start", *i64), ("end", *i64),
                           ("position", *i64), ("kind", *varchar(32)), ("text", *varchar(TEXT_BYTES)),
                           ("long_text", DataType.BOOL, {}), ("first_sentence", *i64), ("sentences", *i64),
                           ("dense", *dense), ("sparse", *sparse)),
        "sentences": schema(("id", DataType.INT64, pk), ("doc_id", *varchar(512)), *where, ("passage_id", *i64),
                            ("start", *i64), ("end", *i64), ("text", *varchar(TEXT_BYTES)),
                            ("long_text", DataType.BOOL, {}), ("first_clause", *i64), ("clauses", *i64),
                            ("dense", *dense), ("sparse", *sparse)),
        "clauses": schema(("id", DataType.INT64, pk), ("sentence_id", *i64), ("passage_id", *i64), ("doc_id", *varchar(512)),
                          ("dense", *dense)),
        "terms": schema(("term", DataType.VARCHAR, {"is_primary": True, "max_length": 256}),
                        ("sentence_dim", *i64), ("passage_dim", *i64), ("sentence_df", *i64), ("passage_df", *i64),
                        ("doc_count", *i64),
                        ("docs", DataType.ARRAY, {"element_type": DataType.INT64, "max_capacity": MAX_DOCS_PER_TERM}),
                        unused),
    }


def dense_index(count: int, kind: str) -> tuple[str, dict[str, Any]]:
    """The Milvus index for `count` passage vectors: exact while small, like the FAISS store."""
    if kind == "flat" or (kind == "auto" and count <= FLAT_MAX):
        return "FLAT", {}
    if kind == "ivf" or kind == "auto":
        return "IVF_FLAT", {"nlist": int(max(16, min(65536, 4 * np.sqrt(max(count, 1)))))}
    return "HNSW", {"M": 32, "efConstruction": 80}


def _create(connection: Connection, version: str, dim: int, passage_count: int, kind: str) -> None:
    schemas = _schemas(dim)
    for part in PARTS:
        name = connection.name(version, part)
        connection.call(f"creating {name}", "create_collection", collection_name=name, schema=schemas[part],
                        num_shards=connection.shards)
        params = connection.client.prepare_index_params()
        if part in ("meta", "terms"):
            params.add_index(field_name="unused", index_type="FLAT", metric_type="IP")
        else:
            index_type, extra = dense_index(passage_count, kind) if part == "passages" else ("FLAT", {})
            params.add_index(field_name="dense", index_type=index_type, metric_type="IP", params=extra)
            if part != "clauses":
                params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
            params.add_index(field_name="doc_id", index_type="INVERTED")
            if part == "clauses":  # clauses are read by the sentence they belong to
                params.add_index(field_name="sentence_id", index_type="INVERTED")
        # Not waiting: the collection is empty, and loading it later waits for its indexes anyway.
        connection.call(f"indexing {name}", "create_index", collection_name=name, index_params=params, sync=False)


def _insert(connection: Connection, name: str, rows: Iterable[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == INSERT_ROWS:
            connection.call(f"writing {name}", "insert", collection_name=name, data=batch)
            batch = []
    if batch:
        connection.call(f"writing {name}", "insert", collection_name=name, data=batch)


def _term_rows(data: NewVersion) -> Iterable[dict[str, Any]]:
    s_vocab = data.sentence_lexical._model.vocab_dict
    p_vocab = data.passage_lexical._model.vocab_dict
    doc_number = {doc.doc_id: n for n, doc in enumerate(data.documents)}
    sentence_doc = np.fromiter((doc_number[s.doc_id] for s in data.sentences), dtype=np.int64,
                               count=len(data.sentences))
    seen: set[str] = set()
    for term in list(s_vocab) + [t for t in p_vocab if t not in s_vocab]:
        key = term_key(term)
        if not term or key in seen:
            continue
        seen.add(key)
        rows = data.sentence_lexical.postings(term) if term in s_vocab else np.zeros(0, dtype=np.int64)
        docs = np.unique(sentence_doc[rows]) if len(rows) else np.zeros(0, dtype=np.int64)
        yield {"term": key, "sentence_dim": int(s_vocab.get(term, -1)), "passage_dim": int(p_vocab.get(term, -1)),
               "sentence_df": int(len(rows)), "passage_df": int(data.passage_lexical.frequency(term)) if term in p_vocab else 0,
               "doc_count": int(len(docs)),
               "docs": docs.tolist() if len(docs) <= MAX_DOCS_PER_TERM else [], "unused": [0.0, 0.0]}


def _document_layout(data: NewVersion) -> dict[str, dict[str, int]]:
    """Each document's contiguous id ranges (passages, sentences and clauses are numbered in document order)."""
    layout: dict[str, dict[str, int]] = {}
    for p in data.passages:
        entry = layout.setdefault(p.doc_id, {"first_passage": p.passage_id, "passages": 0,
                                             "first_sentence": p.sentence_ids[0] if p.sentence_ids else 0,
                                             "sentences": 0, "first_clause": 0, "clauses": 0})
        if p.passage_id != entry["first_passage"] + entry["passages"]:
            raise IndexStoreError(f"passages of {p.doc_id} are not numbered contiguously")
        entry["passages"] += 1
        entry["sentences"] += len(p.sentence_ids)
    owners = data.clause_sentence
    for entry in layout.values():
        lo = int(np.searchsorted(owners, entry["first_sentence"], side="left"))
        hi = int(np.searchsorted(owners, entry["first_sentence"] + entry["sentences"], side="left"))
        entry["first_clause"], entry["clauses"] = lo, hi - lo
    return layout


class _Rows:
    """The rows of one version's collections, made as they are inserted. Texts too long for a
    VARCHAR field are kept aside as they pass (`long_texts`) and written with the meta rows."""

    def __init__(self, data: NewVersion) -> None:
        self.data = data
        self.documents = {doc.doc_id: doc for doc in data.documents}
        self.long_texts: list[tuple[str, str]] = []
        self.passage_sparse = sparse_rows(data.passage_lexical)
        self.sentence_sparse = sparse_rows(data.sentence_lexical)
        # A sentence's clauses are consecutive rows: it names them by range, read by primary key.
        self.clause_bounds = np.searchsorted(data.clause_sentence, np.arange(len(data.sentences) + 1), side="left")

    def text_of(self, kind: str, number: int, text: str) -> tuple[str, bool]:
        field, long = text_field(text)
        if long:
            self.long_texts.append((f"text:{kind}:{number}", text))
        return field, long

    def where(self, doc_id: str, start: int) -> dict[str, Any]:
        doc = self.documents[doc_id]
        return {"source": clip(doc.source, 1024), "title": clip(doc.title, 2048), "year": doc.year,
                "language": doc.language, "section": clip(doc.section_at(start), 2048)}

    def passages(self) -> Iterable[dict[str, Any]]:
        for p in self.data.passages:
            text, long = self.text_of("p", p.passage_id, p.text)
            yield {"id": p.passage_id, "doc_id": p.doc_id, **self.where(p.doc_id, p.start), "start": p.start,
                   "end": p.end, "position": p.position, "kind": p.kind, "text": text, "long_text": long,
                   "first_sentence": p.sentence_ids[0] if p.sentence_ids else -1, "sentences": len(p.sentence_ids),
                   "dense": self.data.passage_vectors[p.passage_id], "sparse": self.passage_sparse[p.passage_id]}

    def sentences(self) -> Iterable[dict[str, Any]]:
        bounds = self.clause_bounds
        for s in self.data.sentences:
            text, long = self.text_of("s", s.sentence_id, s.text)
            yield {"id": s.sentence_id, "doc_id": s.doc_id, **self.where(s.doc_id, s.start), "language": s.language,
                   "passage_id": s.passage_id,
                   "start": s.start, "end": s.end, "text": text, "long_text": long,
                   "first_clause": int(bounds[s.sentence_id]),
                   "clauses": int(bounds[s.sentence_id + 1] - bounds[s.sentence_id]),
                   "dense": self.data.sentence_vectors[s.sentence_id], "sparse": self.sentence_sparse[s.sentence_id]}

    def clauses(self) -> Iterable[dict[str, Any]]:
        sentences = self.data.sentences
        for row, owner in enumerate(self.data.clause_sentence.tolist()):
            yield {"id": row, "sentence_id": owner, "passage_id": sentences[owner].passage_id,
                   "doc_id": sentences[owner].doc_id, "dense": self.data.clause_vectors[row]}

    def meta(self, version: str, layout: dict[str, dict[str, int]]) -> Iterable[dict[str, Any]]:
        """The manifest, each document's metadata and text, and the long texts met so far, as blobs."""
        data = self.data
        manifest = {**data.manifest, "store": "milvus", "version": version, "sentence_languages": True,
                    "doc_order": [d.doc_id for d in data.documents], "layout": layout}
        blobs = [("manifest", json.dumps(manifest, ensure_ascii=False)),
                 ("heading_terms", json.dumps(data.heading_terms, ensure_ascii=False))]
        for number, doc in enumerate(data.documents):
            meta = document_to_json(doc)
            text = meta.pop("text")
            meta.pop("blocks"), meta.pop("dropped")  # only splitting reads them
            # A title's vector lives with its document's metadata, which every reader keeps in memory.
            meta["title_vector"] = [float(x) for x in data.title_vectors[number]] if doc.title_stated else None
            blobs.append((f"doc:{doc.doc_id}", json.dumps(meta, ensure_ascii=False)))
            blobs.append((f"text:d:{doc.doc_id}", text))
        blobs.extend(self.long_texts)
        next_id = 0
        for key, content in blobs:
            rows = blob_rows(key, content, next_id)
            next_id += len(rows)
            yield from rows


def write_version(connection: Connection, data: NewVersion, kind: str = "auto") -> str:
    """Write a complete version, then point the alias at it. Returns the version served.

    Until the alias moves, readers keep the version before; a build that dies half-way
    leaves only collections that no alias names, dropped by a later build.
    """
    version = new_version()
    _create(connection, version, int(data.manifest["model"]["dim"]), len(data.passages), kind)
    layout = _document_layout(data)
    rows = _Rows(data)
    _insert(connection, connection.name(version, "passages"), rows.passages())
    _insert(connection, connection.name(version, "sentences"), rows.sentences())
    _insert(connection, connection.name(version, "clauses"), rows.clauses())
    _insert(connection, connection.name(version, "terms"), _term_rows(data))
    _insert(connection, connection.name(version, "meta"), rows.meta(version, layout))  # after: long texts met
    for part in PARTS:
        name = connection.name(version, part)
        connection.call(f"flushing {name}", "flush", collection_name=name)
        connection.call(f"loading {name}", "load_collection", collection_name=name, replica_number=connection.replicas)
    previous = connection.served_version()
    serve(connection, version)
    drop_old_versions(connection, keep={version, previous} - {None})
    return version


def serve(connection: Connection, version: str) -> None:
    """Point the alias at `version` (one call: readers see the old version or the new one)."""
    target = connection.name(version, "meta")
    if connection.served_version() is None:
        connection.call(f"creating the alias {connection.prefix}", "create_alias",
                        collection_name=target, alias=connection.prefix)
    else:
        connection.call(f"moving the alias {connection.prefix}", "alter_alias",
                        collection_name=target, alias=connection.prefix)


def drop_old_versions(connection: Connection, keep: set[str]) -> list[str]:
    """Drop the versions not kept; a version younger than an hour that no alias names may be
    another builder's work in progress, and is left alone."""
    dropped = []
    newest_kept = max(keep, default="")
    for version, parts in connection.versions().items():
        in_progress = version > newest_kept and time.time() - version_time(version) < STALE_BUILD_SECONDS
        if version in keep or in_progress:
            continue
        for part in parts:
            connection.call("dropping an old version", "drop_collection", collection_name=connection.name(version, part))
        dropped.append(version)
    return dropped


