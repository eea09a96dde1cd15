"""The analyst's workspace (issue 28): documents removed and replaced, the served version swapped whole."""

from __future__ import annotations

import threading
import time

import pytest

from rag.config import Settings
from rag.engine import Engine
from rag.errors import RagError
from tests.fakes import FakeEmbedder
from tests.pdfs import make_pdf_pages

GOOD = {
    "a.txt": "Titre A\nLes marques investiront le social commerce en 2021. Les créateurs suivront.\n",
    "b.txt": "Titre B\nTikTok gagnera encore des utilisateurs. Snapchat reculera nettement.\n",
    "sous/c.txt": "Titre C\nLes podcasts deviendront un canal publicitaire majeur pour les marques.\n",
}


@pytest.fixture()
def engine(tmp_path):
    docs = tmp_path / "docs"
    for name, text in GOOD.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=FakeEmbedder())
    engine.open()
    return engine


def _sources(engine):
    return sorted(d.source for d in engine.index.documents.values())


def test_a_removed_document_leaves_the_index_and_the_folder(engine):
    old = engine.index
    report = engine.remove("sous/c.txt")
    assert _sources(engine) == ["a.txt", "b.txt"] and report.documents == 2
    assert not (engine.settings.docs_dir / "sous" / "c.txt").exists()
    assert len(old.documents) == 3  # an answer in flight keeps the version it started on
    answer = engine.ask("Les podcasts deviendront-ils un canal publicitaire ?")
    assert all(c.document != "sous/c.txt" for c in answer.citations)
    # The folder and the index agree: opening again builds nothing.
    again = Engine(engine.settings, embedder=FakeEmbedder())
    again.open()
    assert again.index.folder == engine.index.folder and again.embedder.calls == 0


@pytest.mark.parametrize("name", ["../secret.txt", "/etc/passwd", "absent.txt", "sous"])
def test_removing_a_name_outside_or_absent_is_one_sentence_and_changes_nothing(engine, name):
    before = engine.index.folder
    with pytest.raises(RagError):
        engine.remove(name)
    assert engine.index.folder == before and _sources(engine) == ["a.txt", "b.txt", "sous/c.txt"]


def test_a_failed_rebuild_keeps_the_document_and_its_file(engine, monkeypatch):
    import rag.index.store as store

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_fsync_tree", full)
    with pytest.raises(RagError, match="No space left"):
        engine.remove("a.txt")
    assert (engine.settings.docs_dir / "a.txt").exists() and "a.txt" in _sources(engine)


def test_removing_the_last_document_leaves_an_empty_index_that_says_so(engine):
    for source in ["a.txt", "b.txt", "sous/c.txt"]:
        engine.remove(source)
    assert _sources(engine) == []
    answer = engine.ask("Les marques investiront-elles le social commerce ?")
    assert answer.abstained and not answer.citations


def test_a_replaced_document_is_cited_with_its_new_text(engine, tmp_path):
    new = tmp_path / "new.txt"
    new.write_text("Titre B\nInstagram lancera une boutique intégrée pour les créateurs.\n", encoding="utf-8")
    engine.replace("b.txt", new)
    texts = " ".join(s.text for s in engine.index.sentences)
    assert "Instagram lancera" in texts and "TikTok" not in texts
    assert _sources(engine) == ["a.txt", "b.txt", "sous/c.txt"]


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02" * 400, b"<html><body></body></html>"])
def test_a_broken_replacement_is_refused_and_the_old_document_kept(engine, tmp_path, content):
    new = tmp_path / "broken.txt"
    new.write_bytes(content)
    before = engine.index.folder
    with pytest.raises(RagError, match="old one is kept"):
        engine.replace("b.txt", new)
    assert engine.index.folder == before
    assert "TikTok" in (engine.settings.docs_dir / "b.txt").read_text(encoding="utf-8")
    assert not list(engine.settings.docs_dir.glob(".replacing-*"))


