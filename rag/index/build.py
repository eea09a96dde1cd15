"""Build (or incrementally rebuild) the index from a documents folder.

Four steps: read every file, split each document into passages, sentences and
clauses, embed what is new, write a new index version. One document that cannot
be read, split or embedded is skipped with its reason; the rest is indexed.
Unchanged documents keep their vectors (from the current index), and vectors
computed by an interrupted build are taken back from the vector cache, so a
build never embeds the same text twice.
"""


from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..config import Settings
from ..errors import IndexStoreError
from ..ingest.files import RawText, discover, read_file
from ..records import Passage, Sentence, Skipped
from ..text.analyzer import analyze
from ..text.chunks import ChunkSettings
from ..text.document import found_by, heading_terms
from .dense import choose_kind
from .embed import embed_documents
from .lexical import LexicalIndex
from .manifest import docs_record, manifest_for, recorded_docs, same_docs
from .plan import Planned, Progress, chunk_settings, no_progress, plan_documents, records_of, skip
from .reader import IndexReader
from .targets import NewVersion, target_for
from .vector_cache import DocumentVectors, VectorCache

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class BuildReport:
    index: IndexReader  # an Index (FAISS files) or a MilvusIndex
    documents: int
    passages: int
    sentences: int
    embedded_documents: int
    reused_documents: int
    skipped: tuple[Skipped, ...]
    seconds: float
    resumed_documents: int = 0  # taken from the vectors an interrupted build had computed
    embedded_texts: int = 0  # distinct texts given to the model


@contextlib.contextmanager
def build_lock(index_dir: Path, progress: Progress = no_progress) -> Iterator[None]:
    """One builder at a time per index folder: a second one says it waits, then waits.

    Holding the lock, nothing else writes here: a `.building-*` folder left is a killed
    build's, removed at once (each holds a whole version's files)."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / ".lock", "a")
    except OSError as exc:
        raise store_error(index_dir, exc) from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another build of %s is running; waiting for it to finish", index_dir)
            progress("waiting", 0, 1)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            for stale in index_dir.glob(".building-*"):
                shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store_error(index_dir: Path, exc: OSError) -> IndexStoreError:
    """A failure to write the index, as one sentence: what, where, and that nothing served changed."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    return IndexStoreError(f"cannot write the index in {index_dir}: {what}{where}. The version it serves is "
                           "untouched; free some space or make the folder writable, or choose another with --index.")


def candidates(docs_dir: Path, max_files: int, removing: frozenset[str] = frozenset()
               ) -> tuple[list[Path], list[Skipped]]:
    """The folder's candidate files (`discover`) but those `removing` names, and the skipped ones."""
    paths, skipped = discover(docs_dir, max_files)
    return [path for path in paths if path.relative_to(docs_dir).as_posix() not in removing], skipped


def read_folder(docs_dir: Path, settings: Settings, progress: Progress = no_progress,
                removing: frozenset[str] = frozenset()) -> tuple[list[RawText], list[Skipped]]:
    """Every readable document once (but those `removing` names): the same text under two names is
    indexed once."""
    paths, skipped = candidates(docs_dir, settings.max_files, removing)
    for item in skipped:
        log.info("not a document: %s (%s)", item.source, item.reason)
    raws: list[RawText] = []
    seen: dict[str, str] = {}
    for number, path in enumerate(paths, 1):
        progress("reading", number, len(paths))
        source = path.relative_to(docs_dir).as_posix()
        try:
            result = read_file(path, docs_dir, settings.max_file_bytes)
        except Exception as exc:  # read_file reports bad files itself; this is a bug, kept to one file
            log.exception("reading %s failed", source)
            result = Skipped(source, f"could not be read ({type(exc).__name__}: {exc})")
        if isinstance(result, Skipped):
            skip(skipped, result.source, result.reason)
            continue
        key = result.text.strip()
        if key in seen:
            skip(skipped, result.source, f"same content as {seen[key]}")
            continue
        seen[key] = result.source
        raws.append(result)
    return raws, skipped


def folder_fingerprint(docs_dir: Path, max_files: int, removing: frozenset[str] = frozenset()) -> str:
    """A hash of the candidate files' names, sizes and modification times (nothing is read), as the
    folder will be once the files `removing` names are gone."""
    paths, skipped = candidates(docs_dir, max_files, removing)
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(docs_dir).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for item in skipped:
        digest.update(f"skipped\0{item.source}\n".encode())
    return digest.hexdigest()


