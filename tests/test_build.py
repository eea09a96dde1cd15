"""Builds that survive real corpora: one document's failure is its own, interrupted builds resume.

Most tests here use the fake embedder (fast tier); the last ones run the real model.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import RagError
from rag.index.build import build
from rag.index.store import load
from rag.index.vector_cache import FOLDER, VectorCache
from rag.records import Span
from rag.text.chunks import ChunkSettings, chunk_blocks, clause_spans
from tests.conftest import ROOT, SEEDS
from tests.fakes import FakeEmbedder

GOOD = {
    "a.txt": "Titre A\nLes marques investiront le social commerce en 2021. Les créateurs suivront.\n",
    "b.txt": "Titre B\nTikTok gagnera encore des utilisateurs. Snapchat reculera nettement.\n",
    "c.txt": "Titre C\nLes podcasts deviendront un canal publicitaire majeur pour les marques.\n",
}
# A long sentence whose last character is a clause separator: the pattern that crashed
# `rag build` on a real FAQ corpus ("Span: invalid span start=369 end=369").
TRAILING_SEPARATOR = ("Démarches\nPour obtenir le document, il faut remplir le formulaire en ligne, joindre les "
                      "pièces justificatives demandées et attendre la réponse de l'administration (délai moyen : "
                      "deux mois, parfois davantage en période de forte demande ; voir la rubrique dédiée)\n")


def _folder(tmp_path, files: dict[str, str]):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for name, text in files.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


# ------------------------------------------------------------------ clauses and chunks

def test_a_long_sentence_ending_with_a_separator_gives_valid_clauses():
    text = TRAILING_SEPARATOR.split("\n")[1]
    for ending in (")", ":", ";", "»", " –", ")…"):
        body = text + ending
        spans = clause_spans(body, Span(0, len(body)))
        assert all(0 <= s.start < s.end <= len(body) for s in spans)


def test_a_document_with_trailing_separators_builds(tmp_path):
    docs = _folder(tmp_path, {**GOOD, "demarches.txt": TRAILING_SEPARATOR})
    report = build(docs, tmp_path / "index", FakeEmbedder())
    assert report.documents == 4 and not report.skipped


ADVERSARIAL = st.one_of(
    st.text(alphabet=",;:()[]«»—–-. !?…", min_size=1, max_size=400),  # only punctuation
    st.text(min_size=1, max_size=600),  # any Unicode, mixed scripts included
    st.builds(lambda word, n, end: (word + " ") * n + end,
              st.sampled_from(["mot", "słowo", "слово", "كلمة", "単語", "🙂"]), st.integers(1, 2000),
              st.sampled_from(["", ";", ")", ":", " - ", "»", "."])),  # up to 10k characters without a break
)


@settings(max_examples=150, deadline=None)
@given(ADVERSARIAL)
def test_property_clauses_are_ordered_non_empty_spans_inside_the_sentence(body):
    text = "x " + body + " y"
    sentence = Span(2, 2 + len(body)) if body else Span(0, len(text))
    spans = clause_spans(text, sentence, min_chars=10, long_sentence=20)
    for span in spans:
        assert sentence.start <= span.start < span.end <= sentence.end
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ADVERSARIAL, st.sampled_from(["fr", "en"]))
def test_property_chunks_cover_sentences_inside_their_block(body, language):
    text = "Titre\n" + body + "\n"
    block = Span(6, 6 + len(body)) if body else Span(0, 5)
    for chunk in chunk_blocks(text, (block,), language, ChunkSettings(max_sentences=3, max_chars=200)):
        assert block.start <= chunk.span.start < chunk.span.end <= block.end
        assert chunk.sentences and chunk.sentences[0].start == chunk.span.start
        assert chunk.sentences[-1].end == chunk.span.end
        for sentence in chunk.sentences:
            assert text[sentence.start : sentence.end].strip() == text[sentence.start : sentence.end]


# ------------------------------------------------------------------ one document's failure

def test_a_document_that_fails_to_split_is_skipped_with_its_reason(tmp_path, monkeypatch):
    import rag.index.plan as planning

    real = planning.split_document

    def fragile(raw, chunking, repeated=frozenset()):
        if raw.source == "b.txt":
            raise ValueError("segmenter exploded")
        return real(raw, chunking, repeated)

    monkeypatch.setattr(planning, "split_document", fragile)
    report = build(_folder(tmp_path, GOOD), tmp_path / "index", FakeEmbedder())
    assert report.documents == 2
    assert [(s.source, "segmenter exploded" in s.reason) for s in report.skipped] == [("b.txt", True)]
    manifest = load(tmp_path / "index").manifest
    assert manifest["skipped"][0]["source"] == "b.txt" and "split" in manifest["skipped"][0]["reason"]


def test_a_document_the_model_cannot_embed_is_skipped_the_rest_indexed(tmp_path):
    files = {**GOOD, "poison.txt": "Titre P\nCe texte contient POISON et rien d'autre.\n"}
    report = build(_folder(tmp_path, files), tmp_path / "index", FakeEmbedder(fail_on="POISON"))
    assert report.documents == 3
    assert len(report.skipped) == 1 and report.skipped[0].source == "poison.txt"
    assert "could not be embedded" in report.skipped[0].reason


def test_a_model_that_fails_on_everything_stops_the_build_with_one_sentence(tmp_path):
    with pytest.raises(RagError, match="failed on all"):
        build(_folder(tmp_path, GOOD), tmp_path / "index", FakeEmbedder(fail_on=""))


# ------------------------------------------------------------------ resumable builds

class Interrupted(BaseException):
    """Stands for a kill: not an Exception, so nothing in the build may swallow it."""


class InterruptAfter(FakeEmbedder):
    def __init__(self, calls: int) -> None:
        super().__init__()
        self.allowed = calls

    def encode_passages(self, texts, batch_size=None):
        if self.calls >= self.allowed:
            raise Interrupted()
        return super().encode_passages(texts, batch_size)


def _many_documents(tmp_path, count: int):
    files = {f"doc{i:02d}.txt": f"Document {i}\nLe sujet numéro {i} concerne la tendance {i * 7} des réseaux. "
                                f"Une deuxième phrase parle du thème {i} en détail.\n" for i in range(count)}
    return _folder(tmp_path, files)


def test_an_interrupted_build_resumes_without_embedding_again(tmp_path, monkeypatch):
    import rag.index.embed as building

    monkeypatch.setattr(building, "ROUND_TEXTS", 4)  # several rounds on small documents
    docs = _many_documents(tmp_path, 12)
    index_dir = tmp_path / "index"
    with pytest.raises(Interrupted):
        build(docs, index_dir, InterruptAfter(calls=3))
    kept = len(VectorCache(index_dir))
    assert 0 < kept < 12
    second = FakeEmbedder()
    report = build(docs, index_dir, second)
    assert report.documents == 12
    assert report.resumed_documents == kept
    assert report.embedded_documents == 12 - kept
    assert not (index_dir / FOLDER).exists()  # the landed index holds the vectors now


def test_resumed_vectors_equal_freshly_computed_ones(tmp_path, monkeypatch):
    import rag.index.embed as building

    monkeypatch.setattr(building, "ROUND_TEXTS", 4)
    docs = _many_documents(tmp_path, 6)
    with pytest.raises(Interrupted):
        build(docs, tmp_path / "resumed", InterruptAfter(calls=2))
    resumed = build(docs, tmp_path / "resumed", FakeEmbedder()).index
    fresh = build(docs, tmp_path / "fresh", FakeEmbedder()).index
    assert np.array_equal(np.asarray(resumed.sentence_vectors), np.asarray(fresh.sentence_vectors))
    assert np.array_equal(np.asarray(resumed.clause_vectors), np.asarray(fresh.clause_vectors))


def test_a_damaged_cache_entry_is_computed_again(tmp_path, monkeypatch):
    import rag.index.embed as building

    monkeypatch.setattr(building, "ROUND_TEXTS", 4)
    docs = _many_documents(tmp_path, 6)
    index_dir = tmp_path / "index"
    with pytest.raises(Interrupted):
        build(docs, index_dir, InterruptAfter(calls=2))
    entries = sorted((index_dir / FOLDER).glob("*.npz"))
    entries[0].write_bytes(b"not a numpy file")
    report = build(docs, index_dir, FakeEmbedder())
    assert report.documents == 6 and report.resumed_documents == len(entries) - 1


def test_a_cache_entry_of_another_model_is_never_used(tmp_path, monkeypatch):
    import rag.index.embed as building

    class OtherModel(FakeEmbedder):
        model_id = "another-model"

    monkeypatch.setattr(building, "ROUND_TEXTS", 4)
    docs = _many_documents(tmp_path, 6)
    with pytest.raises(Interrupted):
        build(docs, tmp_path / "index", InterruptAfter(calls=2))
    report = build(docs, tmp_path / "index", OtherModel())
    assert report.resumed_documents == 0 and report.embedded_documents == 6


# ------------------------------------------------------------------ the real thing

@pytest.mark.slow
def test_broken_documents_among_good_ones_with_the_real_model(embedder, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    (docs / "demarches.txt").write_text(TRAILING_SEPARATOR, encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\n%%EOF garbage")
    (docs / "binary.md").write_bytes(bytes(range(256)) * 8)
    report = build(docs, tmp_path / "index", embedder)
    assert report.documents == 3
    assert {s.source for s in report.skipped} == {"broken.pdf", "binary.md"}
    assert all(s.reason for s in report.skipped)


RESUMABLE_BUILDER = """
import sys
from pathlib import Path
import rag.index.embed as embedding
from rag.embedding.embedder import Embedder
from rag.index.build import build

