"""The chat in the browser: the API through gradio_client, and a real headless Chromium."""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import KANTAR, ROOT, SEEDS, free_port

SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def test_api_french_question(client):
    data = client.predict(question="Qu'est-ce que Kantar prévoit pour le social commerce ?", history=[],
                          api_name="/ask")
    assert data["language"] == "fr" and data["abstained"] is False
    assert "un développement du social commerce" in data["answer"]
    assert data["citations"][0]["document"] == KANTAR
    text = (SEEDS / KANTAR).read_text(encoding="utf-8")
    for sentence in data["sentences"]:
        assert text[sentence["start"] : sentence["end"]] == sentence["text"]
    for citation in data["citations"]:
        assert text[citation["start"] : citation["end"]] == citation["passage"]


def test_api_english_question_and_contract(client, seed_engine):
    data = client.predict(question="Who calls digital an object of domination?", history=[], api_name="/ask")
    assert data["language"] == "en" and "Casilli" in data["answer"]
    expected = seed_engine.ask("Who calls digital an object of domination?").to_json()
    assert set(data) == set(expected)
    assert data["sentences"] == expected["sentences"] and data["citations"] == expected["citations"]


def test_api_follow_up_and_abstention(client):
    data = client.predict(question="Et pour 2020 ?", history=["Qu'est-ce que Kantar prévoit pour le social commerce ?"],
                          api_name="/ask")
    assert "Social Commerce" in data["answer"]
    none = client.predict(question="What is the speed of light?", history=[], api_name="/ask")
    assert none["abstained"] is True and none["answer"].startswith("The documents don't answer this.")


def test_api_refuses_empty_question_in_french(client):
    data = client.predict(question="   ", history=[], api_name="/ask")
    assert data["error"] == "Posez une question."


