"""Text → index terms, for French and English: what BM25 matches and what a question's words are
compared by (pure, apart from reading the packaged stop-word lists once).

An `Analyzer` is one language's reading: elisions dropped (l’, d’, qu’…), lower case, accents
folded, stop words of both languages removed (a French page quotes English words, and an English
question borrows French ones), Snowball-stemmed in its language. `analyze(text, language)` is the
shared instance's `terms`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

ELISION = re.compile(r"\b(?:[ldjmntsc]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)
TOKEN = re.compile(r"\w+", re.UNICODE)
STEMMER_NAMES = {"fr": "french", "en": "english"}


def fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=2)
def stop_words_of(language: str) -> frozenset[str]:
    """The stop words of one language ("fr" or "en"), accents folded: "du" is one in French, not in English."""
    name = "en" if language == "en" else "fr"
    data = resources.files("rag.data").joinpath(f"stopwords_{name}.txt").read_text(encoding="utf-8")
    return frozenset(fold_accents(word) for word in data.split())


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """The stop words of both languages, accents folded."""
    return stop_words_of("fr") | stop_words_of("en")


def word_tokens(text: str, elision: re.Pattern[str] = ELISION) -> list[str]:
    """The words of `text` as an analyzer reads them: elisions dropped (l’, d’, qu’), lower case,
    accents kept (a question's words are shown as written)."""
    return TOKEN.findall(elision.sub(" ", text.lower()))


@lru_cache(maxsize=4)
def _stemmer(name: str) -> Any:
    import Stemmer

    return Stemmer.Stemmer(name)


@dataclass(frozen=True)
class Analyzer:
    """One language's reading of a text into index terms."""

    language: str = "fr"
    stop_words: frozenset[str] = field(default_factory=stop_words)
    elision: re.Pattern[str] = ELISION
    stem: bool = True

    def terms(self, text: str) -> list[str]:
        """`word_tokens`, accents folded, stop words and lone letters removed, stemmed."""
        tokens = [fold_accents(token) for token in word_tokens(text, self.elision)]
        kept = [t for t in tokens if t not in self.stop_words and (len(t) > 1 or t.isdigit())]
        if not kept or not self.stem:
            return kept
        return _stemmer(STEMMER_NAMES.get(self.language, "french")).stemWords(kept)


@lru_cache(maxsize=4)
def analyzer(language: str) -> Analyzer:
    """The shared analyzer of a language (an unknown one reads as French, the collections' default)."""
    return Analyzer(language)


def analyze(text: str, language: str = "fr") -> list[str]:
    """Text → index terms in `language` (the shared analyzer's `terms`)."""
    return analyzer(language).terms(text)
