"""The Milvus store: the same answers as FAISS, incremental and atomic builds, clear failures.

Every test here runs against an embedded milvus-lite file and against a real
`milvus-lite server` on a loopback port (and a cluster when RAG_MILVUS_TEST_URI
is set): the `milvus_uri` fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.engine import Engine
from rag.errors import IndexStoreError
from rag.index.build import build
from tests.conftest import DIGIMIND, KANTAR, ROOT, SEEDS, free_port
from tests.fakes import FakeEmbedder

pytest.importorskip("pymilvus")

QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]


def milvus_settings(uri: str, docs: Path, index_dir: Path, prefix: str | None = None) -> Settings:
    return Settings.resolve(docs_dir=docs, index_dir=index_dir, store="milvus", milvus_uri=uri,
                            milvus_token=os.environ.get("RAG_MILVUS_TEST_TOKEN", "") or None,
                            milvus_collection=prefix or f"t_{uuid.uuid4().hex[:10]}")


def seed_copy(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    return docs


def engines(tmp_path: Path, uri: str, embedder=None) -> tuple[Engine, Engine]:
    docs = seed_copy(tmp_path)
    embedder = embedder or FakeEmbedder()
    faiss = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "faiss", store="faiss"), embedder=embedder)
    milvus = Engine(milvus_settings(uri, docs, tmp_path / "milvus-local"), embedder=embedder)
    faiss.open(), milvus.open()
    return faiss, milvus


def test_retrieval_is_the_same_on_both_stores(tmp_path, milvus_uri):
    faiss, milvus = engines(tmp_path, milvus_uri)
    assert milvus.index.store == "milvus" and faiss.index.store == "faiss"
    for question in QUESTIONS:
        a, b = faiss.retrieve(question), milvus.retrieve(question)
        assert [c.sentence for c in a.candidates[:10]] == [c.sentence for c in b.candidates[:10]], question
        assert np.allclose([c.fused for c in a.candidates], [c.fused for c in b.candidates], atol=1e-5), question
        assert [c.passage for c in a.candidates[:10]] == [c.passage for c in b.candidates[:10]]


def test_lexical_scores_are_the_project_analyzers_bm25(tmp_path, milvus_uri):
    from rag.text.analyzer import analyze

    faiss, milvus = engines(tmp_path, milvus_uri)
    terms = analyze("Les réseaux sociaux et l’influence des marques en 2019, le social commerce", "fr")
    for unit in ("sentences", "passages"):
        ours, theirs = faiss.index.lexical(unit, terms), milvus.index.lexical(unit, terms)
        assert {t: ours.frequency(t) for t in terms} == {t: theirs.frequency(t) for t in terms}
        assert set(ours.top(5).tolist()) == set(theirs.top(5).tolist())
        count = faiss.index.sentence_count if unit == "sentences" else faiss.index.passage_count
        rows = np.arange(count)
        assert np.allclose(ours.at(rows, terms), theirs.at(rows, terms), atol=1e-5)
        assert ours.at(rows, terms).max() > 0  # the terms do occur: the comparison is not of zeros


def test_both_stores_know_the_same_words_of_a_question(tmp_path, milvus_uri):
    """The words a collection never uses are read from the store's own term statistics."""
    from rag.policy import QuestionPolicy
    from rag.query.understand import unfamiliar_words

    faiss, milvus = engines(tmp_path, milvus_uri)
    any_size = QuestionPolicy(vocabulary_min_sentences=1)  # the seeds count as a large collection here
    for question in ("Comment renouveler un passeport biométrique en mairie ?",
                     "Quel rôle jouent les offres par abonnement ?", "Que prévoit Kantar pour le social commerce ?"):
        assert unfamiliar_words(milvus.index, question, "fr", any_size) == \
            unfamiliar_words(faiss.index, question, "fr", any_size), question
    assert unfamiliar_words(milvus.index, "Comment renouveler un passeport biométrique en mairie ?", "fr",
                            any_size) == ("renouveler", "passeport", "biométrique", "mairie")
    assert unfamiliar_words(milvus.index, "Que prévoit Kantar pour le social commerce ?", "fr", any_size) == ()


def test_both_stores_count_a_sentence_s_own_words_alike(tmp_path, milvus_uri):
    """Digimind's heading "l'influence en quête de sens" finds the fifteen sentences under it; five say it."""
    from rag.text.analyzer import analyze

    faiss, milvus = engines(tmp_path, milvus_uri)
    terms = analyze("influence influenceurs commerce médias", "fr")
    assert milvus.index.own_frequency(terms) == faiss.index.own_frequency(terms)
    influence = analyze("influence", "fr")[0]
    assert faiss.index.own_frequency([influence])[influence] < faiss.index.lexical("sentences", [influence]).frequency(influence)


