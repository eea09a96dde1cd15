"""The server surface (docs/RELIABILITY.md, cases 1–6, 14, 31 and the Gradio defaults), over raw HTTP."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SEEDS, free_port

FOREIGN = "http://evil.example"


@pytest.fixture(scope="module")
def http(app):
    url, _ = app
    with httpx.Client(base_url=url.rstrip("/"), timeout=60) as client:
        yield client


@pytest.mark.parametrize("path", [
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=../../../../etc/passwd",
    "/gradio_api/file=..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/gradio_api/file=/tmp/../etc/passwd",
    "/gradio_api/file=/proc/self/environ",
])
def test_path_traversal_is_refused(http, path):
    response = http.get(path)
    assert response.status_code in (403, 404)
    assert "root:" not in response.text


def test_documents_and_index_are_never_served(http, app):
    _, handle = app
    settings = handle.rag_state.engine.settings
    targets = [settings.docs_dir / "000_b1c74287bd27e96d.txt", settings.index_dir / "CURRENT",
               handle.rag_state.engine.index.folder / "manifest.json", SEEDS / "000_b1c74287bd27e96d.txt"]
    for target in targets:
        response = http.get(f"/gradio_api/file={target}")
        assert response.status_code == 403, target
        assert "Kantar" not in response.text


def test_monitoring_and_api_docs_are_closed(http):
    assert http.get("/gradio_api/monitoring/summary").status_code == 404
    assert http.get("/gradio_api/monitoring").status_code == 404
    assert http.get("/docs").status_code == 404


def test_run_route_cannot_skip_the_queue(http):
    response = http.post("/gradio_api/run/ask", json={"data": ["Kantar ?", []]})
    assert response.status_code != 200 or "queue" in response.text.lower()
    assert "citations" not in response.text


def _upload(http, name: str, content: bytes, origin: str | None = None) -> httpx.Response:
    headers = {"Origin": origin} if origin else {}
    return http.post("/gradio_api/upload", files={"files": (name, content)}, headers=headers)


@pytest.mark.parametrize("name, content", [
    ("page.html", b"<html><body><script>alert(1)</script></body></html>"),
    ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'),
])
def test_uploaded_html_and_svg_come_back_as_attachments(http, name, content):
    response = _upload(http, name, content)
    assert response.status_code == 200
    path = response.json()[0]
    served = http.get(f"/gradio_api/file={path}")
    assert served.status_code == 200
    assert "attachment" in served.headers.get("content-disposition", "")
    assert "html" not in served.headers["content-type"] and "svg" not in served.headers["content-type"]


def test_upload_one_byte_over_the_limit_is_refused(http):
    from ui.app import MAX_UPLOAD_MB

    limit = MAX_UPLOAD_MB * 1024 * 1024
    assert _upload(http, "big.txt", b"a" * (limit + 1)).status_code == 413
    assert _upload(http, "ok.txt", b"a" * 1024).status_code == 200


def test_cross_origin_upload_is_refused(http, app):
    response = _upload(http, "note.txt", b"Une note.", origin=FOREIGN)
    assert response.status_code == 403
    assert _upload(http, "note.txt", b"Une note.", origin=app[0].rstrip("/")).status_code == 200
    assert http.post("/gradio_api/queue/join", json={}, headers={"Origin": "null"}).status_code == 403


def _join_and_wait(http, fn_index: int, data: list, session: str) -> str:
    http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session})
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if "process_completed" in line:
                return line
    return ""


@pytest.mark.parametrize("secret_dir", ["tmp", "home"])
def test_forged_file_path_is_never_copied(http, app, tmp_path, secret_dir):
    """A FileData naming a file the user never uploaded (under the system temp folder, which
    Gradio itself lets through, or elsewhere) must not reach the documents."""
    import tempfile as tf
    from pathlib import Path

    _, handle = app
    folder = Path(tf.mkdtemp()) if secret_dir == "tmp" else tmp_path
    secret = folder / "secret-forged.txt"
    secret.write_text("SECRET-TOKEN-4711 : une phrase secrète sur le serveur.", encoding="utf-8")
    config = http.get("/config").json()
    add = next(d for d in config["dependencies"] if any(
        c.get("props", {}).get("elem_id") == "rag-upload" for c in config["components"] if c["id"] in d["inputs"]))
    forged = {"path": str(secret), "orig_name": "secret.txt", "meta": {"_type": "gradio.FileData"}}
    completed = _join_and_wait(http, add["id"], [[forged], "default"], f"forged-{secret_dir}")
    assert completed  # the handler (or Gradio) answered
    uploads = handle.rag_state.engine.settings.docs_dir / "uploads"
    copied = list(uploads.glob("secret*")) if uploads.exists() else []
    assert copied == []
    assert not any("SECRET-TOKEN-4711" in p.text for p in handle.rag_state.engine.index.passages)


def test_internal_error_reaches_the_user_as_one_short_sentence(app, monkeypatch):
    from gradio_client import Client

    from ui.app import INTERNAL_ERROR

    _, handle = app
    engine = handle.rag_state.engine

    def explode(*args, **kwargs):
        raise RuntimeError("secret detail at /srv/private/index/v-1/passages.faiss line 42")

    monkeypatch.setattr(engine, "ask", explode)
    data = Client(app[0], verbose=False).predict(question="Kantar ?", history=[], api_name="/ask")
    text = json.dumps(data)
    assert data["error"] == INTERNAL_ERROR
    assert "Traceback" not in text and "/srv/private" not in text and "secret" not in text


def test_a_huge_question_through_the_api_is_refused_with_the_limit(client):
    data = client.predict(question="Kantar " * 150_000, history=[], api_name="/ask")
    assert "2000" in data["error"]  # the limit, named in the question's language


def test_sixteen_parallel_questions_all_answered(client):
    questions = ["Qu'est-ce que Kantar prévoit pour le social commerce ?", "Who calls digital an object of domination?",
                 "Quel est le meilleur restaurant de Paris ?", "Which Amazon initiatives are given as examples?"] * 4
    results: list = [None] * 16

    def ask(i: int) -> None:
        results[i] = client.predict(question=questions[i], history=[], api_name="/ask")

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(isinstance(r, dict) and "error" not in r for r in results)
    assert all(r["question"] == q for r, q in zip(results, questions))


class SlowEngine:
    """The real engine, made slow, so that a small queue fills up deterministically."""

    def __init__(self, engine, seconds: float) -> None:
        self._engine, self._seconds = engine, seconds

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def ask(self, *args, **kwargs):
        time.sleep(self._seconds)
        return self._engine.ask(*args, **kwargs)


def test_a_full_queue_answers_busy_and_the_rest_complete(seed_engine, monkeypatch):
    """Concurrency k=1, queue M=2: M+k+5 simultaneous requests, the extras are refused cleanly."""
    from gradio_client import Client

    from ui.app import serve

    monkeypatch.setenv("RAG_QUEUE_SIZE", "2")
    monkeypatch.setenv("RAG_CONCURRENCY", "1")
    from rag.config import Settings

    settings = Settings.resolve(docs_dir=seed_engine.settings.docs_dir, index_dir=seed_engine.settings.index_dir)
    assert (settings.queue_size, settings.concurrency) == (2, 1)
    handle = serve(port=free_port(), settings=settings, block=False, engine=SlowEngine(seed_engine, 1.0))
    try:
        handle.rag_state.ready.wait(300)
        outcomes: list[str] = []

        def ask() -> None:
            try:
                result = Client(handle.url, verbose=False).predict(question="Kantar ?", history=[], api_name="/ask")
                outcomes.append("answered" if "error" not in result else "error")
            except Exception as exc:  # gradio_client raises for a full queue
                outcomes.append("busy" if "queue" in str(exc).lower() or "full" in str(exc).lower() else f"other: {exc}")

        threads = [threading.Thread(target=ask) for _ in range(2 + 1 + 5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        handle.close()
    assert len(outcomes) == 8
    assert outcomes.count("busy") >= 1 and outcomes.count("answered") >= 3
    assert all(o in ("busy", "answered") for o in outcomes), outcomes


def test_too_many_files_in_one_add_are_refused(http):
    """Case 4: the add handler takes at most MAX_UPLOAD_FILES files at once."""
    from ui.app import MAX_UPLOAD_FILES

    paths = [_upload(http, f"n{i}.txt", b"Une note.").json()[0] for i in range(MAX_UPLOAD_FILES + 1)]
    config = http.get("/config").json()
    add = next(d for d in config["dependencies"] if any(
        c.get("props", {}).get("elem_id") == "rag-upload" for c in config["components"] if c["id"] in d["inputs"]))
    files = [{"path": p, "orig_name": Path(p).name, "meta": {"_type": "gradio.FileData"}} for p in paths]
    completed = _join_and_wait(http, add["id"], [files, "default"], "flood")
    assert "Trop de fichiers" in completed
