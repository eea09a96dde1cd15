"""What English and French call the same day, month, country, language or city (pure, apart from
reading the packaged table once).

A question in one language names things as its language does ("Saturday", "Greece", "French"); a page
in the other says "samedi", "Grèce", "français" ("Moscow": "Moscou"). The table (`data/counterparts.tsv`) is the Unicode
CLDR's, written by `scripts/counterparts.py`: no name in it is chosen here.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from .analyzer import analyze
from .language import other_language


@lru_cache(maxsize=1)
def _table() -> dict[tuple[str, str], tuple[str, ...]]:
    """(language, a name's terms in it) → that name in the other language."""
    rows = resources.files("rag.data").joinpath("counterparts.tsv").read_text(encoding="utf-8").splitlines()
    table: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if not row.strip() or row.startswith("#"):
            continue
        _, english, french = row.split("\t")
        for language, name, other in (("en", english, french), ("fr", french, english)):
            table.setdefault((language, " ".join(analyze(name, language))), []).append(other)
    return {key: tuple(dict.fromkeys(names)) for key, names in table.items()}


def counterparts(name: str) -> tuple[tuple[str, str], ...]:
    """(the name in the other language, that language) for a day, month, country, language or city named
    in English or French, however inflected ("Saturdays" → ("samedi", "fr")); empty for any other word."""
    found: list[tuple[str, str]] = []
    for language in ("en", "fr"):
        terms = " ".join(analyze(name, language))
        found += [(other, other_language(language)) for other in _table().get((language, terms), ()) if terms]
    return tuple(dict.fromkeys(found))