def test_both_stores_find_the_same_names_in_either_stemming(tmp_path, milvus_uri):
    """Names are looked up by each document's language (`doc_languages`, read from the manifest's
    documents by both stores), and in the other language's name for them."""
    from rag.query.understand import find_names

    faiss, milvus = engines(tmp_path, milvus_uri)
    assert list(milvus.index.doc_languages) == list(faiss.index.doc_languages)
    for question, language in (("Que prévoit Kantar pour 2019 ?", "fr"), ("What does Digimind say about TikTok?", "en"),
                               ("What will Kantar do on Saturdays in Brazil?", "en")):
        assert find_names(milvus.index, question, language) == find_names(faiss.index, question, language), question
    assert find_names(milvus.index, "What will Kantar do on Saturdays in Brazil?", "en").unknown == ("Brazil", "Saturdays")


def test_citations_from_milvus_hold_their_document_text(tmp_path, milvus_uri):
    _, milvus = engines(tmp_path, milvus_uri)
    index = milvus.index
    for question in QUESTIONS[:15]:
        answer = milvus.ask(question)
        assert answer.citations
        for citation in answer.citations:
            assert index.document_text(citation.doc_id)[citation.start : citation.end] == citation.passage
        for quote in answer.sentences:
            assert index.document_text(quote.doc_id)[quote.start : quote.end] == quote.text


def test_the_app_process_holds_no_vectors(tmp_path, milvus_uri):
    _, milvus = engines(tmp_path, milvus_uri)
    index = milvus.index
    held = [name for name, value in vars(index).items() if isinstance(value, np.ndarray) and value.size > 1000]
    assert held == []
    assert not hasattr(index, "sentence_vectors") and not hasattr(index, "passage_faiss")


def test_a_build_reuses_unchanged_documents_replaces_edited_ones_and_drops_removed_ones(tmp_path, milvus_uri):
    docs = seed_copy(tmp_path)
    (docs / "note.txt").write_text("La fondue savoyarde se prépare avec trois fromages. "
                                   "Le caquelon doit rester chaud pendant tout le repas.", encoding="utf-8")
    settings = milvus_settings(milvus_uri, docs, tmp_path / "local")
    first = build(docs, settings.index_dir, FakeEmbedder(), settings=settings)
    assert first.embedded_documents == 3 and first.index.store == "milvus"

    (docs / "note.txt").write_text("La raclette se mange avec des pommes de terre. "
                                   "Le fromage fond sous la lampe.", encoding="utf-8")
    (docs / KANTAR).unlink()
    counting = FakeEmbedder()
    second = build(docs, settings.index_dir, counting, settings=settings)
    assert (second.embedded_documents, second.reused_documents) == (1, 1)
    index = second.index
    assert sorted(d.source for d in index.documents.values()) == sorted([DIGIMIND, "note.txt"])
    texts = [s.text for s in index.sentences_by_id(range(index.sentence_count))]
    assert "Le fromage fond sous la lampe." in texts
    assert not any("fondue" in t for t in texts)
    # Nothing of the removed or replaced rows is left in the served collections.
    client = index.connection.client
    removed = [d for d in first.index.documents.values() if d.source in (KANTAR, "note.txt")]
    for doc in removed:
        for part in ("passages", "sentences", "clauses"):
            assert client.query(index.names[part], filter=f'doc_id == "{doc.doc_id}"', output_fields=["id"],
                                limit=10) == []
    engine = Engine(settings, embedder=FakeEmbedder())
    answer = engine.ask("Avec quoi se mange la raclette ?")
    assert any("raclette" in s.text for s in answer.sentences)


def test_only_the_served_version_and_the_one_before_are_kept(tmp_path, milvus_uri):
    docs = seed_copy(tmp_path)
    settings = milvus_settings(milvus_uri, docs, tmp_path / "local")
    versions = []
    for n in range(3):
        (docs / "extra.txt").write_text(f"Version {n} de ce document, qui change à chaque construction.", encoding="utf-8")
        versions.append(build(docs, settings.index_dir, FakeEmbedder(), settings=settings).index.version)
    from rag.index.milvus import connect

    connection = connect(settings)
    assert connection.served_version() == versions[-1]
    assert set(connection.versions()) == {versions[-2], versions[-1]}
    assert all(len(parts) == 5 for parts in connection.versions().values())


