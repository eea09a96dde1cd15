"""Hostile input and a second process (issue 27): each numbered case of the issue reproduced here,
in the unit tier where it can be, with the real model and server where it must be."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


def _through_guard(headers: dict[str, str], method: str = "POST", allowed: tuple[str, ...] = (),
                   listen_host: str = "127.0.0.1") -> int:
    from ui.security import SameOriginGuard

    reached = []

    async def app(scope, receive, send):
        reached.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method,
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]}
    asyncio.run(SameOriginGuard(app, allowed, listen_host)(scope, None, send))
    return sent[0]["status"]


# ---------------------------------------------------------------- 8. DNS rebinding

def test_a_rebound_name_is_refused_even_when_origin_and_host_agree():
    """Case 8: Origin and Host both http://evil.example:7861 were answered."""
    evil = {"Origin": "http://evil.example:7861", "Host": "evil.example:7861"}
    assert _through_guard(evil) == 403
    assert _through_guard({"Host": "evil.example:7861"}, method="GET") == 403  # reading answers too


def test_forwarded_host_vouches_for_nobody():
    headers = {"Origin": "http://evil.example", "Host": "127.0.0.1:7860", "X-Forwarded-Host": "evil.example"}
    assert _through_guard(headers) == 403


@pytest.mark.parametrize("headers, allowed, listen_host", [
    ({"Origin": "http://127.0.0.1:7860", "Host": "127.0.0.1:7860"}, (), "127.0.0.1"),
    ({"Origin": "http://localhost:7860", "Host": "localhost:7860"}, (), "127.0.0.1"),
    ({"Origin": "http://[::1]:7860", "Host": "[::1]:7860"}, (), "::1"),
    ({"Origin": "http://192.168.1.20:7860", "Host": "192.168.1.20:7860"}, (), "0.0.0.0"),
    ({"Origin": "http://chat.lan:7860", "Host": "chat.lan:7860"}, (), "chat.lan"),
    ({"Origin": "https://docs.example.org", "Host": "127.0.0.1:7860"}, ("https://docs.example.org",), "127.0.0.1"),
    ({"Origin": "https://docs.example.org", "Host": "docs.example.org"}, ("https://docs.example.org",), "127.0.0.1"),
    ({"Host": "127.0.0.1:7860"}, (), "127.0.0.1"),  # no Origin: a script, not a browser
])
def test_the_servers_own_names_pass(headers, allowed, listen_host):
    assert _through_guard(headers, allowed=allowed, listen_host=listen_host) == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "http://[::1"])
def test_other_origins_cannot_post(origin):
    assert _through_guard({"Origin": origin, "Host": "127.0.0.1:7860"}) == 403


# ---------------------------------------------------------------- 4. asking never loses an index

GOOD = {
    "a.txt": "Titre A\nLes marques investiront le social commerce en 2021. Les créateurs suivront.\n",
    "b.txt": "Titre B\nTikTok gagnera encore des utilisateurs. Snapchat reculera nettement.\n",
    "c.txt": "Titre C\nLes podcasts deviendront un canal publicitaire majeur pour les marques.\n",
}


