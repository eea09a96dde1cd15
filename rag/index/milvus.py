"""The Milvus store: the same index in Milvus collections, served through one alias.

`RAG_MILVUS_URI` chooses the deployment through one client code path (`pymilvus`):
a file path is an embedded milvus-lite database; `http://…` or `https://…` is a
milvus-lite server, a Milvus standalone or a cluster (`RAG_MILVUS_TOKEN` when it
asks for one).

One index version is five collections named `{prefix}_v{stamp}_{part}`:

    meta       the manifest and each document (JSON), and any text too long for a
               VARCHAR field, cut into parts of at most PART_CHARS characters
    passages   id, doc_id, source, title, year, language, section, offsets, position,
               kind, text, first sentence and count, dense vector, sparse lexical vector
    sentences  id, doc_id, source, title, year, language, section, passage_id, offsets,
               text, dense vector, sparse lexical vector
    clauses    id, sentence_id, passage_id, doc_id, dense vector
    terms      one row per analyzed term: its sparse dimension in each lexical space, how
               many sentences and passages hold it, and which documents (for names)

The sparse vectors are the rows of the project's own BM25 matrices (`lexical.py`,
French/English stemming, elisions, accents), so lexical ranking is the same on
every store: a query's sparse vector puts 1.0 on each of its terms, and the inner
product is the BM25 total. The alias `{prefix}` names the meta collection of the
version being served; a reader resolves the other four from it, so it never reads
two versions at once. A build writes a whole new version, then moves the alias;
the version before stays for readers still on it, older ones are dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..errors import IndexStoreError
from ..records import Document, Passage, Sentence
from .lexical import LexicalIndex
from .manifest import FORMAT_VERSION
from .store import document_from_json, document_to_json, documents_by_year

if TYPE_CHECKING:  # the build's record of a version; importing it here would be circular at run time
    from .targets import NewVersion

log = logging.getLogger(__name__)

PARTS = ("meta", "passages", "sentences", "clauses", "terms")
PART_CHARS = 16_000  # ≤ 64,000 UTF-8 bytes: fits a VARCHAR(65535) whatever the script
TEXT_BYTES = 65_535
MAX_DOCS_PER_TERM = 4_096  # Milvus's largest ARRAY capacity
INSERT_ROWS = 1_000
FETCH_IDS = 4_096  # ids per request
EMPTY_DIMENSION = 2**32 - 2  # Milvus refuses an empty sparse vector; no query ever holds this dimension
EMPTY_WEIGHT = 1e-30
STALE_BUILD_SECONDS = 3_600
ALIAS_CHECK_SECONDS = 1.0
CACHE_ROWS = 50_000
PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,100}$")
FLAT_MAX = 20_000


# ---------------------------------------------------------------- connection

def check_prefix(prefix: str) -> str:
    if not PREFIX.match(prefix):
        raise IndexStoreError(f"RAG_MILVUS_COLLECTION={prefix!r} is not a usable Milvus name: use letters, "
                              "digits and underscores, starting with a letter (at most 100 characters)")
    return prefix


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def describe_failure(uri: str, exc: BaseException, doing: str) -> str:
    """One sentence for a person: what failed, where, and what to do."""
    message = str(getattr(exc, "message", "") or exc).strip().splitlines()[0][:300] if str(exc) else type(exc).__name__
    lower = message.lower()
    if any(word in lower for word in ("auth", "token", "credential", "permission", "password", "unauthenticated")):
        advice = "check RAG_MILVUS_TOKEN (user:password or an API key)"
    elif any(word in lower for word in ("fail connecting", "unavailable", "deadline", "connect", "not exists", "refused")):
        advice = ("start the Milvus server or correct RAG_MILVUS_URI" if is_server(uri)
                  else "correct RAG_MILVUS_URI: its folder must exist and be writable")
    else:
        advice = "check the Milvus server's logs, or rebuild with: rag build --store milvus"
    return f"Milvus at {uri} failed while {doing} ({message}); {advice}."


class Connection:
    """A pymilvus client for one URI, with every failure turned into an IndexStoreError."""

    def __init__(self, uri: str, token: str = "", prefix: str = "rag", shards: int = 1, replicas: int = 1) -> None:
        self.uri = uri
        self.prefix = check_prefix(prefix)
        # Cluster-side layout: shards spread a collection's writes over data nodes, replicas serve
        # its reads from several query nodes (and survive one). Milvus Lite accepts and ignores both.
        self.shards, self.replicas = shards, replicas
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise IndexStoreError("RAG_STORE=milvus needs pymilvus and milvus-lite: "
                                  "pip install -e '.[milvus]'") from None
        if not is_server(uri):
            folder = os.path.dirname(os.path.abspath(uri))
            if not os.path.isdir(folder):
                raise IndexStoreError(f"RAG_MILVUS_URI={uri}: the folder {folder} does not exist; create it "
                                      "or give a server address (http://host:19530)")
        try:
            self.client = MilvusClient(uri=uri, token=token or "", timeout=30)
        except Exception as exc:
            raise IndexStoreError(describe_failure(uri, exc, "connecting")) from exc

    def call(self, doing: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except Exception as exc:
            raise IndexStoreError(describe_failure(self.uri, exc, doing)) from exc

    # ---- versions and the alias

    def served_version(self) -> str | None:
        """The version the alias names, or None when there is no alias yet."""
        doing = f"looking up the alias {self.prefix}"
        listed = self.call(doing, "list_aliases")
        if self.prefix not in (listed.get("aliases", []) if isinstance(listed, dict) else listed):
            return None  # asked first: describing a missing alias makes pymilvus log an error
        described = self.call(doing, "describe_alias", alias=self.prefix)
        name = described.get("collection_name", "") if isinstance(described, dict) else ""
        match = re.match(rf"^{re.escape(self.prefix)}_(v[0-9a-f]+)_meta$", name)
        return match.group(1) if match else None

    def versions(self) -> dict[str, set[str]]:
        """Every version of this prefix in the database, with the parts it has."""
        pattern = re.compile(rf"^{re.escape(self.prefix)}_(v[0-9a-f]+)_({'|'.join(PARTS)})$")
        found: dict[str, set[str]] = {}
        for name in self.call("listing collections", "list_collections"):
            match = pattern.match(name)
            if match:
                found.setdefault(match.group(1), set()).add(match.group(2))
        return found

    def name(self, version: str, part: str) -> str:
        return f"{self.prefix}_{version}_{part}"


def new_version() -> str:
    # Hex digits only: the time (nanoseconds, fixed width) orders versions, even several built
    # within one second; the random tail keeps two builders apart.
    return "v" + format(time.time_ns(), "016x") + os.urandom(3).hex()


def version_time(version: str) -> float:
    """When a version was started, in seconds since the epoch."""
    try:
        return int(version[1:-6], 16) / 1e9
    except ValueError:
        return 0.0


# ---------------------------------------------------------------- rows

def term_key(term: str) -> str:
    """The primary key of a term: itself, or a digest when too long for the key field."""
    return term if len(term.encode("utf-8")) <= 200 else "~" + hashlib.sha1(term.encode("utf-8")).hexdigest()


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


def write_version(connection: Connection, data: NewVersion, kind: str = "auto") -> str:
    """Write a complete version, then point the alias at it. Returns the version served.

    Until the alias moves, readers keep the version before; a build that dies half-way
    leaves only collections that no alias names, dropped by a later build.
    """
    dim = int(data.manifest["model"]["dim"])
    version = new_version()
    _create(connection, version, dim, len(data.passages), kind)
    layout = _document_layout(data)
    long_texts: list[tuple[str, str]] = []

    def text_of(kind_: str, number: int, text: str) -> tuple[str, bool]:
        field, long = text_field(text)
        if long:
            long_texts.append((f"text:{kind_}:{number}", text))
        return field, long

    documents = {doc.doc_id: doc for doc in data.documents}

    def where(doc_id: str, start: int) -> dict[str, Any]:
        doc = documents[doc_id]
        return {"source": clip(doc.source, 1024), "title": clip(doc.title, 2048), "year": doc.year,
                "language": doc.language, "section": clip(doc.section_at(start), 2048)}

    p_sparse = sparse_rows(data.passage_lexical)
    s_sparse = sparse_rows(data.sentence_lexical)

    def passage_rows() -> Iterable[dict[str, Any]]:
        for p in data.passages:
            text, long = text_of("p", p.passage_id, p.text)
            yield {"id": p.passage_id, "doc_id": p.doc_id, **where(p.doc_id, p.start), "start": p.start, "end": p.end, "position": p.position,
                   "kind": p.kind, "text": text, "long_text": long,
                   "first_sentence": p.sentence_ids[0] if p.sentence_ids else -1, "sentences": len(p.sentence_ids),
                   "dense": data.passage_vectors[p.passage_id], "sparse": p_sparse[p.passage_id]}

    # A sentence's clauses are consecutive rows: it names them by range, read by primary key.
    clause_bounds = np.searchsorted(data.clause_sentence, np.arange(len(data.sentences) + 1), side="left")

    def sentence_rows() -> Iterable[dict[str, Any]]:
        for s in data.sentences:
            text, long = text_of("s", s.sentence_id, s.text)
            yield {"id": s.sentence_id, "doc_id": s.doc_id, **where(s.doc_id, s.start), "passage_id": s.passage_id,
                   "start": s.start,
                   "end": s.end, "text": text, "long_text": long,
                   "first_clause": int(clause_bounds[s.sentence_id]),
                   "clauses": int(clause_bounds[s.sentence_id + 1] - clause_bounds[s.sentence_id]),
                   "dense": data.sentence_vectors[s.sentence_id],
                   "sparse": s_sparse[s.sentence_id]}

    def clause_rows() -> Iterable[dict[str, Any]]:
        for row, owner in enumerate(data.clause_sentence.tolist()):
            yield {"id": row, "sentence_id": owner, "passage_id": data.sentences[owner].passage_id,
                   "doc_id": data.sentences[owner].doc_id,
                   "dense": data.clause_vectors[row]}

    _insert(connection, connection.name(version, "passages"), passage_rows())
    _insert(connection, connection.name(version, "sentences"), sentence_rows())
    _insert(connection, connection.name(version, "clauses"), clause_rows())
    _insert(connection, connection.name(version, "terms"), _term_rows(data))

    def meta_rows() -> Iterable[dict[str, Any]]:
        next_id = 0
        manifest = {**data.manifest, "store": "milvus", "version": version,
                    "doc_order": [d.doc_id for d in data.documents], "layout": layout}
        blobs = [("manifest", json.dumps(manifest, ensure_ascii=False))]
        for number, doc in enumerate(data.documents):
            meta = document_to_json(doc)
            text = meta.pop("text")
            meta.pop("blocks"), meta.pop("dropped")  # only splitting reads them
            # A title's vector lives with its document's metadata, which every reader keeps in memory.
            meta["title_vector"] = [float(x) for x in data.title_vectors[number]] if doc.title_stated else None
            blobs.append((f"doc:{doc.doc_id}", json.dumps(meta, ensure_ascii=False)))
            blobs.append((f"text:d:{doc.doc_id}", text))
        blobs.extend(long_texts)
        for key, content in blobs:
            rows = blob_rows(key, content, next_id)
            next_id += len(rows)
            yield from rows

    _insert(connection, connection.name(version, "meta"), meta_rows())
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


# ---------------------------------------------------------------- reading

def _blobs(connection: Connection, meta: str, keys: Sequence[str]) -> dict[str, str]:
    if not keys:
        return {}
    found: dict[str, list[tuple[int, str]]] = {}
    for chunk in range(0, len(keys), 256):
        listed = ", ".join(json.dumps(k) for k in keys[chunk : chunk + 256])
        rows = connection.call("reading the manifest", "query", collection_name=meta, filter=f"key in [{listed}]",
                               output_fields=["key", "part", "content"], limit=16_384)
        for row in rows:
            found.setdefault(row["key"], []).append((int(row["part"]), row["content"]))
    return {key: "".join(c for _, c in sorted(parts)) for key, parts in found.items()}


class MilvusTermScores:
    """BM25 of a query's terms over the sentences or the passages, from Milvus: the same
    figures as `lexical.TermScores`, read from the stored sparse rows."""

    def __init__(self, reader: "MilvusIndex", unit: str, terms: Sequence[str], stats: dict[str, dict[str, Any]]) -> None:
        self.reader = reader
        self.unit = unit
        self.terms = list(dict.fromkeys(terms))
        self.stats = stats
        self.dims = {t: int(stats[t][f"{unit[:-1]}_dim"]) for t in self.terms
                     if t in stats and int(stats[t][f"{unit[:-1]}_dim"]) >= 0}

    def frequency(self, term: str) -> int:
        row = self.stats.get(term)
        return int(row[f"{self.unit[:-1]}_df"]) if row else 0

    def only(self, terms: Sequence[str]) -> "MilvusTermScores":
        return MilvusTermScores(self.reader, self.unit, terms, self.stats)

    def top(self, k: int) -> np.ndarray:
        if not self.dims or k <= 0:
            return np.zeros(0, dtype=np.int64)
        hits = self.reader.search(self.unit, "sparse", {d: 1.0 for d in self.dims.values()}, k)
        return np.asarray([i for i, score in hits if score > 0], dtype=np.int64)

    def at(self, rows: np.ndarray, terms: Sequence[str]) -> np.ndarray:
        dims = [self.dims[t] for t in terms if t in self.dims]
        out = np.zeros(len(rows), dtype=np.float32)
        if not dims or len(rows) == 0:
            return out
        sparse = self.reader.sparse_of(self.unit, rows)
        for n, vector in enumerate(sparse):
            out[n] = sum(vector.get(d, 0.0) for d in dims)
        return out


class MilvusIndex:
    """One version of the index in Milvus, read on demand: the process keeps the manifest and the
    documents' metadata, and a bounded cache of the rows it read; vectors stay in Milvus."""

    store = "milvus"
    note = ""  # a Milvus alias names one version; there is no previous one to fall back on

    def __init__(self, connection: Connection, version: str) -> None:
        self.connection = connection
        self.version = version
        self.names = {part: connection.name(version, part) for part in PARTS}
        for name in self.names.values():
            connection.call(f"loading {name}", "load_collection", collection_name=name,
                            replica_number=connection.replicas)
        blobs = _blobs(connection, self.names["meta"], ["manifest"])
        if "manifest" not in blobs:
            raise IndexStoreError(f"the Milvus version {self.names['meta']} has no manifest; rebuild with: "
                                  "rag build --store milvus")
        self.manifest: dict[str, Any] = json.loads(blobs["manifest"])
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise IndexStoreError(f"the Milvus index format {self.manifest.get('format_version')} is not "
                                  f"{FORMAT_VERSION}; rebuild with: rag build --store milvus")
        order = self.manifest.get("doc_order", [])
        metas = _blobs(connection, self.names["meta"], [f"doc:{d}" for d in order])
        documents = {}
        dim = int(self.manifest["model"]["dim"])
        self.title_vectors = np.zeros((len(order), dim), dtype=np.float32)
        for number, doc_id in enumerate(order):
            if f"doc:{doc_id}" not in metas:
                raise IndexStoreError(f"document {doc_id} is missing from {self.names['meta']}; rebuild with: "
                                      "rag build --store milvus")
            data = json.loads(metas[f"doc:{doc_id}"])
            title_vector = data.pop("title_vector", None)
            if title_vector is not None:
                self.title_vectors[number] = title_vector
            documents[doc_id] = document_from_json({**data, "text": "", "blocks": [], "dropped": []})
        self.documents: dict[str, Document] = documents
        self.titled = np.array([d.title_stated for d in documents.values()], dtype=bool)
        self.layout: dict[str, dict[str, int]] = self.manifest.get("layout", {})
        self._rows: dict[tuple[str, int], dict[str, Any]] = {}
        self._terms: dict[str, dict[str, Any] | None] = {}  # None: a term this version does not hold
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._served = self
        self._reload_lock = threading.Lock()

    # ---- what the manifest says

    @property
    def folder(self) -> str:
        return f"{self.connection.uri} · {self.names['meta']}"

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    @property
    def sentence_count(self) -> int:
        return int(self.manifest["counts"]["sentences"])

    @property
    def passage_count(self) -> int:
        return int(self.manifest["counts"]["passages"])

    @cached_property
    def doc_ids(self) -> tuple[str, ...]:
        return tuple(self.documents)

    @cached_property
    def docs_of_year(self) -> dict[int, list[int]]:
        return documents_by_year(self.documents)

    def prepare(self) -> None:
        self.docs_of_year

    def current(self) -> "MilvusIndex":
        """The version the alias names now (checked at most once a second): another process's
        rebuild is answered from without a restart."""
        if time.monotonic() - self._checked < ALIAS_CHECK_SECONDS:
            return self._served
        with self._reload_lock:
            if time.monotonic() - self._checked >= ALIAS_CHECK_SECONDS:
                served = self.connection.served_version()
                if served is None:
                    raise IndexStoreError(f"the alias {self.connection.prefix} is gone from Milvus at "
                                          f"{self.connection.uri}; rebuild with: rag build --store milvus")
                if served != self._served.version:
                    log.info("Milvus now serves %s (was %s)", served, self._served.version)
                    self._served = MilvusIndex(self.connection, served)
                self._checked = time.monotonic()
        return self._served

    def passage_ids_of(self, doc_id: str) -> tuple[int, ...]:
        entry = self.layout.get(doc_id)
        return tuple(range(entry["first_passage"], entry["first_passage"] + entry["passages"])) if entry else ()

    # ---- rows, fetched by id and kept in a bounded cache (a version never changes)

    FIELDS = {"passages": ["id", "doc_id", "start", "end", "position", "kind", "text", "long_text", "first_sentence",
                           "sentences", "dense", "sparse"],
              "sentences": ["id", "doc_id", "passage_id", "start", "end", "text", "long_text", "first_clause",
                            "clauses", "dense", "sparse"]}

    def _fetch(self, unit: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        wanted = [int(i) for i in ids]
        missing = sorted({i for i in wanted if (unit, i) not in self._rows})
        for chunk in range(0, len(missing), FETCH_IDS):
            rows = self.connection.call(f"reading {unit}", "query", collection_name=self.names[unit],
                                        ids=missing[chunk : chunk + FETCH_IDS], output_fields=self.FIELDS[unit])
            long = [row["id"] for row in rows if row.get("long_text")]
            texts = _blobs(self.connection, self.names["meta"], [f"text:{unit[0]}:{i}" for i in long])
            with self._lock:
                if len(self._rows) > CACHE_ROWS:
                    self._rows.clear()
                for row in rows:
                    if row.get("long_text"):
                        row["text"] = texts.get(f"text:{unit[0]}:{row['id']}", "")
                    row["dense"] = np.asarray(row["dense"], dtype=np.float32)
                    self._rows[(unit, int(row["id"]))] = row
        out = []
        for i in wanted:
            row = self._rows.get((unit, i))
            if row is None:
                row = self.connection.call(f"reading {unit}", "query", collection_name=self.names[unit], ids=[i],
                                           output_fields=self.FIELDS[unit])
                if not row:
                    raise IndexStoreError(f"{unit[:-1]} {i} is missing from {self.names[unit]}; rebuild with: "
                                          "rag build --store milvus")
                row = row[0]
                row["dense"] = np.asarray(row["dense"], dtype=np.float32)
            out.append(row)
        return out

    def sentences_by_id(self, ids: Sequence[int]) -> list[Sentence]:
        return [Sentence(int(r["id"]), r["doc_id"], int(r["passage_id"]), int(r["start"]), int(r["end"]), r["text"])
                for r in self._fetch("sentences", ids)]

    def passages_by_id(self, ids: Sequence[int]) -> list[Passage]:
        out = []
        for r in self._fetch("passages", ids):
            doc = self.documents[r["doc_id"]]
            first = int(r["first_sentence"])
            out.append(Passage(int(r["id"]), r["doc_id"], doc.source, doc.title, doc.year, int(r["start"]),
                               int(r["end"]), r["text"], tuple(range(first, first + int(r["sentences"]))),
                               int(r["position"]), r["kind"]))
        return out

    def sparse_of(self, unit: str, ids: Sequence[int]) -> list[dict[int, float]]:
        return [r["sparse"] for r in self._fetch(unit, ids)]

    def sentence_vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        rows = self._fetch("sentences", ids)
        return np.vstack([r["dense"] for r in rows]) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def passage_similarity(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        rows = self._fetch("passages", ids)
        return (np.vstack([r["dense"] for r in rows]) @ query).astype(np.float32) if rows \
            else np.zeros(0, dtype=np.float32)

    def sentence_similarity(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Cosine of each sentence with the question, or of its best clause when higher."""
        if len(ids) == 0:
            return np.zeros(0, dtype=np.float32)
        rows = self._fetch("sentences", ids)
        scores = np.vstack([r["dense"] for r in rows]) @ query
        owner = {}
        for n, row in enumerate(rows):
            for clause in range(int(row["first_clause"]), int(row["first_clause"]) + int(row["clauses"])):
                owner[clause] = n
        wanted = sorted(owner)
        for chunk in range(0, len(wanted), FETCH_IDS):
            found = self.connection.call("reading clauses", "query", collection_name=self.names["clauses"],
                                         ids=wanted[chunk : chunk + FETCH_IDS], output_fields=["id", "dense"])
            for row in found:
                n = owner[int(row["id"])]
                scores[n] = max(scores[n], float(np.asarray(row["dense"], dtype=np.float32) @ query))
        return scores.astype(np.float32)

    def search(self, unit: str, field: str, vector: Any, k: int) -> list[tuple[int, float]]:
        hits = self.connection.call(f"searching {unit}", "search", collection_name=self.names[unit],
                                    data=[vector], anns_field=field, limit=min(k, 16_384), output_fields=["id"],
                                    search_params={"metric_type": "IP", "params": self.search_params(field)})
        return [(int(h["id"]), float(h["distance"])) for h in (hits[0] if hits else [])]

    def search_params(self, field: str) -> dict[str, Any]:
        if field != "dense":
            return {}
        # The same share of the data scanned as the FAISS store's IVF (dense.py), and a wide HNSW beam.
        count = max(1, self.passage_count)
        nlist = int(max(16, min(65536, 4 * np.sqrt(count))))
        return {"nprobe": max(1, int(round(nlist * min(1.0, max(0.1, 16_000 / count))))), "ef": 256}

    def search_passages(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        hits = self.search("passages", "dense", np.asarray(query, dtype=np.float32).tolist(), k)
        return (np.asarray([s for _, s in hits], dtype=np.float32), np.asarray([i for i, _ in hits], dtype=np.int64))

    # ---- terms

    def term_stats(self, terms: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each term's row, read once per version (a name is looked up for its documents, then
        for whether it is known at all: one request, not two)."""
        wanted = [t for t in dict.fromkeys(terms) if t]
        rows_of = {t: self._terms[t] for t in wanted if t in self._terms}
        keys = {term_key(t): t for t in wanted if t not in rows_of}
        if keys:
            rows = self.connection.call("reading terms", "query", collection_name=self.names["terms"],
                                        ids=list(keys), output_fields=["term", "sentence_dim", "passage_dim",
                                                                       "sentence_df", "passage_df", "doc_count",
                                                                       "docs"])
            found = {keys[row["term"]]: row for row in rows if row["term"] in keys}
            read = {term: found.get(term) for term in keys.values()}
            rows_of.update(read)
            with self._lock:
                if len(self._terms) > CACHE_ROWS:
                    self._terms.clear()
                self._terms.update(read)
        return {t: row for t, row in rows_of.items() if row is not None}

    def lexical(self, unit: str, terms: Sequence[str]) -> MilvusTermScores:
        return MilvusTermScores(self, unit, terms, self.term_stats(terms))

    def term_documents(self, term: str) -> np.ndarray:
        """Numbers of the documents with a sentence holding `term`; none for a term in more than
        MAX_DOCS_PER_TERM documents (it says nothing about which document a question means)."""
        row = self.term_stats([term]).get(term)
        return np.asarray(row["docs"] if row else [], dtype=np.int64)

    def knows(self, term: str) -> bool:
        row = self.term_stats([term]).get(term)
        return bool(row and int(row["sentence_df"]) > 0)

    def document_text(self, doc_id: str) -> str:
        key = f"text:d:{doc_id}"
        return _blobs(self.connection, self.names["meta"], [key]).get(key, "")

    def title_similarity(self, query: np.ndarray) -> np.ndarray:
        return np.asarray(self.title_vectors @ query, dtype=np.float32)

    # ---- reuse by a build

    def document_vectors(self) -> Iterable[tuple[str, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(doc_id, source, passage, sentence, clause, title vectors) of every document, read once in
        id order (a later build reuses those of unchanged documents)."""
        matrices = {}
        for unit in ("passages", "sentences", "clauses"):
            count = int(self.manifest["counts"][unit])
            matrix = np.zeros((count, self.dim), dtype=np.float32)
            # Ids are 0…count-1: pages by id range need no iterator (which milvus-lite lacks parts of).
            for first in range(0, count, INSERT_ROWS):
                rows = self.connection.call(f"reading {unit}", "query", collection_name=self.names[unit],
                                            filter=f"id >= {first} and id < {first + INSERT_ROWS}",
                                            output_fields=["id", "dense"], limit=INSERT_ROWS)
                for row in rows:
                    matrix[int(row["id"])] = row["dense"]
            matrices[unit] = matrix
        number = {doc_id: n for n, doc_id in enumerate(self.doc_ids)}
        for doc_id, entry in self.layout.items():
            p, s, c = entry["first_passage"], entry["first_sentence"], entry["first_clause"]
            t = number[doc_id]
            title = self.title_vectors[t : t + 1] if self.titled[t] else np.zeros((0, self.dim), np.float32)
            yield (doc_id, self.documents[doc_id].source, matrices["passages"][p : p + entry["passages"]],
                   matrices["sentences"][s : s + entry["sentences"]], matrices["clauses"][c : c + entry["clauses"]],
                   title)


_connections: dict[tuple[str, str, str], Connection] = {}
_connections_lock = threading.Lock()


def connect(settings: Any) -> Connection:
    """The connection the settings name (RAG_MILVUS_URI, RAG_MILVUS_TOKEN, RAG_MILVUS_COLLECTION),
    one per process: an embedded database starts its engine once (about a second)."""
    key = (settings.milvus_target, settings.milvus_token, settings.milvus_collection, settings.milvus_shards,
           settings.milvus_replicas)
    with _connections_lock:
        if key not in _connections:
            _connections[key] = Connection(*key)
        return _connections[key]


def open_served(connection: Connection) -> MilvusIndex | None:
    version = connection.served_version()
    return MilvusIndex(connection, version) if version else None