def test_answers_during_a_rebuild_come_from_one_version(tmp_path, milvus_uri):
    docs = seed_copy(tmp_path)
    old = "Le protocole Alpha relie les capteurs du verger par radio. " * 3
    new = "Le protocole Alpha relie désormais les capteurs du verger par fibre optique. " * 3
    (docs / "alpha.txt").write_text(old, encoding="utf-8")
    settings = milvus_settings(milvus_uri, docs, tmp_path / "local")
    embedder = FakeEmbedder()
    build(docs, settings.index_dir, embedder, settings=settings)
    reader = Engine(settings, embedder=FakeEmbedder())
    reader.open()
    versions_seen, mixed, errors = set(), [], []
    stop = threading.Event()

    def ask_again_and_again() -> None:
        while not stop.is_set():
            try:
                answer = reader.ask("Comment le protocole Alpha relie-t-il les capteurs du verger ?")
            except Exception as exc:  # a failure here is what the test is about
                errors.append(exc)
                return
            quoted = {c.passage for c in answer.citations if "Alpha" in c.passage}
            kinds = {"old" if q in old else "new" if q in new else "neither" for q in quoted}
            versions_seen.update(kinds)
            if len(kinds) > 1 or "neither" in kinds:
                mixed.append(kinds)

    threads = [threading.Thread(target=ask_again_and_again) for _ in range(3)]
    for thread in threads:
        thread.start()
    (docs / "alpha.txt").write_text(new, encoding="utf-8")
    build(docs, settings.index_dir, embedder, settings=settings)
    deadline = __import__("time").monotonic() + 20
    while "new" not in versions_seen and __import__("time").monotonic() < deadline and not errors:
        __import__("time").sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not errors and not mixed
    assert versions_seen == {"old", "new"}  # the reader moved to the new version without a restart


KILLED_BUILD = """
import os, sys
from pathlib import Path
from rag.config import Settings
from rag.index.milvus import write as milvus
from rag.index.build import build
from tests.fakes import FakeEmbedder

settings = Settings.resolve(docs_dir=sys.argv[1], index_dir=sys.argv[2], store="milvus", milvus_uri=sys.argv[3],
                            milvus_collection=sys.argv[4])
real_insert = milvus._insert

def insert_then_die(connection, name, rows):
    real_insert(connection, name, rows)
    if name.endswith("_sentences"):
        os._exit(9)  # as a SIGKILL would: no cleanup, half the collections written

milvus._insert = insert_then_die
build(Path(sys.argv[1]), Path(sys.argv[2]), FakeEmbedder(), settings=settings)
"""


def test_shards_and_replicas_reach_milvus(tmp_path, milvus_uri, monkeypatch):
    """RAG_MILVUS_SHARDS and RAG_MILVUS_REPLICAS go to every collection a build creates and every load;
    a cluster (RAG_MILVUS_TEST_URI) reports the shards back."""
    from rag.index import milvus
    from rag.index.milvus import connection

    monkeypatch.setattr(connection, "_connections", {})
    settings = milvus_settings(milvus_uri, seed_copy(tmp_path), tmp_path / "local")
    settings = settings.replace(milvus_shards=2, milvus_replicas=1 if milvus_uri.startswith("http") else 2)
    seen: list[tuple[str, dict]] = []
    original = milvus.Connection.call

    def spy(self, doing, method, *args, **kwargs):
        seen.append((method, kwargs))
        return original(self, doing, method, *args, **kwargs)

    monkeypatch.setattr(milvus.Connection, "call", spy)
    engine = Engine(settings, embedder=FakeEmbedder())
    engine.open()
    assert not engine.ask("Qu'est-ce que Kantar prévoit pour le social commerce ?").abstained
    created = [k for m, k in seen if m == "create_collection"]
    loaded = [k for m, k in seen if m == "load_collection"]
    assert len(created) == 5 and all(k["num_shards"] == 2 for k in created)
    assert loaded and all(k["replica_number"] == settings.milvus_replicas for k in loaded)
    if os.environ.get("RAG_MILVUS_TEST_URI"):
        connection = milvus.connect(settings)
        name = connection.name(milvus.open_served(connection).version, "passages")
        assert connection.client.describe_collection(name)["num_shards"] == 2


