"""Milvus: reading the served version, with the interface answering reads (`reader.IndexReader`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Iterable, Sequence

import numpy as np

from ...errors import IndexStoreError
from ...records import Document, Passage, Sentence
from ..manifest import FORMAT_VERSION
from ..reader import ManifestFacts
from ..store import document_from_json, parse_heading_terms


from .connection import ALIAS_CHECK_SECONDS, CACHE_ROWS, FETCH_IDS, INSERT_ROWS, PARTS, Connection, term_key

log = logging.getLogger(__name__)


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


class MilvusIndex(ManifestFacts):
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
        blobs = _blobs(connection, self.names["meta"], ["manifest", "heading_terms"])
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
        # text.document.heading_terms; none in a version written before they were recorded (then no
        # term counts as held through a heading: the count before, until `rag build --store milvus`)
        self.heading_terms: dict[str, int] = parse_heading_terms(
            blobs.get("heading_terms") or "{}", f"the heading counts of {self.names['meta']}", "rag build --store milvus")
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._served = self
        self._reload_lock = threading.Lock()

    # ---- what the manifest says

    @property
    def folder(self) -> str:
        return f"{self.connection.uri} · {self.names['meta']}"

    @property
    def sentence_count(self) -> int:
        return int(self.manifest["counts"]["sentences"])

    @property
    def passage_count(self) -> int:
        return int(self.manifest["counts"]["passages"])

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
              "sentences": ["id", "doc_id", "passage_id", "start", "end", "text", "long_text", "language", "first_clause",
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
        # A version written before sentences had their own language holds their document's there.
        own = bool(self.manifest.get("sentence_languages"))
        return [Sentence(int(r["id"]), r["doc_id"], int(r["passage_id"]), int(r["start"]), int(r["end"]), r["text"],
                         r["language"] if own else "")
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

    def own_frequency(self, terms: Sequence[str]) -> dict[str, int]:
        """How many sentences hold each term in their own words (not through their section heading)."""
        stats = self.term_stats(terms)
        return {t: (int(stats[t]["sentence_df"]) if t in stats else 0) - self.heading_terms.get(t, 0) for t in terms}

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


def open_served(connection: Connection) -> MilvusIndex | None:
    version = connection.served_version()
    return MilvusIndex(connection, version) if version else None
