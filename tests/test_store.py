"""The index on disk: round trip, manifest checks, corruption, incremental rebuilds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rag.index.build import build, open_index
from rag.errors import IndexStoreError
from rag.index.store import CURRENT, load, read_pointer

DOC_A = "Titre A\nLes marques investiront le social commerce en 2021. Les créateurs suivront.\n"
DOC_B = "Titre B\nTikTok gagnera encore des utilisateurs. Snapchat reculera nettement.\n"
DOC_C = "Titre C\nLes podcasts deviendront un canal publicitaire majeur pour les marques.\n"


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(DOC_A, encoding="utf-8")
    (folder / "b.txt").write_text(DOC_B, encoding="utf-8")
    return folder


def test_round_trip_preserves_everything(embedder, docs, tmp_path):
    report = build(docs, tmp_path / "index", embedder)
    again = load(tmp_path / "index")
    assert again.passages == report.index.passages
    assert again.sentences == report.index.sentences
    assert again.documents == report.index.documents
    assert np.array_equal(again.sentence_vectors, report.index.sentence_vectors)
    manifest = again.manifest
    assert manifest["model"]["dim"] == embedder.dim and manifest["model"]["normalized"] is True
    assert manifest["counts"] == {"documents": 2, "passages": 2, "sentences": 4, "clauses": 0}
    assert {d["source"] for d in manifest["documents"]} == {"a.txt", "b.txt"}
    assert all(len(d["sha256"]) == 64 for d in manifest["documents"])
    assert manifest["chunking"]["max_sentences"] >= 1 and "faiss" in manifest["versions"]


def test_seed_index_counts(seed_index):
    counts = seed_index.manifest["counts"]
    assert counts["documents"] == 2
    assert counts["sentences"] == len(seed_index.sentences) > 40


def test_no_pickle_files_in_the_index(seed_index):
    for path in seed_index.folder.rglob("*"):
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises if an object array had been pickled
        assert path.suffix not in {".pkl", ".pickle"}


def test_incremental_add_edit_remove(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    first = build(docs, index_dir, embedder)
    assert first.embedded_documents == 2

    (docs / "c.txt").write_text(DOC_C, encoding="utf-8")
    added = build(docs, index_dir, embedder)
    assert (added.documents, added.embedded_documents, added.reused_documents) == (3, 1, 2)

    (docs / "a.txt").write_text(DOC_A.replace("2021", "2022"), encoding="utf-8")
    edited = build(docs, index_dir, embedder)
    assert edited.embedded_documents == 1
    texts = [p.text for p in edited.index.passages]
    assert any("2022" in t for t in texts) and not any("2021" in t for t in texts)

    (docs / "b.txt").unlink()
    removed = build(docs, index_dir, embedder)
    assert removed.documents == 2
    assert not any("TikTok" in p.text for p in removed.index.passages)
    # Reused vectors are the same as freshly computed ones.
    fresh = embedder.encode_passages([s.text for s in removed.index.sentences])
    assert np.allclose(fresh, removed.index.sentence_vectors, atol=1e-5)


def test_same_content_twice_is_indexed_once(embedder, docs, tmp_path):
    (docs / "copie.txt").write_text(DOC_A, encoding="utf-8")
    report = build(docs, tmp_path / "index", embedder)
    assert report.documents == 2
    assert [(s.source, s.reason) for s in report.skipped] == [("copie.txt", "same content as a.txt")]


def test_empty_file_gives_no_vectors(embedder, docs, tmp_path):
    (docs / "vide.txt").write_bytes(b"")
    report = build(docs, tmp_path / "index", embedder)
    assert report.documents == 2
    assert ("vide.txt", "empty file") in [(s.source, s.reason) for s in report.skipped]


def _current(index_dir):
    return index_dir / read_pointer(index_dir)["current"]


def test_truncated_faiss_falls_back_to_previous_version(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    build(docs, index_dir, embedder)
    (docs / "c.txt").write_text(DOC_C, encoding="utf-8")
    build(docs, index_dir, embedder)
    faiss_file = _current(index_dir) / "passages.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    index = load(index_dir)  # the previous, complete version
    assert index.manifest["counts"]["documents"] == 2


def test_corrupt_only_version_is_refused_with_a_clear_message(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    build(docs, index_dir, embedder)
    target = _current(index_dir) / "passages.faiss"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit: same size, different checksum
    target.write_bytes(bytes(data))
    with pytest.raises(IndexStoreError, match="checksum.*Rebuild it with: rag build"):
        load(index_dir)


def test_missing_passage_store_is_refused(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    build(docs, index_dir, embedder)
    (_current(index_dir) / "passages.jsonl").unlink()
    with pytest.raises(IndexStoreError, match="passages.jsonl is missing"):
        load(index_dir)


def test_no_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexStoreError, match="rag build"):
        load(tmp_path / "nothing")


def test_other_format_version_is_refused(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    build(docs, index_dir, embedder)
    manifest_path = _current(index_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match="format 99"):
        load(index_dir)


class RenamedModel:
    """The real embedder under another model id: an index made by 'another model'."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def model_id(self):
        return "someone/other-model"

    @property
    def info(self):
        from dataclasses import replace

        return replace(self.inner.info, model_id=self.model_id)

    @property
    def dim(self):
        return self.inner.dim

    def encode_passages(self, texts):
        return self.inner.encode_passages(texts)


def test_index_from_another_model_is_rebuilt_not_used(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    old = build(docs, index_dir, embedder).index
    index = open_index(docs, index_dir, RenamedModel(embedder))
    assert index.model_id == "someone/other-model" and index.folder != old.folder


def test_changed_folder_is_picked_up_by_open_index(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    first = open_index(docs, index_dir, embedder)
    assert open_index(docs, index_dir, embedder).folder == first.folder  # unchanged: no rebuild
    (docs / "c.txt").write_text(DOC_C, encoding="utf-8")
    assert open_index(docs, index_dir, embedder).manifest["counts"]["documents"] == 3


def test_crash_during_build_leaves_previous_index(embedder, docs, tmp_path, monkeypatch):
    import rag.index.store as store

    index_dir = tmp_path / "index"
    build(docs, index_dir, embedder)
    before = read_pointer(index_dir)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store, "_fsync_tree", explode)
    (docs / "c.txt").write_text(DOC_C, encoding="utf-8")
    with pytest.raises(IndexStoreError, match="disk full.*untouched"):
        build(docs, index_dir, embedder)
    assert read_pointer(index_dir) == before
    assert load(index_dir).manifest["counts"]["documents"] == 2
    assert not list(index_dir.glob(".building-*"))


def test_pointer_file_is_replaced_atomically(embedder, docs, tmp_path):
    index_dir = tmp_path / "index"
    build(docs, index_dir, embedder)
    build(docs, index_dir, embedder)
    pointer = read_pointer(index_dir)
    assert set(pointer) == {"current", "previous"}
    assert (index_dir / CURRENT).is_file() and not list(index_dir.glob(".CURRENT*"))
    versions = sorted(p.name for p in index_dir.glob("v-*"))
    assert sorted([pointer["current"], pointer["previous"]]) == versions
    shutil.rmtree(index_dir / pointer["previous"])
    assert load(index_dir)  # the current version stands alone
