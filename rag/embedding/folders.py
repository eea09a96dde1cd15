"""A model folder written whole or not at all (the materialized model, a merged adapter, a trained one)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import ModelError


def replace_folder(target: Path, write: Callable[[Path], None], prefix: str) -> Path:
    """`write(staging)` fills a fresh folder beside `target`, which is then swapped into place, so a crash
    never leaves a half-written folder that looks complete. Raises ModelError when the parent cannot be
    written; whatever `write` raises goes through, the staging folder removed."""
    parent = Path(target).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as exc:
        raise ModelError(f"Cannot write the model cache {parent}: {exc}. Set RAG_CACHE_DIR to a writable folder.") from exc
    try:
        write(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