def _folder(path, files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def built(tmp_path):
    """An index of three documents, built from its own folder (not seeds/)."""
    from rag.config import Settings
    from rag.index.build import build
    from tests.fakes import FakeEmbedder

    docs, index_dir = _folder(tmp_path / "collection", GOOD), tmp_path / "index"
    settings = Settings.resolve(docs_dir=docs, index_dir=index_dir)
    build(docs, index_dir, FakeEmbedder(), settings=settings)
    return docs, index_dir


def _pointer(index_dir):
    from rag.index.store import read_pointer

    return read_pointer(index_dir)


def test_asking_without_docs_uses_the_indexs_own_folder(built, monkeypatch):
    """Case 4: `rag ask --index DIR` without --docs re-indexed DIR from seeds/ and demoted its version."""
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    monkeypatch.delenv("RAG_DOCS_DIR", raising=False)
    before = _pointer(index_dir)
    engine = Engine(Settings.resolve(index_dir=index_dir), embedder=FakeEmbedder())
    assert not engine.settings.docs_named
    engine.open()
    assert engine.settings.docs_dir == docs.resolve()
    assert engine.index.manifest["counts"]["documents"] == 3
    assert _pointer(index_dir) == before


def test_another_folder_is_refused_and_the_index_kept(built, tmp_path):
    from rag.config import Settings
    from rag.engine import Engine
    from rag.errors import IndexStoreError
    from rag.index.build import build
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    other = _folder(tmp_path / "other", {"z.txt": "Titre Z\nUne autre collection, sans rapport.\n"})
    before = _pointer(index_dir)
    with pytest.raises(IndexStoreError, match="was built from .*--rebuild"):
        Engine(Settings.resolve(docs_dir=other, index_dir=index_dir), embedder=FakeEmbedder()).open()
    with pytest.raises(IndexStoreError, match="--rebuild"):
        build(other, index_dir, FakeEmbedder(), settings=Settings.resolve(docs_dir=other, index_dir=index_dir))
    assert _pointer(index_dir) == before
    report = build(other, index_dir, FakeEmbedder(), settings=Settings.resolve(docs_dir=other, index_dir=index_dir),
                   rebuild=True)
    assert report.documents == 1


def test_the_cli_refuses_another_folder_in_one_sentence(built, tmp_path, capsys):
    from rag.cli import main

    docs, index_dir = built
    before = _pointer(index_dir)
    code = main(["ask", "--index", str(index_dir), "--docs", str(tmp_path), "Kantar ?"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rag: ") and err.count("\n") == 1 and "Traceback" not in err
    assert _pointer(index_dir) == before


def test_a_moved_project_keeps_its_folder(built, tmp_path):
    """The folder is also kept relative to the index: a project copied elsewhere still matches."""
    import shutil

    from rag.index.build import check_same_documents
    from rag.index.store import served_manifest

    docs, index_dir = built
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copytree(docs, moved / "collection")
    shutil.copytree(index_dir, moved / "index")
    shutil.rmtree(docs)
    check_same_documents(served_manifest(moved / "index"), moved / "collection", moved / "index")


def test_a_damaged_current_version_is_answered_from_the_previous_one_not_reembedded(built):
    """Case 4: a damaged current version made `ask` silently re-embed everything."""
    from rag.config import Settings
    from rag.index.build import build, open_index
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    (docs / "d.txt").write_text("Titre D\nLes newsletters reviennent en force chez les médias.\n", encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=index_dir)
    build(docs, index_dir, FakeEmbedder(), settings=settings)
    pointer = _pointer(index_dir)
    vectors = index_dir / pointer["current"] / "sentences.npy"
    vectors.write_bytes(vectors.read_bytes()[:200])
    embedder = FakeEmbedder()
    index = open_index(docs, index_dir, embedder, settings=settings)
    assert index.folder.name == pointer["previous"]
    assert "damaged" in index.note and "sentences.npy" in index.note
    assert embedder.calls == 0 and _pointer(index_dir) == pointer


# ---------------------------------------------------------------- 5. store errors are one sentence

@contextlib.contextmanager
def read_only(folder):
    """`folder` read-only for this process: a read-only bind mount for root (whom permissions do
    not stop), the write bits taken away otherwise."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")]}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (no mount capability)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


def _fake_cli(args: list[str], limit_bytes: int = 0) -> subprocess.CompletedProcess:
    """`rag <args>` in a child process with the fake embedder, its files capped at `limit_bytes`
    (a full disk, as a write past the cap fails with EFBIG)."""
    code = (
        "import resource, signal, sys\n"
        f"limit = {limit_bytes}\n"
        "if limit:\n"
        "    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
        "import rag.embedding.embedder as module\n"
        "from tests.fakes import FakeEmbedder\n"
        "module.Embedder = lambda **kw: FakeEmbedder()\n"
        "from rag.cli import main\n"
        f"sys.exit(main({args!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def _one_sentence(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("rag: ") and "cannot write" in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr


def test_a_read_only_index_folder_is_one_sentence_and_untouched(built):
    """Case 5: PermissionError at .lock (a traceback, exit 1)."""
    docs, index_dir = built
    (docs / "d.txt").write_text("Titre D\nLes newsletters reviennent en force.\n", encoding="utf-8")
    before = _pointer(index_dir)
    with read_only(index_dir):
        result = _fake_cli(["build", "--index", str(index_dir), "--docs", str(docs)])
    _one_sentence(result)
    assert _pointer(index_dir) == before


def test_a_full_disk_is_one_sentence_and_the_served_version_untouched(built):
    docs, index_dir = built
    (docs / "d.txt").write_text("Titre D\nLes newsletters reviennent en force.\n" * 40, encoding="utf-8")
    before = _pointer(index_dir)
    result = _fake_cli(["build", "--index", str(index_dir), "--docs", str(docs)], limit_bytes=1024)
    _one_sentence(result)
    assert _pointer(index_dir) == before
    assert not list(index_dir.glob(".building-*"))
    from rag.index.store import load

    assert load(index_dir).manifest["counts"]["documents"] == 3


def test_asking_a_read_only_index_of_changed_documents_answers_from_it(built):
    """Case 5: `rag ask` with a changed docs folder tried to build into a read-only index."""
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    (docs / "d.txt").write_text("Titre D\nLes newsletters reviennent en force.\n", encoding="utf-8")
    embedder = FakeEmbedder()
    with read_only(index_dir):
        engine = Engine(Settings.resolve(docs_dir=docs, index_dir=index_dir), embedder=embedder)
        answer = engine.ask("Que feront les marques du social commerce ?")
    assert engine.index.manifest["counts"]["documents"] == 3
    assert answer.citations and not answer.message


# ---------------------------------------------------------------- 10. a waiting build, a killed build's leftovers

def test_a_second_build_says_it_waits_and_a_killed_builds_leftovers_go(built, caplog):
    import fcntl
    import threading

    from rag.config import Settings
    from rag.index.build import build
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    leftover = index_dir / ".building-killed"
    leftover.mkdir()
    (leftover / "sentences.npy").write_bytes(b"\0" * 4096)
    stages = []
    with open(index_dir / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=build, args=(docs, index_dir, FakeEmbedder()), kwargs={
            "settings": Settings.resolve(docs_dir=docs, index_dir=index_dir),
            "progress": lambda stage, done, total: stages.append(stage)})
        worker.start()
        deadline = time.monotonic() + 30
        while "waiting" not in stages and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stages == ["waiting"]
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(60)
    assert "another build" in caplog.text
    assert not leftover.exists()


# ---------------------------------------------------------------- 3 and 6. live files, a build by another process

def test_a_live_index_file_shortened_under_the_process_costs_nothing(built):
    """Case 3: `truncate -s 4096` of the current sentences.npy killed the server (SIGBUS on its map)."""
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=index_dir), embedder=FakeEmbedder())
    first = engine.ask("Que feront les marques du social commerce ?")
    for name in ("sentences.npy", "clauses.npy", "passages.npy"):
        os.truncate(engine.index.folder / name, 100)
    again = engine.ask("Que feront les marques du social commerce ?")
    assert again.answer == first.answer and again.citations == first.citations


def test_a_damaged_version_on_disk_is_refused_when_loaded(built):
    from rag.errors import IndexStoreError
    from rag.index.store import load_version

    _, index_dir = built
    folder = index_dir / _pointer(index_dir)["current"]
    os.truncate(folder / "sentences.npy", 4096 if (folder / "sentences.npy").stat().st_size > 4096 else 64)
    with pytest.raises(IndexStoreError, match="sentences.npy does not match its checksum"):
        load_version(folder)


def test_the_engine_follows_a_version_another_process_lands(built):
    """Case 6: after a CLI `rag build` added a document, the server kept refusing questions about it."""
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=index_dir), embedder=FakeEmbedder())
    engine.open()
    old = engine.index
    engine.follow_versions(interval=0.05)
    try:
        (docs / "d.txt").write_text("Titre D\nLes newsletters reviennent en force chez les médias.\n",
                                    encoding="utf-8")
        result = _fake_cli(["build", "--index", str(index_dir), "--docs", str(docs)])
        assert result.returncode == 0, result.stderr
        landed = _pointer(index_dir)["current"]
        deadline = time.monotonic() + 30
        while engine.index.folder.name != landed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.index.folder.name == landed
        assert engine.index.manifest["counts"]["documents"] == 4
        assert old.manifest["counts"]["documents"] == 3  # an answer in flight keeps its version whole
        answer = engine.ask("Les newsletters reviennent-elles en force ?")
        assert any(c.document == "d.txt" for c in answer.citations)
    finally:
        engine.close()


def test_a_damaged_new_version_is_refused_and_the_served_one_kept(built, caplog):
    from rag.config import Settings
    from rag.engine import Engine
    from rag.index.build import build
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=index_dir), embedder=FakeEmbedder())
    engine.open()
    served = engine.index.folder.name
    (docs / "d.txt").write_text("Titre D\nLes newsletters reviennent en force.\n", encoding="utf-8")
    build(docs, index_dir, FakeEmbedder(), settings=Settings.resolve(docs_dir=docs, index_dir=index_dir))
    landed = _pointer(index_dir)["current"]
    os.truncate(index_dir / landed / "passages.npy", 64)
    assert engine.pick_up_new_version() is False
    assert engine.index.folder.name == served
    assert landed in caplog.text and "not served" in caplog.text
    assert engine.pick_up_new_version() is False  # refused once, not reloaded at every check


# ---------------------------------------------------------------- 9. ratings and logs bounded

def test_a_replayed_rating_is_written_once_and_changes_of_mind_are_bounded():
    """Case 9: 500 replays of one like appended 500 lines."""
    from rag.evaluate.feedback import DISLIKE, LIKE, WRONG_QUOTE, RatingLedger

    ledger = RatingLedger(max_lines=3, max_answers=2)
    assert [ledger.admit("s1:2", LIKE) for _ in range(500)].count(True) == 1
    assert ledger.admit("s2:2", LIKE)  # another reader, another answer
    assert ledger.admit("s1:2", WRONG_QUOTE) and ledger.admit("s1:2", DISLIKE)
    assert not ledger.admit("s1:2", LIKE)  # the fourth line of one answer
    ledger.admit("s3:4", LIKE)
    assert len(ledger._seen) == 2  # bounded memory: the oldest answer forgotten


def test_a_forged_rating_value_never_reaches_the_log_whole():
    """Case 9: a 15 MB forged `liked` value wrote 15 MB to the log."""
    from rag.errors import RagError
    from rag.evaluate.feedback import rating_of

    with pytest.raises(RagError) as raised:
        rating_of("x" * 15_000_000)
    assert len(str(raised.value)) < 300


# ---------------------------------------------------------------- 2. uploads bounded on the raw route

@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """The real server with small upload limits (and the fake embedder: only the limits are tested)."""
    import httpx

    from tests.conftest import seeds_server
    from tests.fakes import FakeEmbedder
    from ui.app import upload_root
    from ui.security import folder_bytes

    used_mb = folder_bytes(upload_root()) // 2**20
    with seeds_server(FakeEmbedder(), tmp_path_factory.mktemp("limits"), upload_mb_per_minute=3,
                      upload_cache_mb=used_mb + 6) as handle, \
            httpx.Client(base_url=handle.url.rstrip("/"), timeout=60) as http:
        yield http, handle


@pytest.mark.slow
def test_uploads_are_bounded_per_request_per_client_and_in_total(small_server):
    """Case 2: 15 POSTs of 18 MB wrote 280 MB in 1.3 s; 30 files in one request were accepted."""
    from ui.app import MAX_UPLOAD_FILES, upload_root
    from ui.security import folder_bytes

    http, _ = small_server
    before = folder_bytes(upload_root())
    many = [("files", (f"n{i}.txt", b"une note\n")) for i in range(MAX_UPLOAD_FILES + 20)]
    response = http.post("/gradio_api/upload", files=many)
    assert response.status_code == 413 and f"{MAX_UPLOAD_FILES} files" in response.text
    assert folder_bytes(upload_root()) - before < 4096  # nothing of the cut request is kept
    ok = [("files", (f"n{i}.txt", b"une note\n")) for i in range(MAX_UPLOAD_FILES)]
    assert http.post("/gradio_api/upload", files=ok).status_code == 200
    megabyte = b"a" * 2**20
    codes = [http.post("/gradio_api/upload", files={"files": (f"m{i}.txt", megabyte + bytes([i]))}).status_code
             for i in range(5)]
    assert codes[:2] == [200, 200] and codes[-1] == 429
    refused = http.post("/gradio_api/upload", files={"files": ("late.txt", megabyte)})
    assert refused.status_code == 429 and "a minute" in refused.text and refused.headers["retry-after"] == "60"
    assert folder_bytes(upload_root()) - before < 4 * 2**20


@pytest.mark.slow
def test_a_huge_json_body_is_refused_before_it_is_read(small_server):
    http, _ = small_server
    response = http.post("/gradio_api/queue/join", content=b'{"data": ["' + b"x" * (5 * 2**20) + b'"]}',
                         headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_the_upload_folder_has_a_ceiling(tmp_path):
    """The total the upload folder may hold, whoever sends it (addresses are cheap)."""
    from ui.security import BodyLimits

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        (tmp_path / f"f{len(list(tmp_path.iterdir()))}").write_bytes(b"a" * 600)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    clock = [0.0]
    guard = BodyLimits(app, max_files=10, max_file_bytes=1000, client_bytes_per_minute=10**9, cache_bytes=1500,
                       cache_folder=lambda: tmp_path, clock=lambda: clock[0])
    statuses = []
    for n in range(4):
        clock[0] += 2.0
        body = b"--B\r\n" + b"a" * 600 + b"\r\n--B--\r\n"
        sent: list = []

        async def send(message, sent=sent):
            sent.append(message)

        async def receive(body=body):
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "client": (f"10.0.0.{n}", 1), "headers": [
            (b"content-type", b"multipart/form-data; boundary=B"), (b"content-length", str(len(body)).encode())]}
        asyncio.run(guard(scope, receive, send))
        statuses.append(sent[0]["status"])
    assert statuses == [200, 200, 429, 429]


# ---------------------------------------------------------------- 10. the smaller server holes

@pytest.mark.slow
def test_the_openapi_schema_is_closed_with_the_docs(small_server):
    http, _ = small_server
    assert http.get("/openapi.json").status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("route, body, status", [
    ("/gradio_api/call/v2/ask", b'{"data": 5}', 422),
    ("/gradio_api/call/v2/ask", b"{", 422),
    ("/gradio_api/call/v2/ask", b'{"question": "Kantar ?", "extra": 1}', 422),
    ("/gradio_api/call/ask", b'{"data": "Kantar ?"}', 422),
    ("/gradio_api/call/v2/nothing", b"{}", 404),
    ("/gradio_api/call/v2/ask", b'{"question": "Kantar ?"}', 200),
    ("/gradio_api/call/ask", b'{"data": ["Kantar ?"]}', 200),
])
def test_a_malformed_call_is_one_sentence_not_a_traceback(small_server, capfd, route, body, status):
    """Case 10: a malformed body to /gradio_api/call/v2/ask logged a traceback (500, connection reset);
    `/call/ask` with the question alone was taken (200), then failed in the queue with a traceback."""
    http, _ = small_server
    response = http.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    if status == 200:  # the call runs in the queue after the 200: its result, read to the end
        event = response.json()["event_id"]
        result = http.get(f"{route}/{event}").text
        assert "event: complete" in result and "event: error" not in result, result[:300]
    assert "Traceback" not in capfd.readouterr().err


# ---------------------------------------------------------------- 10. the smaller ingest holes

@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_not_skipped_as_binary(tmp_path, encoding):
    from rag.ingest.files import RawText, read_file

    text = "Les marques investiront le social commerce en 2021. Ça coûte 5 €.\n" * 3
    (tmp_path / "windows.txt").write_bytes(text.encode(encoding))
    raw = read_file(tmp_path / "windows.txt", tmp_path)
    assert isinstance(raw, RawText) and raw.text == text


def test_binary_with_zeros_is_still_skipped(tmp_path):
    from rag.ingest.files import Skipped, read_file

    (tmp_path / "image.txt").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "zeros.txt").write_bytes(b"\x00" * 4000)
    assert isinstance(read_file(tmp_path / "image.txt", tmp_path), Skipped)
    assert isinstance(read_file(tmp_path / "zeros.txt", tmp_path), Skipped)


def test_hidden_files_and_folders_are_said_not_read(tmp_path):
    from rag.ingest.files import discover

    _folder(tmp_path, {"a.txt": "Un document.\n", ".brouillon.txt": "Caché.\n"})
    _folder(tmp_path / ".git", {"config.txt": "Caché aussi.\n"})
    found, skipped = discover(tmp_path)
    assert [p.name for p in found] == ["a.txt"]
    assert {s.source for s in skipped} == {".brouillon.txt", ".git/"}
    assert all("hidden" in s.reason for s in skipped)


# ---------------------------------------------------------------- 1. splits are kept with the index

def test_an_unchanged_document_is_not_split_again_and_its_records_are_the_same(built, tmp_path, monkeypatch):
    """Case 1: splits were not cached, so every later build paid again (52–64 s instead of 14 s)."""
    import rag.index.plan as build_module
    from rag.config import Settings
    from rag.index.build import build
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    split = build_module.split_document
    calls = []
    monkeypatch.setattr(build_module, "split_document", lambda raw, *a, **k: calls.append(raw.source) or split(raw, *a, **k))
    (docs / "d.txt").write_text("Titre D\nLes newsletters reviennent en force.\n", encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=index_dir)
    again = build(docs, index_dir, FakeEmbedder(), settings=settings).index
    assert calls == ["d.txt"]
    fresh = build(docs, tmp_path / "fresh", FakeEmbedder(), settings=settings.replace(index_dir=tmp_path / "fresh")).index
    assert again.passages == fresh.passages and again.sentences == fresh.sentences
    assert again.documents == fresh.documents


def test_a_change_of_furniture_splits_a_document_again(tmp_path, monkeypatch):
    """A line that becomes furniture (most pages now repeat it) changes how the pages holding it split."""
    import rag.index.plan as build_module
    from rag.config import Settings
    from rag.index.build import build
    from tests.fakes import FakeEmbedder

    footer = "Mentions légales et contact du site."
    pages = {f"p{i}.txt": f"Page {i}\nUne phrase propre à la page {i}, sur le sujet {i}.\n{footer}\n" for i in range(3)}
    docs, index_dir = _folder(tmp_path / "docs", pages), tmp_path / "index"
    settings = Settings.resolve(docs_dir=docs, index_dir=index_dir)
    build(docs, index_dir, FakeEmbedder(), settings=settings)  # three pages: the footer is furniture
    split = build_module.split_document
    calls = []
    monkeypatch.setattr(build_module, "split_document", lambda raw, *a, **k: calls.append(raw.source) or split(raw, *a, **k))
    for i in range(3, 18):  # fifteen more pages without it: under a quarter, it no longer is
        (docs / f"p{i}.txt").write_text(f"Page {i}\nUne phrase propre à la page {i}.\n", encoding="utf-8")
    index = build(docs, index_dir, FakeEmbedder(), settings=settings).index
    assert {"p0.txt", "p1.txt", "p2.txt"} <= set(calls)
    assert any(footer in s.text for s in index.sentences)


# ---------------------------------------------------------------- 7. memory bounded whatever one file holds

def test_texts_are_tokenized_a_window_at_a_time_with_the_same_vectors(embedder, monkeypatch):
    """Case 7: one huge document's tens of thousands of texts were tokenized at once."""
    import numpy as np

    import rag.embedding.onnx as onnx

    if embedder.backend == "torch":
        pytest.skip("sentence-transformers tokenizes batch by batch itself")
    texts = [f"Phrase numéro {n} sur le social commerce et les marques, {'très ' * (n % 7)}longue." for n in range(23)]
    whole = embedder.encode_passages(texts)
    monkeypatch.setattr(onnx, "TOKENIZE_WINDOW", 5)
    model = embedder._load()
    sizes: list[int] = []

    class Counting:  # the tokenizer, telling how many texts each call holds at once
        def __init__(self, inner):
            self.inner = inner

        def encode_batch(self, batch, max_length):
            sizes.append(len(batch))
            return self.inner.encode_batch(batch, max_length)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(model, "tokenizer", Counting(model.tokenizer))
    windows = embedder.encode_passages(texts)
    assert np.allclose(whole, windows, atol=1e-5)
    assert sizes == [5, 5, 5, 5, 3]  # never more than the window at once


def test_nothing_the_model_reads_grows_with_a_one_line_file():
    """Case 7: one 19 MB base64 line was one 19 MB "sentence" (6.0 GB peak): every text embedded
    is now at most a passage's 700 characters, however long the line (here 512 KB)."""
    import base64
    import random

    from rag.config import Settings
    from rag.index.plan import chunk_settings, plan_document
    from rag.ingest.files import RawText
    from rag.text.document import split_document

    line = base64.b64encode(random.Random(7).randbytes(393_216)).decode() + "\n"
    split = split_document(RawText("big.txt", "text", line, "0" * 64), chunk_settings(Settings.resolve()))
    planned = plan_document(split, "model")
    assert max(len(text) for text in planned.texts()) <= 700
    assert max(s.end - s.start for s in planned.sentences) <= 500
    covered = sum(s.end - s.start for s in planned.sentences)
    assert covered >= len(line) - 1 - len(planned.sentences)  # cut, never dropped


def test_an_index_whose_documents_are_elsewhere_is_answered_from_as_it_is(built, tmp_path, monkeypatch):
    """An index built on another machine (a Milvus one, or a copied folder) names a documents folder
    this machine does not have: it is answered from, not refused and not rebuilt from seeds/."""
    import shutil

    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs, index_dir = built
    elsewhere = tmp_path / "elsewhere-index"
    shutil.copytree(index_dir, elsewhere)
    shutil.rmtree(docs)
    monkeypatch.delenv("RAG_DOCS_DIR", raising=False)
    embedder = FakeEmbedder()
    engine = Engine(Settings.resolve(index_dir=elsewhere), embedder=embedder)
    answer = engine.ask("Que feront les marques du social commerce ?")
    assert answer.citations and embedder.calls == 1  # the question alone was embedded