def test_remove_while_questions_run(engine):
    """Every answer comes whole from one version: before the swap it may cite the document, after it never."""
    errors, answers = [], []
    done = threading.Event()

    def ask():
        while not done.is_set():
            try:
                answer = engine.ask("Les podcasts deviendront-ils un canal publicitaire majeur ?")
                answers.append(answer)
                for citation in answer.citations:
                    text = engine.index.document_text(citation.doc_id) if citation.doc_id in engine.index.documents \
                        else None
                    assert text is None or text[citation.start : citation.end]
            except Exception as exc:  # collected: the test says how many
                errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    engine.remove("sous/c.txt")
    after = engine.ask("Les podcasts deviendront-ils un canal publicitaire majeur ?")
    done.set()
    for thread in threads:
        thread.join()
    assert not errors and answers
    assert all(c.document != "sous/c.txt" for c in after.citations)


@pytest.mark.browser
def test_browser_remove_and_replace_from_the_documents_tab(embedder, tmp_path):
    """The Documents tab removes a document (never cited again) and replaces one (its new text cited)."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import KANTAR, seeds_server
    from tests.test_ui import _answer_text, _ask, _opened

    new = tmp_path / "upload" / "podcasts.txt"
    new.parent.mkdir()
    new.write_text("Les podcasts en 2024\nLes podcasts vidéo remplaceront la radio du matin chez les moins de "
                   "trente ans.\n", encoding="utf-8")
    podcasts = {"podcasts.txt": "Les podcasts en 2024\nLes podcasts deviendront un canal publicitaire majeur pour "
                                "les marques de luxe.\n"}
    with seeds_server(embedder, tmp_path, documents=podcasts) as handle, sync_playwright() as playwright:
        browser, page = _opened(playwright, handle.url)
        page.get_by_role("tab", name="Documents").click()
        _choose_document(page, "podcasts.txt")
        page.locator("#rag-replacement input[type=file]").set_input_files(str(new))
        page.wait_for_timeout(500)
        page.click("#rag-replace")
        _listing_says(page, "remplacé")
        page.get_by_role("tab", name="Discussion").click()
        _ask(page, "Que remplaceront les podcasts vidéo ?")
        assert "radio du matin" in _answer_text(page)
        page.get_by_role("tab", name="Documents").click()
        _choose_document(page, KANTAR)
        page.click("#rag-remove")
        _listing_says(page, "retiré")
        listing = page.locator("#rag-documents table").inner_text()
        page.get_by_role("tab", name="Discussion").click()
        _ask(page, "Qu'est-ce que Kantar prévoit pour le social commerce ?")
        browser.close()
        assert KANTAR not in listing and not (tmp_path / "docs" / KANTAR).exists()
        cited = {c.document for c in handle.rag_state.engine.ask("Qu'est-ce que Kantar prévoit ?").citations}
        assert KANTAR not in cited


def _choose_document(page, name: str) -> None:
    page.locator("#rag-chosen input").fill(name)
    page.get_by_role("option", name=name).click()


def _listing_says(page, words: str) -> None:
    page.wait_for_function(f"() => document.querySelector('#rag-documents').innerText.includes({words!r})",
                           timeout=120_000)


# ---------------------------------------------------------------- pages

REPORT = [["Rapport annuel sur les medias sociaux"],
          ["Les marques investiront le social commerce en 2021.", "Les createurs suivront le mouvement."],
          ["Les podcasts deviendront un canal publicitaire majeur.", "La radio du matin perdra des auditeurs."]]


def test_a_pdf_citation_says_its_page_everywhere(tmp_path):
    from ui.render import answer_for_copying, answer_markdown, document_html, sources_html

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rapport.pdf").write_bytes(make_pdf_pages(REPORT))
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=FakeEmbedder())
    answer = engine.ask("Les podcasts deviendront-ils un canal publicitaire majeur ?", threshold=-1)
    citation = next(c for c in answer.citations if "podcasts" in c.passage)
    assert citation.page == 3 and answer.to_json()["citations"][citation.n - 1]["page"] == 3
    text = engine.index.document_text(citation.doc_id)
    starts = engine.index.documents[citation.doc_id].page_starts
    assert len(starts) == 3 and text[starts[2]:].startswith("Les podcasts")
    assert "p. 3" in answer_for_copying(answer, "http://x/") and "p. 3" in answer_markdown(answer, "http://x/")
    assert "p. 3" in sources_html(answer, engine.index)
    view = document_html(engine.index, citation.doc_id, citation.start, citation.end)
    assert view.count('class="rag-page"') == 2 and "p. 3" in view


def test_a_document_without_pages_says_none():
    from rag.records import Document

    plain = Document(doc_id="d", source="a.txt", title="A", text="Une phrase.", kind="text", language="fr", year=None,
                     sha256="0" * 64, blocks=())
    assert plain.page_at(3) is None
    paged = Document(doc_id="d", source="a.pdf", title="A", text="Un. Deux. Trois.", kind="pdf", language="fr",
                     year=None, sha256="0" * 64, blocks=(), metadata=(("page_starts", "0,4,10"),))
    assert [paged.page_at(i) for i in (0, 3, 4, 9, 10, 15)] == [1, 1, 2, 2, 3, 3]


# ---------------------------------------------------------------- clean copies

@pytest.mark.parametrize("text, clean", [
    ("D'après les documents :", "D'après les documents :"),
    ("Kantar Media (2019) prévoit 3,8 % de plus. Voir p. 12 !", "Kantar Media (2019) prévoit 3,8 % de plus. Voir p. 12 !"),
    ("000_b1c74287bd27e96d.txt", "000_b1c74287bd27e96d.txt"),
    ("_souligné_ et a_ _b", "\\_souligné\\_ et a\\_ \\_b"),
    ("# Titre", "\\# Titre"),
    ("- item", "\\- item"),
    ("1. premier", "1\\. premier"),
    ("voir https://x.org et www.y.fr", "voir https\\://x.org et www\\.y.fr"),
    ("[1] *gras* `code`", "[1] \\*gras\\* \\`code\\`"),
    ("[clique](javascript:x) ![i](y) [a][b] [c]: d", "[clique\\](javascript:x) ![i\\](y) [a\\][b] [c\\]: d"),
])
def test_markdown_escapes_only_what_markdown_reads(text, clean):
    """Copies and exports read `*D'après les documents \\:*`, `\\(2019\\)`: escapes Markdown never needed."""
    import html

    import markdown_it

    from ui.render import escape_markdown

    escaped = escape_markdown(text)
    assert escaped == clean
    rendered = markdown_it.MarkdownIt("commonmark").render(escaped)
    assert html.unescape(rendered.replace("<p>", "").replace("</p>", "").strip()) == text


# ---------------------------------------------------------------- the small things, in the browser

@pytest.mark.browser
def test_browser_blank_and_overlong_questions_add_nothing_and_say_why(app):
    from playwright.sync_api import sync_playwright

    from tests.test_ui import _opened

    url, _ = app
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, url)
        page.wait_for_selector("#rag-question textarea")
        before = page.locator("#rag-chat .message").count()
        page.fill("#rag-question textarea", "   ")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('#rag-question textarea').placeholder.includes("
                               "\"d'abord une question\")", timeout=10_000)
        long = "Kantar " * 800  # 5,600 characters
        page.fill("#rag-question textarea", long)
        page.keyboard.press("Enter")
        page.wait_for_selector("text=la limite est 2000", timeout=10_000)
        page.wait_for_timeout(500)
        assert page.locator("#rag-chat .message").count() == before
        assert page.input_value("#rag-question textarea") == long  # kept, to be shortened
        browser.close()


@pytest.mark.browser
def test_browser_a_refusal_heads_its_passages_as_closest_and_a_flag_writes_one_line(app):
    from playwright.sync_api import sync_playwright

    from rag.evaluate.feedback import read
    from tests.test_ui import _answer_text, _ask, _opened

    url, handle = app
    path = handle.rag_state.settings.feedback_path
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, url)
        _ask(page, "Quelle est la recette de la tarte tatin ?")
        bubble = _answer_text(page)
        panel = page.locator("#rag-sources").inner_text()
        assert "Sources :" not in bubble and "Passages les plus proches" in panel
        assert "tarte tatin" in panel  # the panel names the question it shows
        before = len(read(path))
        page.locator("#rag-chat button[aria-label='Dislike']").last.click()
        for _ in range(50):
            if len(read(path)) > before:
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(1000)
        browser.close()
    assert len(read(path)) == before + 1


# ---------------------------------------------------------------- collections

def test_two_collections_answer_from_their_own_documents_only(tmp_path):
    from rag.index.collections import collection_names, create_collection

    base = Settings.resolve(docs_dir=tmp_path / "seeds", index_dir=tmp_path / "index",
                            collections_dir=tmp_path / "collections")
    trends = create_collection(base, "tendances")
    (trends / "a.txt").write_text("Tendances\nLes podcasts deviendront un canal publicitaire majeur.\n", encoding="utf-8")
    law = create_collection(base, "reglement")
    (law / "b.txt").write_text("Règlement\nLes podcasts publicitaires doivent signaler la publicité.\n", encoding="utf-8")
    assert collection_names(base) == ["reglement", "tendances"]
    with pytest.raises(RagError, match="exists already"):
        create_collection(base, "tendances")
    with pytest.raises(RagError, match="cannot name a collection"):
        create_collection(base, "../évasion")
    for name, mine in (("tendances", "a.txt"), ("reglement", "b.txt")):
        settings = base.in_collection(name)
        assert settings.index_dir == tmp_path / "collections" / name / "index"
        assert settings.milvus_collection == f"rag_{name}" and settings.feedback_path.parent == settings.index_dir
        engine = Engine(settings, embedder=FakeEmbedder())
        answer = engine.ask("Que deviendront les podcasts publicitaires ?", threshold=-1)
        assert {c.document for c in answer.citations} == {mine}


def test_the_cli_builds_and_asks_a_named_collection_with_its_own_folder(tmp_path, monkeypatch, capsys):
    import rag.embedding.embedder as module
    from rag.cli import main

    monkeypatch.setattr(module, "Embedder", lambda **kw: FakeEmbedder())
    monkeypatch.setenv("RAG_COLLECTIONS_DIR", str(tmp_path / "collections"))
    dossier = tmp_path / "dossier"
    dossier.mkdir()
    (dossier / "note.txt").write_text("Note\nLes newsletters reviennent en force chez les médias.\n", encoding="utf-8")
    assert main(["build", "--collection", "veille", "--docs", str(dossier)]) == 0
    capsys.readouterr()
    # Later, the collection's name is enough: its index remembers its folder.
    assert main(["ask", "--collection", "veille", "--json", "Les newsletters reviennent-elles ?"]) in (0, 1)
    assert '"document": "note.txt"' in capsys.readouterr().out
    assert main(["ask", "--collection", "veille", "--index", str(tmp_path), "x"]) == 2


@pytest.mark.browser
def test_browser_two_collections_side_by_side(embedder, tmp_path):
    """Create a collection from the page, upload into it, ask in each: the other's documents are never cited."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import seeds_server
    from tests.test_ui import _add_in_page, _answer_text, _ask, _opened

    note = tmp_path / "upload" / "reglement.txt"
    note.parent.mkdir()
    note.write_text("Règlement intérieur de la médiathèque\nLes lecteurs peuvent emprunter douze documents pendant "
                    "trois semaines, renouvelables une fois.\n", encoding="utf-8")
    with seeds_server(embedder, tmp_path, collections_dir=tmp_path / "collections") as handle, \
            sync_playwright() as playwright:
        browser, page = _opened(playwright, handle.url)
        page.fill("#rag-new-collection textarea", "mediatheque")
        page.click("#rag-create")
        page.wait_for_selector("text=Collection « mediatheque » créée", timeout=60_000)
        _add_in_page(page, note, timeout=120_000)
        page.get_by_role("tab", name="Discussion").click()
        _ask(page, "Combien de documents peut-on emprunter ?")
        assert "douze documents" in _answer_text(page)
        assert not page.get_by_text("Quelles sont les prédictions de Kantar pour 2019 ?").is_visible()
        _ask(page, "Qu'est-ce que Kantar prévoit pour le social commerce ?")
        in_mediatheque = _answer_text(page)
        page.screenshot(path=str(tmp_path / "collection.png"), full_page=True)
        page.locator("#rag-collection input").click()
        page.get_by_role("option", name="Par défaut (default)").click()
        page.wait_for_function("() => document.querySelectorAll('#rag-chat .message').length === 0", timeout=30_000)
        _ask(page, "Combien de documents peut-on emprunter ?")
        in_default = page.locator("#rag-sources").inner_text()
        browser.close()
    assert "Kantar" not in in_mediatheque
    assert "médiathèque" not in in_default.lower() and "douze" not in in_default
    assert (tmp_path / "collections" / "mediatheque" / "documents" / "uploads" / "reglement.txt").exists()
    assert not (tmp_path / "docs" / "uploads").exists()