def test_a_build_killed_half_way_leaves_the_previous_version_serving(tmp_path, milvus_server):
    docs = seed_copy(tmp_path)
    settings = milvus_settings(milvus_server, docs, tmp_path / "local")
    served = build(docs, settings.index_dir, FakeEmbedder(), settings=settings).index.version
    (docs / "new.txt").write_text("Un document ajouté pendant que la construction meurt.", encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(docs), str(settings.index_dir), milvus_server,
                             settings.milvus_collection], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 9, result.stderr[-2000:]
    from rag.index.milvus import connect, open_served

    connection = connect(settings)
    assert connection.served_version() == served
    assert len(connection.versions()) == 2  # the served one and the dead build's leftovers
    engine = Engine(settings, embedder=FakeEmbedder())
    engine._index = open_served(connection)  # read what is served, without the rebuild a changed folder asks for
    answer = engine.ask("Qu'est-ce que Kantar prévoit pour le social commerce ?")
    assert answer.sentences and not answer.message
    # The next build finishes, serves its own version, and keeps the dead one only while it may still be running.
    report = build(docs, settings.index_dir, FakeEmbedder(), settings=settings)
    assert connection.served_version() == report.index.version != served


def test_another_model_is_refused_with_one_sentence(tmp_path, milvus_uri):
    docs = seed_copy(tmp_path)
    settings = milvus_settings(milvus_uri, docs, tmp_path / "local")
    build(docs, settings.index_dir, FakeEmbedder(), settings=settings)

    class OtherModel(FakeEmbedder):
        model_id = "another-model"

    from rag.answer.calibration import Calibration

    calibrated = Calibration(0.0, "another-model", "this test")  # the store's refusal is what is tested
    with pytest.raises(IndexStoreError) as caught:
        Engine(settings, embedder=OtherModel(), calibration=calibrated).open()
    message = str(caught.value)
    assert "another-model" in message and "fake-hash-64" in message and settings.milvus_collection in message
    assert "\n" not in message