def documents_folder(settings: Settings, rebuild: bool = False) -> Path:
    """The documents folder to index: the one named (--docs, RAG_DOCS_DIR), else the one the served
    index was built from (even when it is not on this machine: a Milvus index built elsewhere is then
    answered from as it is), else the default (seeds/). Raises IndexStoreError when the served index
    was built from another folder, unless `rebuild`: said before any model loads."""
    manifest = target_for(settings.index_dir, settings).served_manifest()
    recorded = recorded_docs(manifest or {}, settings.index_dir)
    docs_dir = settings.docs_dir if settings.docs_named else \
        next((folder for folder in recorded if folder.is_dir()), recorded[0] if recorded else settings.docs_dir)
    if not rebuild:
        check_same_documents(manifest, docs_dir, settings.index_dir)
    return docs_dir


def check_same_documents(manifest: dict[str, Any] | None, docs_dir: Path, index_dir: Path) -> None:
    """Raises IndexStoreError when the index was built from another documents folder: asking or
    building never swaps a collection for another without being told to (--rebuild)."""
    if manifest is None or same_docs(manifest, index_dir, docs_dir):
        return
    recorded = recorded_docs(manifest, index_dir)[0]
    raise IndexStoreError(
        f"the index in {index_dir} was built from {recorded}, not {docs_dir}: leave out --docs to use its own "
        f"folder, or replace its documents on purpose with: rag build --docs {docs_dir} --index {index_dir} --rebuild")


def open_index(docs_dir: Path, index_dir: Path, embedder: Any, progress: Progress = no_progress,
               settings: Settings | None = None) -> IndexReader:
    """The index for `docs_dir`, built or brought up to date first when needed.

    Builds when there is none or another model made it; updates it (incrementally) when the
    documents folder or the chunking changed since. Never re-embeds or swaps behind the user's
    back: an index of another documents folder is refused, a damaged current version is answered
    from its previous one (its `note` says so), an unusable index raises IndexStoreError, and a
    folder that cannot be written (or documents gone) leaves the index served as it is.
    """
    settings = settings or Settings.resolve()
    index = target_for(index_dir, settings).current(embedder)
    if index is None:
        return build(docs_dir, index_dir, embedder, progress=progress, settings=settings).index
    check_same_documents(index.manifest, docs_dir, index_dir)
    if index.note:
        return index
    if not docs_dir.is_dir():
        log.warning("the documents folder %s is not here; answering from the index as it was built", docs_dir)
        return index
    if (index.manifest.get("chunking") == chunk_settings(settings).as_dict()
            and index.manifest.get("docs_fingerprint") == folder_fingerprint(docs_dir, settings.max_files)):
        return index
    if settings.store == "faiss" and not os.access(index_dir, os.W_OK):
        log.warning("the documents in %s changed, but the index folder %s cannot be written; answering from "
                    "the index as it was built", docs_dir, index_dir)
        return index
    return build(docs_dir, index_dir, embedder, progress=progress, settings=settings).index


