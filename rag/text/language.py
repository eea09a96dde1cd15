"""Language detection: French or English, for analyzers, segmenters and the words around quotes."""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

LANGUAGES = ("fr", "en")
_lock = threading.Lock()  # py3langid's identifier is not thread-safe


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    try:
        identifier = _from_decompressed_copy()
    except Exception as exc:  # the copy is an optimization: any problem falls back to the packaged file
        log.debug("language model copy not used (%s)", exc)
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def _from_decompressed_copy() -> Any:
    """py3langid's model, read from an uncompressed copy in the cache folder.

    The packaged model is LZMA-compressed and takes 0.65 s to decompress at every
    start, a seventh of a cold `rag ask`; the copy loads in a few milliseconds.
    """
    import lzma
    import os
    from importlib.metadata import version

    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    from py3langid.modelio import _to_array

    from ..config import Settings

    packaged = MODEL_DIR / MODEL_FILE
    copy = Settings.resolve().cache_dir / f"py3langid-{version('py3langid')}-{packaged.stat().st_size}.npz"
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        temporary = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
        with lzma.open(packaged) as source, open(temporary, "wb") as target:
            while block := source.read(1 << 20):
                target.write(block)
        os.replace(temporary, copy)
    with np.load(copy, allow_pickle=False) as data:
        return LanguageIdentifier(np.asarray(data["ptc"]), np.asarray(data["pc"]), data["classes"].tolist(),
                                  _to_array(data["nextmove"]), data["out_feat"].tolist(), norm_probs=True,
                                  tk_row=_to_array(data["nextmove_row"]))


def detect_language(text: str, default: str = "fr") -> str:
    """'fr' or 'en' (py3langid restricted to the two), `default` when there is nothing to go on."""
    letters = sum(ch.isalpha() for ch in text)
    if letters < 3:
        return default
    with _lock:
        language, _ = _identifier().classify(text)
    return language if language in LANGUAGES else default


def other_language(language: str) -> str:
    """English for French, French for English (and for any language read as French)."""
    return "fr" if language == "en" else "en"