# ---------------------------------------------------------------- a first start says what it does

def test_the_one_time_export_is_announced_once(tmp_path, monkeypatch):
    """A first start read "Chargement du modèle…" from 13 s to 28 s with nothing moving (the export)."""
    import rag.embedding.onnx as onnx

    def export(folder, target):
        target.mkdir(parents=True)
        (target / "model.onnx").write_bytes(b"onnx")
        (target / onnx.WEIGHTS_FILE).write_bytes(b"weights")

    monkeypatch.setattr(onnx, "_export", export)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"weights")
    steps: list[str] = []
    onnx.ensure_onnx(tmp_path / "model", tmp_path / "cache", "m", announce=steps.append)
    onnx.ensure_onnx(tmp_path / "model", tmp_path / "cache", "m", announce=steps.append)
    assert steps == ["exporting"]


def test_the_status_line_names_the_step_and_counts_its_seconds(monkeypatch):
    import time

    from ui.app import MODEL_STEPS, AppState

    state = AppState(Settings.resolve(), engine=Engine(Settings.resolve(), embedder=FakeEmbedder()))
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    state.model_step("exporting")
    clock[0] += 12
    assert state.shown_status() == f"{MODEL_STEPS['exporting']} (12 s)"
    state.ready.set()
    assert state.shown_status() == MODEL_STEPS["exporting"]