def _browser(playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def _opened(playwright, url: str, width: int = 1400, height: int = 1000):
    """Chromium, and a page of this size on `url`: (browser, page)."""
    browser = _browser(playwright)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    return browser, page


def _ask(page, question: str) -> None:
    """Ask, and wait until the answer has replaced the "being prepared" line."""
    before = page.locator("#rag-chat .message.bot").count()
    page.fill("#rag-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        """n => { const m = [...document.querySelectorAll('#rag-chat .message.bot')];
                  const last = m.length ? m[m.length - 1].innerText : '';
                  return m.length >= n + 1 && last.trim() !== ''
                         && !/préparation|Preparing the answer|Loading content/.test(last); }""",
        arg=before, timeout=60_000)


def _add_in_page(page, path, timeout: int = 180_000) -> None:
    """Upload `path` in the Documents tab and wait until the listing says it is indexed."""
    page.get_by_role("tab", name="Documents").click()
    page.locator("#rag-upload input[type=file]").set_input_files(str(path))
    page.wait_for_timeout(500)
    page.click("#rag-add")
    page.wait_for_function("() => document.querySelector('#rag-documents').innerText.includes('indexé')",
                           timeout=timeout)


def _answer_text(page) -> str:
    return page.locator("#rag-chat .message.bot").last.inner_text()


@pytest.mark.browser
def test_browser_french_question_shows_cited_highlighted_source(app):
    from playwright.sync_api import sync_playwright

    url, _ = app
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url.rstrip("/")) and not r.url.startswith("data:") else None)
        page.goto(url)
        _ask(page, "Qu'est-ce que Kantar prévoit pour le social commerce ?")
        bubble = _answer_text(page)
        assert "un développement du social commerce" in bubble and "[1]" in bubble
        source = page.locator("#rag-cite-1")
        source.locator("summary").click()  # close, then open again as a reader would
        source.locator("summary").click()
        assert source.evaluate("el => el.open")
        mark = source.locator("mark.rag-quote").first
        assert mark.is_visible()
        assert "un développement du social commerce" in mark.inner_text()
        assert "Médias sociaux : une diversification tout en paradoxes" in source.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "fr-answer.png"), full_page=True)
        _ask(page, "What is the speed of light?")
        page.wait_for_selector(".rag-closest")
        assert "The documents don't answer this." in _answer_text(page)
        page.screenshot(path=str(SCREENSHOTS / "en-abstention.png"), full_page=True)
        browser.close()
    assert outside == []


class BeaconHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        BeaconHandler.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_browser_hostile_document_stays_inert(app, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _ = app
    beacon_port = free_port()
    beacon = http.server.HTTPServer(("127.0.0.1", beacon_port), BeaconHandler)
    threading.Thread(target=beacon.serve_forever, daemon=True).start()
    hostile = tmp_path / "note-hostile.md"
    hostile.write_text(
        "# Note de veille piégée\n\n"
        "Les balises piégées <script>window.__pwned = 1</script> sont neutralisées par le chatbot de veille.\n\n"
        "Les images piégées <img src=x onerror=\"window.__pwned = 2\"> ne déclenchent rien dans le chatbot de veille.\n\n"
        f"La balise espion ![espion](http://127.0.0.1:{beacon_port}/beacon.png) ne contacte jamais son serveur.\n\n"
        f"Le style <span style=\"position:fixed;top:0;left:0;width:100%;height:100%;background:red\">rouge</span> "
        "ne recouvre jamais la page du chatbot de veille.\n",
        encoding="utf-8")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dialogs = []
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url.rstrip("/")) and not r.url.startswith("data:") else None)
        page.goto(url)
        _add_in_page(page, hostile, timeout=120_000)
        page.get_by_role("tab", name="Discussion").click()
        for question in ("Que disent les balises piégées et les images piégées du chatbot de veille ?",
                         "Que fait la balise espion ?", "Le style recouvre-t-il la page du chatbot de veille ?"):
            _ask(page, question)
            page.wait_for_timeout(300)
        bubbles = page.locator("#rag-chat").inner_text()
        assert "<script>" in bubbles or "<img" in bubbles  # shown as text, not run
        assert page.evaluate("() => window.__pwned") is None
        overlay = page.evaluate("() => [...document.querySelectorAll('span')].some(s => getComputedStyle(s).position === 'fixed')")
        assert not overlay
        page.screenshot(path=str(SCREENSHOTS / "hostile-document.png"), full_page=True)
        browser.close()
    beacon.shutdown()
    assert dialogs == [] and BeaconHandler.hits == [] and outside == []


@pytest.mark.browser
def test_browser_payload_questions_stay_inert(app):
    """Case 7: questions that carry markup are shown as text, run nothing, load nothing."""
    from playwright.sync_api import sync_playwright

    url, _ = app
    beacon_port = free_port()
    beacon = http.server.HTTPServer(("127.0.0.1", beacon_port), BeaconHandler)
    threading.Thread(target=beacon.serve_forever, daemon=True).start()
    BeaconHandler.hits.clear()
    payloads = [
        "<img src=x onerror=\"window.__pwned = 1\"> Kantar ?",
        "<svg onload=\"window.__pwned = 2\"></svg> social commerce ?",
        "<script>window.__pwned = 3</script> TikTok ?",
        "[clique ici](javascript:window.__pwned=4) Digimind ?",
        f"![x](http://127.0.0.1:{beacon_port}/beacon.png) influence ?",
    ]
    dialogs = []
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        for payload in payloads:
            _ask(page, payload)
        chat = page.locator("#rag-chat").inner_text()
        assert "<img src=x" in chat and "<script>" in chat  # visible as typed
        assert page.locator("#rag-chat a[href^='javascript']").count() == 0
        assert page.evaluate("() => window.__pwned") is None
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "payload-questions.png"), full_page=True)
        browser.close()
    beacon.shutdown()
    assert dialogs == [] and BeaconHandler.hits == []


@pytest.mark.browser
def test_browser_narrow_screen_puts_sources_under_the_chat_without_horizontal_scroll(app):
    """Issue 13: below 800 px the sources go under the chat, and nothing overflows at 390 px."""
    from playwright.sync_api import sync_playwright

    url, _ = app
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, url, width=390, height=844)
        _ask(page, "Que prévoient Kantar et Digimind sur le social commerce ?")
        page.screenshot(path=str(SCREENSHOTS / "narrow-390.png"), full_page=True)
        chat = page.locator("#rag-chat").bounding_box()
        sources = page.locator("#rag-sources").bounding_box()
        assert sources["y"] >= chat["y"] + chat["height"] - 1  # under the chat, not beside it
        widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"horizontal scroll: content {widths[0]} px in {widths[1]} px"
        browser.close()


@pytest.mark.browser
def test_browser_every_answer_keeps_its_sources_and_its_document_view(app):
    """Reopen [1] of the first answer after three more; open its permalink in a new page."""
    from playwright.sync_api import sync_playwright

    url, _ = app
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(url)
        _ask(page, "Qu'est-ce que Kantar prévoit pour le social commerce ?")
        for question in ("Who calls digital an object of domination?", "Qui voit l'influence en voie d'assainissement ?",
                         "What is the speed of light?"):
            _ask(page, question)
        assert "social commerce" not in page.locator("#rag-sources").inner_text()
        first = page.locator("#rag-chat .message.bot").nth(0)
        assert "social commerce" in first.inner_text()
        first.click(position={"x": 30, "y": 12})
        page.wait_for_function("() => document.querySelector('#rag-sources').innerText.includes('social commerce')",
                               timeout=10_000)
        mark = page.locator("#rag-cite-1 mark.rag-quote").first
        assert "un développement du social commerce" in mark.inner_text()
        # "Copier" copies the selected answer as plain text, its citations written out with their links.
        page.click("#rag-copy")
        page.wait_for_timeout(300)
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert "un développement du social commerce" in copied and "?doc=" in copied
        assert "[1] Médias sociaux : une diversification tout en paradoxes (2019)" in copied and "\\" not in copied
        # The bubble carries its citations written out, with the same permalinks.
        assert "Médias sociaux : une diversification tout en paradoxes" in first.inner_text()
        link = page.locator("#rag-cite-1 a.rag-open").get_attribute("href")
        assert link.startswith(url) and "?doc=" in link
        view = browser.new_page(viewport={"width": 1400, "height": 900})
        view.goto(link)
        focus = view.locator("#rag-focus")
        focus.wait_for(timeout=30_000)
        assert "un développement du social commerce" in focus.inner_text()
        view.wait_for_timeout(500)
        assert focus.is_visible() and focus.evaluate(
            "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }")
        assert "2019" in view.locator(".rag-document .rag-meta").inner_text()
        view.screenshot(path=str(SCREENSHOTS / "fr-document-view.png"))
        bad = browser.new_page()
        bad.goto(url + "?doc=nothing-here&start=0&end=5")
        bad.wait_for_selector(".rag-missing", timeout=30_000)
        browser.close()


@pytest.mark.browser
def test_browser_compare_shows_one_column_per_source_and_a_silent_one(app):
    from playwright.sync_api import sync_playwright

    url, _ = app
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, url)
        _ask(page, "Que prévoient Kantar et Digimind sur le social commerce ?")
        columns = page.locator("#rag-sources .rag-column")
        assert columns.count() == 2
        assert "2019" in columns.nth(0).locator("h4").inner_text() and "2020" in columns.nth(1).locator("h4").inner_text()
        assert "social commerce" in columns.nth(0).inner_text()
        page.screenshot(path=str(SCREENSHOTS / "fr-comparison.png"), full_page=True)
        _ask(page, "Compare what the sources say about TikTok.")
        page.wait_for_selector('#rag-sources .rag-sources[lang="en"] .rag-column', timeout=10_000)
        # Other tests may have added documents to this app: each is a column, silent unless it speaks.
        kantar = page.locator("#rag-sources .rag-column").filter(has_text="(2019)")
        digimind = page.locator("#rag-sources .rag-column").filter(has_text="(2020)")
        assert "nothing on this topic" in kantar.inner_text() and kantar.locator(".rag-silent").count() == 1
        assert digimind.locator(".rag-silent").count() == 0 and "TikTok" in digimind.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "en-comparison.png"), full_page=True)
        browser.close()


@pytest.mark.browser
def test_browser_ratings_survive_a_server_restart(embedder, tmp_path):
    """A rating given before a restart is still there after it, and the restarted server appends to it."""
    from playwright.sync_api import sync_playwright

    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate import load_questions
    from rag.evaluate.feedback import export, read
    from ui.app import serve

    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index",
                                feedback_file=str(tmp_path / "kept" / "ratings.jsonl"))
    questions = ["Qu'est-ce que Kantar prévoit pour le social commerce ?", "Who calls digital an object of domination?"]
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        for done, question in enumerate(questions):
            handle = serve(port=free_port(), settings=settings, block=False, engine=Engine(settings, embedder=embedder))
            try:
                assert handle.rag_state.ready.wait(300) and not handle.rag_state.error
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(handle.url)
                _ask(page, question)
                page.locator("#rag-chat button[aria-label='Like']").first.click()
                for _ in range(100):
                    if len(read(settings.feedback_path)) > done:
                        break
                    page.wait_for_timeout(100)
                page.close()
            finally:
                handle.close()
        browser.close()
    ratings = read(settings.feedback_path)
    assert [r["question"] for r in ratings] == questions and {r["rating"] for r in ratings} == {"Like"}
    target = tmp_path / "feedback-eval.jsonl"
    labelled, _ = export(settings.feedback_path, target)
    assert labelled == 2 and [i["question"] for i in load_questions([target])] == questions


@pytest.mark.browser
def test_browser_ratings_are_kept_and_the_conversation_exports_as_markdown(app, tmp_path, seed_engine):
    from playwright.sync_api import sync_playwright

    from rag.evaluate import load_questions
    from rag.evaluate.feedback import export, read
    from rag.evaluate.labelled import evaluate

    url, handle = app
    path = handle.rag_state.settings.feedback_path
    before = len(read(path))
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, url)
        _ask(page, "Qu'est-ce que Kantar prévoit pour le social commerce ?")
        _ask(page, "Who calls digital an object of domination?")
        page.locator("#rag-chat button[aria-label='Like']").first.click()
        for _ in range(50):
            if len(read(path)) > before:
                break
            page.wait_for_timeout(100)
        with page.expect_download() as download:
            page.click("#rag-export")
        markdown = Path(download.value.path()).read_text(encoding="utf-8")
        browser.close()
    ratings = read(path)[before:]
    assert ratings and ratings[0]["rating"] == "Like" and "social commerce" in ratings[0]["question"]
    # The ratings file outlives the server: it is read back here as a later process would.
    target = tmp_path / "feedback-eval.jsonl"
    labelled, _ = export(path, target)
    items = load_questions([target])
    assert labelled >= 1 and any("social commerce" in i["question"] for i in items)
    _, report = evaluate(seed_engine, items)
    assert report["all"]["questions"] == len(items)
    import html

    import markdown_it

    # The file is Markdown with document text escaped (a viewer must not fetch a planted image); read as rendered:
    shown = html.unescape(markdown_it.MarkdownIt("commonmark").render(markdown))
    for quote in ("un développement du social commerce", "objet de domination",
                  "Médias sociaux : une diversification tout en paradoxes"):
        assert quote in shown
    assert markdown.count("?doc=") >= 2


@pytest.mark.browser
def test_browser_a_reader_points_at_the_sentence_that_answers_and_it_is_kept(app, tmp_path):
    """A refusal shows its closest passages; the reader picks, among their sentences, the one that answers:
    the correction is written with the sentence's exact offsets in its document, and exported as the
    question's evidence. Clicking an earlier answer lists that answer's sentences instead."""
    from playwright.sync_api import sync_playwright

    from rag.evaluate import load_questions
    from rag.evaluate.feedback import CORRECTED, export, read

    url, handle = app
    path = handle.rag_state.settings.feedback_path
    before = len(read(path))
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, url)
        page.click("#rag-correct button")  # opened before any answer: nothing to point at yet
        page.click("#rag-point")
        page.wait_for_selector("#rag-pointed :text('Choisissez d\\'abord')", timeout=10_000)
        _ask(page, "Qu'est-ce que Kantar prévoit pour le social commerce ?")
        _ask(page, "Which platform will grow fastest in 2027?")
        page.locator("#rag-answering input").click()
        options = page.get_by_role("option")
        labels = [options.nth(i).inner_text() for i in range(options.count())]
        assert labels and all(label.startswith("[") for label in labels)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "correction.png"), full_page=True)
        options.first.click()
        page.click("#rag-point")
        page.wait_for_selector("#rag-pointed :text('correction enregistrée')", timeout=10_000)
        page.click("#rag-point")  # a second click on the same sentence writes nothing more
        page.wait_for_selector("#rag-pointed :text('déjà enregistrée')", timeout=10_000)
        # The first answer, clicked: its own passages' sentences are listed.
        page.locator("#rag-chat .message.bot").first.click()
        page.wait_for_function("() => !document.querySelector('#rag-pointed').innerText.includes('enregistrée')",
                               timeout=10_000)
        page.locator("#rag-answering input").click()
        first_labels = [page.get_by_role("option").nth(i).inner_text() for i in range(page.get_by_role("option").count())]
        browser.close()
    assert any("social commerce" in label for label in first_labels) and first_labels != labels
    ratings = read(path)[before:]
    assert [r["rating"] for r in ratings] == [CORRECTED]
    pointed = ratings[0]["answering"]
    document = next(c for c in ratings[0]["answer"]["citations"] if c["n"] == pointed["citation"])["document"]
    assert (SEEDS / document).read_text(encoding="utf-8")[pointed["start"]:pointed["end"]] == pointed["text"]
    assert " ".join(pointed["text"].split())[:100] in labels[0]
    target = tmp_path / "feedback-eval.jsonl"
    export(path, target)
    item = next(i for i in load_questions([target]) if i["question"] == "Which platform will grow fastest in 2027?")
    assert item["evidence"] == pointed["text"]
