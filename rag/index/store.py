"""The index on disk: a directory with a manifest, written atomically, loaded only when it matches.

Layout of `index/`:
    CURRENT              {"current": "v-…", "previous": "v-…"}, replaced atomically
    v-<stamp>/           one complete version
        manifest.json    format, model, dimension, chunking, per-document hashes, file checksums
        documents.jsonl  one cleaned document a line (its full text included)
        passages.jsonl   sentences.jsonl
        passages.faiss   the passage vectors, exact or approximate by corpus size
        passages.npy   sentences.npy   clauses.npy   clause_sentence.npy   (read whole, checked against the manifest)
        bm25-passages/   bm25-sentences/   (bm25s arrays, saved without pickle)
        heading-terms.json   the terms sentences hold through their section heading only, counted
                             (absent from versions built before it: counted when first asked)

A build writes a new version in a temporary folder, fsyncs it, renames it into
place, then swaps CURRENT. A crash at any point leaves the previous version
loadable; a loaded `Index` is immutable, so an answer comes wholly from one version.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..digest import sha256_file
from ..errors import IndexStoreError
from ..records import Definition, Document, Passage, Sentence, Span
from .dense import read_faiss
from .lexical import LexicalIndex
from .manifest import FORMAT_VERSION

from .reader import Index

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
HEADING_TERMS = "heading-terms.json"


# ---------------------------------------------------------------- records ⇄ JSON

def document_to_json(doc: Document) -> dict[str, Any]:
    data = asdict(doc)
    data["blocks"] = [[b.start, b.end] for b in doc.blocks]
    data["definitions"] = [[d.term, d.start, d.end] for d in doc.definitions]
    return data


def document_from_json(data: dict[str, Any]) -> Document:
    return Document(
        doc_id=data["doc_id"], source=data["source"], title=data["title"], text=data["text"],
        kind=data["kind"], language=data["language"], year=data["year"], sha256=data["sha256"],
        blocks=tuple(Span(s, e) for s, e in data["blocks"]),
        metadata=tuple((k, v) for k, v in data["metadata"]),
        definitions=tuple(Definition(t, s, e) for t, s, e in data["definitions"]),
        dropped=tuple((r, s, e) for r, s, e in data["dropped"]),
        headings=tuple((s, h) for s, h in data["headings"]),
        title_stated=bool(data.get("title_stated", False)),
    )


def passage_from_json(data: dict[str, Any]) -> Passage:
    data = dict(data)
    data["sentence_ids"] = tuple(data["sentence_ids"])
    return Passage(**data)


def sentence_from_json(data: dict[str, Any]) -> Sentence:
    return Sentence(**data)


# ---------------------------------------------------------------- writing

def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        raise IndexStoreError(f"{path} is missing or unreadable ({exc})") from exc


def write_version(index_dir: Path, manifest: dict[str, Any], files: dict[str, Any]) -> Path:
    """Write a complete version folder and make it CURRENT. `files` maps names to writers."""
    index_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=index_dir))
    try:
        for name, writer in files.items():
            writer(staging / name)
        checksums = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            checksums[path.relative_to(staging).as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        manifest = {**manifest, "files": checksums}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        _fsync_tree(staging)
        name = f"v-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
        final = index_dir / name
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    _swap_current(index_dir, name)
    return final


def _swap_current(index_dir: Path, name: str) -> None:
    pointer = read_pointer(index_dir)
    previous = pointer.get("current")
    temporary = index_dir / f".{CURRENT}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps({"current": name, "previous": previous}), encoding="utf-8")
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, index_dir / CURRENT)
    keep = {name, previous}
    for old in index_dir.glob("v-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def read_pointer(index_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((index_dir / CURRENT).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------- loading

def exists(index_dir: Path) -> bool:
    return bool(read_pointer(index_dir).get("current"))


def served_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest of the version CURRENT names, read alone; None when there is none or it is unreadable."""
    name = read_pointer(index_dir).get("current")
    if not name:
        return None
    try:
        data = json.loads((index_dir / str(name) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load(index_dir: Path, verify: bool = True) -> Index:
    """Load CURRENT, or the previous version if CURRENT is damaged.

    Raises IndexStoreError naming what is wrong when no version is usable.
    """
    pointer = read_pointer(index_dir)
    if not pointer.get("current"):
        raise IndexStoreError(f"No index in {index_dir}. Build it with: rag build --index {index_dir}")
    errors = []
    for key in ("current", "previous"):
        name = pointer.get(key)
        if not name:
            continue
        try:
            index = load_version(index_dir / name, verify=verify)
        except IndexStoreError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if errors:
            note = f"the current index version is damaged ({errors[0]}); answering from the previous one, {name}"
            log.warning("%s; rag build --index %s makes a new one", note, index_dir)
            return replace(index, note=note)
        return index
    raise IndexStoreError("The index is damaged (" + "; ".join(errors) + f"). Rebuild it with: rag build --index {index_dir}")


def verify_files(folder: Path, manifest: dict[str, Any], skip: frozenset[str] = frozenset()) -> None:
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise IndexStoreError(f"{name} is missing")
        if name not in skip and (path.stat().st_size != expected["bytes"] or sha256_file(path) != expected["sha256"]):
            raise IndexStoreError(f"{name} does not match its checksum in the manifest (truncated or altered)")


VECTOR_FILES = ("passages.npy", "sentences.npy", "clauses.npy", "clause_sentence.npy", "titles.npy")


def read_array(path: Path, expected: dict[str, Any] | None) -> np.ndarray:
    """A `.npy` file read whole into memory and checked against its manifest entry on the very
    bytes used: never a memory map, which a file shortened under the process (a copy over a live
    version, a truncate) turns into SIGBUS and a silent death. The array is read-only."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexStoreError(f"{path.name} is unreadable ({exc.strerror})") from exc
    if expected is not None and (len(data) != expected["bytes"] or hashlib.sha256(data).hexdigest() != expected["sha256"]):
        raise IndexStoreError(f"{path.name} does not match its checksum in the manifest (truncated or altered)")
    try:
        header = io.BytesIO(data)
        version = np.lib.format.read_magic(header)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(header)
        if dtype.hasobject:
            raise ValueError("object arrays are never loaded")
        count = int(np.prod(shape, dtype=np.int64))
        array = np.frombuffer(data, dtype=dtype, count=count, offset=header.tell())
    except ValueError as exc:
        raise IndexStoreError(f"{path.name} is not a readable array ({exc})") from exc
    return array.reshape(shape, order="F" if fortran else "C")


def load_version(folder: Path, verify: bool = True) -> Index:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexStoreError(f"{folder / MANIFEST} is missing or not JSON") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexStoreError(f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}")
    files = manifest.get("files", {}) if verify else {}
    if verify:
        verify_files(folder, manifest, skip=frozenset(VECTOR_FILES))
    documents = {d["doc_id"]: document_from_json(d) for d in read_jsonl(folder / "documents.jsonl")}
    passages = tuple(passage_from_json(p) for p in read_jsonl(folder / "passages.jsonl"))
    sentences = tuple(sentence_from_json(s) for s in read_jsonl(folder / "sentences.jsonl"))
    passage_vectors, sentence_vectors, clause_vectors, clause_sentence, title_vectors = (
        read_array(folder / name, files.get(name)) for name in VECTOR_FILES)
    passage_faiss = read_faiss(folder / "passages.faiss")
    counts = manifest["counts"]
    dim = manifest["model"]["dim"]
    checks = [
        (len(documents), counts["documents"], "documents"),
        (len(passages), counts["passages"], "passages"),
        (len(sentences), counts["sentences"], "sentences"),
        (int(passage_faiss.ntotal), counts["passages"], "passage vectors"),
        (len(passage_vectors), counts["passages"], "stored passage vectors"),
        (len(sentence_vectors), counts["sentences"], "stored sentence vectors"),
        (len(clause_vectors), counts["clauses"], "clause vectors"),
        (len(clause_sentence), counts["clauses"], "clause owners"),
        (len(title_vectors), counts["documents"], "title vectors"),
        (int(passage_faiss.d), dim, "passage vector dimension"),
        (int(sentence_vectors.shape[1]) if sentence_vectors.ndim == 2 else -1, dim, "sentence vector dimension"),
    ]
    for got, expected, what in checks:
        if got != expected:
            raise IndexStoreError(f"{what}: {got} found, the manifest says {expected}")
    if len(clause_sentence) and (clause_sentence.min() < 0 or clause_sentence.max() >= len(sentences)
                                 or (np.diff(clause_sentence) < 0).any()):
        raise IndexStoreError("clause owners are out of order or point outside the sentence store")
    heading_terms = read_heading_terms(folder / HEADING_TERMS)
    doc_passages: dict[str, list[int]] = {}
    for passage in passages:
        doc_passages.setdefault(passage.doc_id, []).append(passage.passage_id)
    return Index(
        folder=folder, manifest=manifest, documents=documents, passages=passages, sentences=sentences,
        passage_vectors=passage_vectors, sentence_vectors=sentence_vectors,
        passage_faiss=passage_faiss,
        passage_bm25=LexicalIndex.load(folder / "bm25-passages", len(passages)),
        sentence_bm25=LexicalIndex.load(folder / "bm25-sentences", len(sentences)),
        clause_vectors=clause_vectors, clause_sentence=clause_sentence,
        title_vectors=np.ascontiguousarray(title_vectors, dtype=np.float32).reshape(len(documents), -1)
        if len(documents) else np.zeros((0, int(dim)), np.float32),
        doc_passages={k: tuple(v) for k, v in doc_passages.items()}, heading_terms=heading_terms,
    )


def read_heading_terms(path: Path) -> dict[str, int] | None:
    """text.document.heading_terms as the build wrote them; None for a version built before."""
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IndexStoreError(f"{path} is not readable ({exc}); rebuild the index with: rag build") from exc
    return parse_heading_terms(text, str(path), "rag build")


def parse_heading_terms(text: str, where: str, rebuild: str) -> dict[str, int]:
    """The heading counts as written by either store (a file here, a blob in Milvus), checked."""
    try:
        counts = json.loads(text)
    except ValueError as exc:
        raise IndexStoreError(f"{where} is not JSON ({exc}); rebuild the index with: {rebuild}") from exc
    if not isinstance(counts, dict) or not all(isinstance(n, int) and n >= 0 for n in counts.values()):
        raise IndexStoreError(f"{where} does not map terms to counts; rebuild the index with: {rebuild}")
    return counts