def test_remove_during_eight_concurrent_questions_through_the_server(embedder, tmp_path):
    """8 users ask through the web API while a document is removed from the page's engine: no error,
    every citation's offsets slice its document exactly, and none cites the document after the swap."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    from tests.conftest import KANTAR, seeds_server

    with seeds_server(embedder, tmp_path) as handle:
        engine = handle.rag_state.engine
        texts = {d.doc_id: engine.index.document_text(d.doc_id) for d in engine.index.documents.values()}
        question = "Qu'est-ce que Kantar prévoit pour le social commerce ?"
        removed_at: list[float] = []

        def user(number: int) -> list[tuple[float, dict]]:
            client = Client(handle.url, verbose=False)
            return [(time.monotonic(), client.predict(question, [], api_name="/ask")) for _ in range(4)]

        def remove() -> None:
            time.sleep(1.0)
            engine.remove(KANTAR)
            removed_at.append(time.monotonic())

        with ThreadPoolExecutor(9) as pool:
            users = [pool.submit(user, n) for n in range(8)]
            pool.submit(remove).result()
            results = [item for future in users for item in future.result()]
        assert len(results) == 32 and not any("error" in answer for _, answer in results)
        for _, answer in results:
            for citation in answer["citations"]:
                document = next(doc_id for doc_id in texts if texts[doc_id][citation["start"]:citation["end"]]
                                == citation["passage"])
                assert document
        after = Client(handle.url, verbose=False).predict(question, [], api_name="/ask")
        assert all(c["document"] != KANTAR for c in after["citations"])
        assert all(c["document"] != KANTAR for asked, answer in results if asked > removed_at[0] + 1.0
                   for c in answer["citations"])


def test_a_french_answer_copies_and_exports_without_escapes(seed_engine):
    """The export read `Qu'est\\-ce que`, `000\\_b1c74287bd27e96d\\.txt`, `*D'après les documents \\:*`."""
    import html

    import markdown_it

    from ui.render import answer_for_copying, answer_markdown, conversation_markdown

    question = "Qu'est-ce que Kantar prévoit pour le social commerce ?"
    answer = seed_engine.ask(question)
    assert answer.citations and not answer.abstained
    exported = conversation_markdown([(question, answer)], "http://127.0.0.1:7860/")
    assert "\\" not in exported and "\\" not in answer_for_copying(answer, "http://127.0.0.1:7860/")
    # As Markdown it reads as the copy does: the same quotes, the same citations.
    rendered = html.unescape(markdown_it.MarkdownIt("commonmark").render(answer_markdown(answer, "http://x/")))
    for quote in answer.sentences:
        assert " ".join(quote.text.split()) in " ".join(rendered.split())


@pytest.mark.browser
def test_browser_a_pdf_citation_says_its_page(embedder, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import seeds_server
    from tests.test_ui import _add_in_page, _answer_text, _ask, _opened

    pdf = tmp_path / "upload" / "rapport.pdf"
    pdf.parent.mkdir()
    pdf.write_bytes(make_pdf_pages(REPORT))
    with seeds_server(embedder, tmp_path) as handle, sync_playwright() as playwright:
        browser, page = _opened(playwright, handle.url)
        _add_in_page(page, pdf, timeout=120_000)
        page.get_by_role("tab", name="Discussion").click()
        _ask(page, "Quel canal publicitaire les podcasts deviendront-ils ?")
        bubble = _answer_text(page)
        panel = page.locator("#rag-sources").inner_text()
        browser.close()
    assert "rapport.pdf" in bubble and "p. 3" in bubble and "p. 3" in panel


@pytest.mark.browser
def test_browser_the_answer_the_panel_shows_is_marked(app):
    from playwright.sync_api import sync_playwright

    from tests.test_ui import _ask, _opened

    url, _ = app
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, url)
        _ask(page, "Qu'est-ce que Kantar prévoit pour le social commerce ?")
        _ask(page, "Who calls digital an object of domination?")
        bots = page.locator("#rag-chat .message.bot")
        page.wait_for_function("() => document.querySelectorAll('#rag-chat .message.bot.rag-selected').length === 1")
        assert "rag-selected" in (bots.last.get_attribute("class") or "")
        bots.first.click(position={"x": 30, "y": 10})
        page.wait_for_function("() => document.querySelector('#rag-sources').innerText.includes('social commerce')",
                               timeout=10_000)
        assert "rag-selected" in (bots.first.get_attribute("class") or "")
        assert page.locator("#rag-chat .message.bot.rag-selected").count() == 1
        browser.close()


def test_a_refusal_names_its_closest_passages_once():
    from rag.records import Answer, Citation
    from ui.render import answer_markdown

    citation = Citation(1, "d", "a.txt", "Titre A", 2019, 0, 20, "Une phrase proche.", 0.5, 0)
    refusal = Answer("q", "fr", True, "", (), (citation,), lead="Je n'ai pas trouvé de réponse dans les documents.",
                     closest_label="Passages les plus proches (ils ne répondent pas à la question) :")
    bubble = answer_markdown(refusal, "http://x/")
    assert bubble.count("Passages les plus proches") == 1 and bubble.count("[1]") == 1
    assert "Sources" not in bubble


def test_exported_conversations_share_one_folder_and_old_ones_are_removed(seed_engine, tmp_path):
    """Each answer wrote the export into a folder of its own that nothing removed: 360 of them
    were left in /tmp by a day of tests."""
    import os
    from pathlib import Path

    from ui.handlers import EXPORT_MAX_AGE, conversation_file

    question = "Qu'est-ce que Kantar prévoit pour le social commerce ?"
    answer = seed_engine.ask(question)
    first = Path(conversation_file([(question, answer)], "http://x/", tmp_path))
    again = Path(conversation_file([(question, answer)], "http://x/", tmp_path))
    longer = Path(conversation_file([(question, answer), (question, answer)], "http://x/", tmp_path))
    assert first == again and first.name == longer.name == "discussion.md" and first != longer
    assert first.parent.parent == longer.parent.parent == tmp_path
    assert "social commerce" in first.read_text(encoding="utf-8")
    long_ago = time.time() - EXPORT_MAX_AGE - 60
    os.utime(first.parent, (long_ago, long_ago))
    assert conversation_file([(question, answer)] * 3, "http://x/", tmp_path)
    assert not first.exists() and longer.exists()
    assert conversation_file([], "http://x/", tmp_path) is None
