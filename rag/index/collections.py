"""Named collections: each a documents folder with its own index (and its own Milvus collections).

The default collection is the one the settings name (`seeds/` and `index/` unless told otherwise);
the others live under `RAG_COLLECTIONS_DIR` as `NAME/documents` and `NAME/index`
(`Settings.in_collection`). Listing and creating them is all this module does: every other
operation is the engine's, on the collection's settings.
"""

from __future__ import annotations

from pathlib import Path

from ..config import COLLECTION_NAME, DEFAULT_COLLECTION, Settings, check_collection_name
from ..errors import ConfigError


def collection_names(settings: Settings) -> list[str]:
    """The named collections, sorted: the folders of `collections_dir` with a valid name and a
    documents folder or an index."""
    root = settings.collections_dir
    if not root.is_dir():
        return []
    return sorted(folder.name for folder in root.iterdir()
                  if folder.is_dir() and COLLECTION_NAME.fullmatch(folder.name) and folder.name != DEFAULT_COLLECTION
                  and ((folder / "documents").is_dir() or (folder / "index").is_dir()))


def create_collection(settings: Settings, name: str) -> Path:
    """Make the empty documents folder of a new collection; its index is built with its first
    documents. Raises ConfigError for a bad name or one already taken."""
    check_collection_name(name)
    folder = settings.in_collection(name).docs_dir
    if name in collection_names(settings):
        raise ConfigError(f"a collection named {name} exists already ({settings.collections_dir / name})")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