def test_an_unreachable_milvus_is_one_sentence_and_exit_2(tmp_path):
    port = free_port()  # nothing listens there
    env = {**os.environ, "RAG_STORE": "milvus", "RAG_MILVUS_URI": f"http://127.0.0.1:{port}",
           "RAG_DOCS_DIR": str(SEEDS), "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_EMBED_MODEL": "missing-model"}
    result = subprocess.run([sys.executable, "-m", "rag.cli", "build"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"http://127.0.0.1:{port}" in lines[0] and "start the Milvus server" in lines[0]
    assert "Traceback" not in result.stderr


def test_an_unreachable_milvus_shows_in_the_ui_status(tmp_path):
    from ui.app import AppState

    settings = Settings.resolve(docs_dir=SEEDS, index_dir=tmp_path / "index", store="milvus",
                                milvus_uri=f"http://127.0.0.1:{free_port()}")
    state = AppState(settings, engine=Engine(settings, embedder=FakeEmbedder()))
    state.app_built.set()  # no Gradio page here
    state.start()
    state.ready.wait(60)
    assert state.error and "start the Milvus server" in state.status and "127.0.0.1" in state.status


def test_a_missing_folder_for_an_embedded_database_names_it(tmp_path):
    settings = Settings.resolve(docs_dir=SEEDS, index_dir=tmp_path / "index", store="milvus",
                                milvus_uri=str(tmp_path / "absent" / "x.db"))
    with pytest.raises(IndexStoreError, match="does not exist"):
        Engine(settings, embedder=FakeEmbedder()).open()


def test_a_bad_collection_prefix_is_refused(tmp_path):
    settings = Settings.resolve(docs_dir=SEEDS, index_dir=tmp_path / "index", store="milvus",
                                milvus_uri=str(tmp_path / "m.db"), milvus_collection="bad-name!")
    with pytest.raises(IndexStoreError, match="RAG_MILVUS_COLLECTION"):
        Engine(settings, embedder=FakeEmbedder()).open()


# ---------------------------------------------------------------- the real model

@pytest.mark.slow
def test_with_the_real_model_milvus_cites_what_faiss_cites(tmp_path, embedder, milvus_server):
    from rag.evaluate import load_questions

    faiss, milvus = engines(tmp_path, milvus_server, embedder)
    items = load_questions(sorted((ROOT / "eval").glob("*.jsonl")))
    same = 0
    for item in items:
        a = faiss.ask(item["question"], item.get("history"))
        b = milvus.ask(item["question"], item.get("history"))
        first_a = a.sentences[0].text if a.sentences else None
        first_b = b.sentences[0].text if b.sentences else None
        same += (first_a == first_b and a.abstained == b.abstained)
    assert same >= 0.95 * len(items), f"{same}/{len(items)}"


def upload_through_the_page(url: str, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_ui import _add_in_page, _browser

    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page()
        page.goto(url)
        _add_in_page(page, path)
        browser.close()


@pytest.mark.slow
@pytest.mark.browser
def test_two_chat_processes_share_one_milvus_and_see_each_others_rebuild(tmp_path, milvus_server):
    from gradio_client import Client

    docs = seed_copy(tmp_path)
    prefix = f"t_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "RAG_STORE": "milvus", "RAG_MILVUS_URI": milvus_server, "RAG_MILVUS_COLLECTION": prefix,
           "RAG_DOCS_DIR": str(docs), "RAG_INDEX_DIR": str(tmp_path / "local"), "RAG_EMBED_THREADS": "1"}
    build_env = dict(env)
    subprocess.run([sys.executable, "-m", "rag.cli", "build"], cwd=ROOT, env=build_env, check=True,
                   capture_output=True, timeout=300)
    ports = [free_port(), free_port()]
    processes = [subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for port in ports]
    try:
        clients = []
        for port, process in zip(ports, processes):
            deadline = __import__("time").monotonic() + 240
            while True:
                try:
                    clients.append(Client(f"http://127.0.0.1:{port}/", verbose=False))
                    break
                except Exception:
                    if process.poll() is not None or __import__("time").monotonic() > deadline:
                        raise AssertionError(process.stderr.read()[-3000:] if process.poll() is not None else "no start")
                    __import__("time").sleep(0.5)
        question = "Quel fromage fond sous la lampe dans la raclette ?"
        before = clients[1].predict(question=question, history=[], api_name="/ask")
        assert not any("raclette" in s["text"] for s in before["sentences"])
        note = tmp_path / "raclette.txt"
        note.write_text("Dans la raclette, le fromage fond sous la lampe avant d'être raclé sur les pommes de terre.",
                        encoding="utf-8")
        upload_through_the_page(f"http://127.0.0.1:{ports[0]}/", note)
        after = clients[1].predict(question=question, history=[], api_name="/ask")
        for _ in range(20):
            if any("raclette" in s["text"] for s in after["sentences"]):
                break
            __import__("time").sleep(0.5)
            after = clients[1].predict(question=question, history=[], api_name="/ask")
        assert any("raclette" in s["text"] for s in after["sentences"]), after
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise AssertionError("rag serve did not stop within 20 s of SIGTERM")


def test_failures_are_worded_with_what_to_do():
    from rag.index.milvus import describe_failure

    refused = describe_failure("https://cluster:19530", RuntimeError("UNAUTHENTICATED: invalid token"), "connecting")
    assert "RAG_MILVUS_TOKEN" in refused and "https://cluster:19530" in refused
    down = describe_failure("http://10.0.0.1:19530", RuntimeError("Fail connecting to server on 10.0.0.1:19530"),
                            "searching passages")
    assert "start the Milvus server or correct RAG_MILVUS_URI" in down and "searching passages" in down
    other = describe_failure("x.db", RuntimeError("collection not loaded"), "reading sentences")
    assert "rag build --store milvus" in other


def test_versions_started_within_one_second_sort_in_the_order_they_were_made():
    from rag.index.milvus import new_version, version_time

    made = [new_version() for _ in range(50)]
    assert made == sorted(made)
    assert all(abs(version_time(v) - __import__("time").time()) < 60 for v in made)


def test_each_term_is_read_from_milvus_once_per_version(tmp_path, monkeypatch):
    """A name is looked up for its documents and for whether it is known: one request, then the cache."""
    from rag.index import milvus

    _, engine = engines(tmp_path, str(tmp_path / "milvus.db"))
    read: list[list[str]] = []
    original = milvus.Connection.call

    def spy(self, doing, method, *args, **kwargs):
        if doing == "reading terms":
            read.append(list(kwargs["ids"]))
        return original(self, doing, method, *args, **kwargs)

    monkeypatch.setattr(milvus.Connection, "call", spy)
    question = "Qu'est-ce que Kantar prévoit pour le social commerce ?"
    first = engine.ask(question)
    asked = [term for ids in read for term in ids]
    assert asked and len(asked) == len(set(asked))
    read.clear()
    assert engine.ask(question).sentences == first.sentences and read == []