def build(docs_dir: Path, index_dir: Path, embedder: Any, chunking: ChunkSettings | None = None,
          progress: Progress = no_progress, settings: Settings | None = None, rebuild: bool = False,
          removing: frozenset[str] = frozenset()) -> BuildReport:
    """Index every document of `docs_dir` into `index_dir`; returns the loaded new index and counts.

    `removing` names documents (as citations name them) to leave out: their files are deleted
    once the version without them has landed, under the build lock, so no reader ever sees a
    version that lacks a document whose file is still there, or the reverse for long.

    Raises IngestError when the folder cannot be listed, ModelError when the model
    cannot embed at all, IndexStoreError when the index holds another documents folder
    (unless `rebuild`) or the new version cannot be written (the served one untouched).
    """
    started = time.perf_counter()
    settings = settings or Settings.resolve()
    chunking = chunking or chunk_settings(settings)
    target = target_for(index_dir, settings)
    target.check()
    with build_lock(index_dir, progress):
        if not rebuild:  # under the lock: against the version this build replaces, whoever landed it
            check_same_documents(target.served_manifest(), docs_dir, index_dir)
        fingerprint = folder_fingerprint(docs_dir, settings.max_files, removing)
        raws, skipped = read_folder(docs_dir, settings, progress, removing)
        served = target.served()
        planned = plan_documents(raws, chunking, embedder.model_id, skipped, progress, served)
        embedded, counts = embed_documents(planned, embedder, index_dir, chunking, skipped, target, progress, served)
        progress("writing", 0, 1)
        version = new_version(embedder, chunking, embedded, skipped, fingerprint, settings,
                              docs_record(docs_dir, index_dir), indexed_dates(served, planned))
        try:
            index = target.write(version)
        except OSError as exc:
            raise store_error(index_dir, exc) from exc
        for source in removing:
            (docs_dir / source).unlink(missing_ok=True)
        VectorCache(index_dir).clear()
        progress("writing", 1, 1)
    report = BuildReport(index, len(embedded), index.passage_count, index.sentence_count, counts["embedded"],
                         counts["reused"], tuple(skipped), time.perf_counter() - started,
                         resumed_documents=counts["resumed"], embedded_texts=counts["texts"])
    log.info("indexed %d documents (%d embedded, %d unchanged, %d resumed, %d skipped) in %.1f s",
             report.documents, report.embedded_documents, report.reused_documents, report.resumed_documents,
             len(report.skipped), report.seconds)
    return report


def indexed_dates(served: IndexReader | None, planned: list[Planned]) -> dict[str, str]:
    """When each document was indexed as it is now: kept from the served version for a document whose
    split key is unchanged, now for the others."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest = served.manifest if served is not None else {}
    before = {entry["split_key"]: entry.get("indexed_at") or manifest.get("created_at", now)
              for entry in manifest.get("documents", []) if entry.get("split_key")}
    return {item.split.document.doc_id: before.get(item.split_key, now) for item in planned}


def new_version(embedder: Any, chunking: ChunkSettings, embedded: list[tuple[Planned, DocumentVectors]],
                skipped: list[Skipped], fingerprint: str, settings: Settings,
                docs: dict[str, str] | None = None, dates: dict[str, str] | None = None) -> NewVersion:
    """The records of every embedded document numbered in one sequence, with their vectors and manifest."""
    passages: list[Passage] = []
    sentences: list[Sentence] = []
    clause_sentence: list[int] = []
    for item, _ in embedded:
        doc_passages, doc_sentences = records_of(item.split, len(passages), len(sentences))
        clause_sentence.extend(doc_sentences[number].sentence_id for number, _ in item.clauses)
        passages.extend(doc_passages)
        sentences.extend(doc_sentences)
    dim = embedder.dim

    def stack(part: str) -> np.ndarray:
        blocks = [getattr(vectors, part) for _, vectors in embedded]
        return np.vstack(blocks).astype(np.float32) if blocks else np.zeros((0, dim), np.float32)

    p_matrix = stack("passages")
    # One row per document, in their order: its title's vector, or zeros when it states none.
    t_matrix = np.vstack([vectors.titles[:1] if len(vectors.titles) else np.zeros((1, dim), np.float32)
                          for _, vectors in embedded]).astype(np.float32) if embedded else np.zeros((0, dim), np.float32)
    c_owner = np.asarray(clause_sentence, dtype=np.int64)
    documents = [item.split.document for item, _ in embedded]
    faiss_kind = choose_kind(len(p_matrix), None if settings.faiss_index == "auto" else settings.faiss_index)
    manifest = manifest_for(embedder.info, chunking, documents, passages, sentences, len(c_owner), faiss_kind,
                            fingerprint, skipped, docs, {item.split.document.doc_id: item.split_key for item, _ in embedded},
                            dates)
    language = {doc.doc_id: doc.language for doc in documents}

    by_id = {doc.doc_id: doc for doc in documents}

    def terms(row: Passage | Sentence) -> list[str]:
        return analyze(found_by(by_id[row.doc_id], row.start, row.text, title=isinstance(row, Passage)),
                       language[row.doc_id])

    return NewVersion(manifest, documents, passages, sentences, p_matrix, stack("sentences"), stack("clauses"),
                      c_owner, LexicalIndex.build([terms(p) for p in passages]),
                      LexicalIndex.build([terms(s) for s in sentences]), faiss_kind, t_matrix,
                      heading_terms(by_id, sentences))
