"""Language detection: French or English, for analyzers, segmenters and the words around quotes."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

LANGUAGES = ("fr", "en")
_lock = threading.Lock()  # py3langid's identifier is not thread-safe


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def detect_language(text: str, default: str = "fr") -> str:
    """'fr' or 'en' (py3langid restricted to the two), `default` when there is nothing to go on."""
    letters = sum(ch.isalpha() for ch in text)
    if letters < 3:
        return default
    with _lock:
        language, _ = _identifier().classify(text)
    return language if language in LANGUAGES else default