embedding.ROUND_TEXTS = 20  # many small rounds, so that half-way is a real place to stop


def progress(stage, done, total):
    print(stage, done, total, flush=True)

build(Path(sys.argv[1]), Path(sys.argv[2]), Embedder(), progress=progress)
"""


@pytest.mark.slow
def test_a_build_killed_half_way_resumes_where_it_stopped(embedder, tmp_path):
    """Kill a real `build` (SIGKILL) once half of its texts are embedded, then build again."""
    docs = _many_documents(tmp_path, 40)
    index_dir = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", RESUMABLE_BUILDER, str(docs), str(index_dir)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 300
    assert child.stdout is not None
    for line in child.stdout:
        stage, done, total = line.split()
        if stage == "embedding" and int(total) and int(done) >= int(total) // 2:
            child.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    child.wait()
    kept = len(VectorCache(index_dir))
    assert 0 < kept < 40
    counting = CountingEmbedder(embedder)
    report = build(docs, index_dir, counting)
    assert report.documents == 40
    assert report.resumed_documents == kept
    assert report.embedded_documents == 40 - kept
    assert counting.texts == report.embedded_texts  # only the missing documents' texts went to the model


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.texts = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_passages(self, texts, batch_size=None):
        self.texts += len(texts)
        return self.inner.encode_passages(texts, batch_size)


def test_a_sentence_is_found_by_the_words_of_its_section_heading(tmp_path):
    """A definition under its term ("/etc/skel" then "Quand un compte est créé, les fichiers de ce
    répertoire…") never names it: BM25 finds it by its heading's words, not by the title's."""
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hier.txt").write_text(
        "Hiérarchie des répertoires\nUn système contient les répertoires suivants, décrits un par un.\n"
        "/etc/skel\nQuand un nouveau compte est créé, les fichiers de ce répertoire sont copiés.\n"
        "/etc/opt\nFichiers de configuration des applications installées dans /opt.\n", encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    index = Engine(settings, embedder=FakeEmbedder()).open()
    scores = index.lexical("sentences", ["skel"])
    found = [index.sentences_by_id([int(i)])[0].text for i in scores.top(5)]
    assert found == ["Quand un nouveau compte est créé, les fichiers de ce répertoire sont copiés."]
    from rag.text.analyzer import analyze

    title_terms = analyze("Hiérarchie", "fr")
    assert title_terms and index.lexical("sentences", title_terms).top(5).size == 0  # the title's words stay its own


def test_a_heading_s_words_are_not_counted_as_the_sentences_own(tmp_path):
    """BM25 finds the sentences under "/etc/skel" by that heading, but they do not say "skel": how many
    sentences hold a word in their own words is what tells a topic from a word they all share. A version
    built before the counts were written counts them when first asked, the same."""
    from rag.config import Settings
    from rag.engine import Engine
    from rag.index.store import HEADING_TERMS, load
    from rag.text.analyzer import analyze
    from tests.fakes import FakeEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hier.txt").write_text(
        "Hiérarchie des répertoires\nUn système contient les répertoires suivants, décrits un par un.\n"
        "/etc/skel\nQuand un nouveau compte est créé, les fichiers de ce répertoire sont copiés.\n"
        "Chaque utilisateur reçoit ainsi sa configuration de départ.\n"
        "/etc/opt\nFichiers de configuration des applications installées dans /opt, dont skel ne dépend pas.\n",
        encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    index = Engine(settings, embedder=FakeEmbedder()).open()
    skel, = analyze("skel", "fr")
    assert index.lexical("sentences", [skel]).frequency(skel) == 3  # two under the heading, one saying it
    assert index.own_frequency([skel, "inconnu"]) == {skel: 1, "inconnu": 0}
    assert index.heading_terms[skel] == 2
    shutil.copytree(index.folder, tmp_path / "older")
    (tmp_path / "older" / HEADING_TERMS).unlink()
    manifest = json.loads((tmp_path / "older" / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"][HEADING_TERMS]
    (tmp_path / "older" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (tmp_path / "older-index").mkdir()
    shutil.move(tmp_path / "older", tmp_path / "older-index" / index.folder.name)
    (tmp_path / "older-index" / "CURRENT").write_text(json.dumps({"current": index.folder.name}), encoding="utf-8")
    older = load(tmp_path / "older-index")
    assert older.heading_terms is None and older.own_frequency([skel]) == {skel: 1}


def test_each_sentence_records_its_language_when_the_index_is_built(tmp_path):
    """A French page quoting an English line: the line is English in the index itself, so that no
    question detects it again; an index built before languages were recorded still answers."""
    from dataclasses import replace

    from rag.index.store import load
    from rag.retrieve.hybrid import sentence_languages

    text = ("Guide\nLe serveur principal fournit les adresses du réseau de l'école.\n"
            "This program is free software; you can redistribute it and modify it.\n")
    report = build(_folder(tmp_path, {"guide.txt": text}), tmp_path / "index", FakeEmbedder())
    index = load(tmp_path / "index")
    languages = {s.text[:8]: s.language for s in index.sentences}
    assert languages == {"Le serve": "fr", "This pro": "en"} and report.sentences == 2
    older = [replace(s, language="") for s in index.sentences]  # as read from an index of before
    assert sentence_languages(index, older) == [s.language for s in index.sentences]
    # A later build reads an unchanged document's split, languages included, back from the version it
    # replaces; from a version of before, it detects them once.
    from rag.index.plan import split_from_index

    doc_id = index.doc_ids[0]
    assert split_from_index(index, doc_id).languages == ("fr", "en")
    assert split_from_index(replace(index, sentences=tuple(older)), doc_id).languages == ("fr", "en")
