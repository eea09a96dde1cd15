"""Milvus: the connection, its naming of versions and collections, and the shared limits."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from typing import Any


from ...errors import IndexStoreError


log = logging.getLogger(__name__)


PARTS = ("meta", "passages", "sentences", "clauses", "terms")
PART_CHARS = 16_000  # ≤ 64,000 UTF-8 bytes: fits a VARCHAR(65535) whatever the script
TEXT_BYTES = 65_535
MAX_DOCS_PER_TERM = 4_096  # Milvus's largest ARRAY capacity
INSERT_ROWS = 1_000
FETCH_IDS = 4_096  # ids per request
EMPTY_DIMENSION = 2**32 - 2  # Milvus refuses an empty sparse vector; no query ever holds this dimension
EMPTY_WEIGHT = 1e-30
STALE_BUILD_SECONDS = 3_600
ALIAS_CHECK_SECONDS = 1.0
CACHE_ROWS = 50_000
PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,100}$")
FLAT_MAX = 20_000


# ---------------------------------------------------------------- connection

def check_prefix(prefix: str) -> str:
    if not PREFIX.match(prefix):
        raise IndexStoreError(f"RAG_MILVUS_COLLECTION={prefix!r} is not a usable Milvus name: use letters, "
                              "digits and underscores, starting with a letter (at most 100 characters)")
    return prefix


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def describe_failure(uri: str, exc: BaseException, doing: str) -> str:
    """One sentence for a person: what failed, where, and what to do."""
    message = str(getattr(exc, "message", "") or exc).strip().splitlines()[0][:300] if str(exc) else type(exc).__name__
    lower = message.lower()
    if any(word in lower for word in ("auth", "token", "credential", "permission", "password", "unauthenticated")):
        advice = "check RAG_MILVUS_TOKEN (user:password or an API key)"
    elif any(word in lower for word in ("fail connecting", "unavailable", "deadline", "connect", "not exists", "refused")):
        advice = ("start the Milvus server or correct RAG_MILVUS_URI" if is_server(uri)
                  else "correct RAG_MILVUS_URI: its folder must exist and be writable")
    else:
        advice = "check the Milvus server's logs, or rebuild with: rag build --store milvus"
    return f"Milvus at {uri} failed while {doing} ({message}); {advice}."


class Connection:
    """A pymilvus client for one URI, with every failure turned into an IndexStoreError."""

    def __init__(self, uri: str, token: str = "", prefix: str = "rag", shards: int = 1, replicas: int = 1) -> None:
        self.uri = uri
        self.prefix = check_prefix(prefix)
        # Cluster-side layout: shards spread a collection's writes over data nodes, replicas serve
        # its reads from several query nodes (and survive one). Milvus Lite accepts and ignores both.
        self.shards, self.replicas = shards, replicas
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise IndexStoreError("RAG_STORE=milvus needs pymilvus and milvus-lite: "
                                  "pip install -e '.[milvus]'") from None
        if not is_server(uri):
            folder = os.path.dirname(os.path.abspath(uri))
            if not os.path.isdir(folder):
                raise IndexStoreError(f"RAG_MILVUS_URI={uri}: the folder {folder} does not exist; create it "
                                      "or give a server address (http://host:19530)")
        try:
            self.client = MilvusClient(uri=uri, token=token or "", timeout=30)
        except Exception as exc:
            raise IndexStoreError(describe_failure(uri, exc, "connecting")) from exc

    def call(self, doing: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except Exception as exc:
            raise IndexStoreError(describe_failure(self.uri, exc, doing)) from exc

    # ---- versions and the alias

    def served_version(self) -> str | None:
        """The version the alias names, or None when there is no alias yet."""
        doing = f"looking up the alias {self.prefix}"
        listed = self.call(doing, "list_aliases")
        if self.prefix not in (listed.get("aliases", []) if isinstance(listed, dict) else listed):
            return None  # asked first: describing a missing alias makes pymilvus log an error
        described = self.call(doing, "describe_alias", alias=self.prefix)
        name = described.get("collection_name", "") if isinstance(described, dict) else ""
        match = re.match(rf"^{re.escape(self.prefix)}_(v[0-9a-f]+)_meta$", name)
        return match.group(1) if match else None

    def versions(self) -> dict[str, set[str]]:
        """Every version of this prefix in the database, with the parts it has."""
        pattern = re.compile(rf"^{re.escape(self.prefix)}_(v[0-9a-f]+)_({'|'.join(PARTS)})$")
        found: dict[str, set[str]] = {}
        for name in self.call("listing collections", "list_collections"):
            match = pattern.match(name)
            if match:
                found.setdefault(match.group(1), set()).add(match.group(2))
        return found

    def name(self, version: str, part: str) -> str:
        return f"{self.prefix}_{version}_{part}"


def new_version() -> str:
    # Hex digits only: the time (nanoseconds, fixed width) orders versions, even several built
    # within one second; the random tail keeps two builders apart.
    return "v" + format(time.time_ns(), "016x") + os.urandom(3).hex()


def version_time(version: str) -> float:
    """When a version was started, in seconds since the epoch."""
    try:
        return int(version[1:-6], 16) / 1e9
    except ValueError:
        return 0.0



def term_key(term: str) -> str:
    """The primary key of a term: itself, or a digest when too long for the key field."""
    return term if len(term.encode("utf-8")) <= 200 else "~" + hashlib.sha1(term.encode("utf-8")).hexdigest()


_connections: dict[tuple[str, str, str], Connection] = {}
_connections_lock = threading.Lock()


def connect(settings: Any) -> Connection:
    """The connection the settings name (RAG_MILVUS_URI, RAG_MILVUS_TOKEN, RAG_MILVUS_COLLECTION),
    one per process: an embedded database starts its engine once (about a second)."""
    key = (settings.milvus_target, settings.milvus_token, settings.milvus_collection, settings.milvus_shards,
           settings.milvus_replicas)
    with _connections_lock:
        if key not in _connections:
            _connections[key] = Connection(*key)
        return _connections[key]

