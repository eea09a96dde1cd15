"""Write rag/data/counterparts.tsv: what English and French call the same day, month, country, language or city.

An English question about a French page says "Saturday" where the page says "samedi", "Greece" where
it says "Grèce", "Moscow" where it says "Moscou": capitalized, the question's word looks like a name the documents never mention
(`query.understand.find_names`), and the question was refused. These names are not a list written
here but the Unicode CLDR's, read through Babel (BSD; CLDR data under the Unicode License v3), kept
as a small table so that nothing at run time imports Babel. Only pairs whose names differ once
lower-cased and accents folded are written (the others are found as they are).

Run (a maintainer's step; the table is committed): pip install babel==2.19.0 && python scripts/counterparts.py
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent.parent / "rag" / "data" / "counterparts.tsv"


def folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def pairs() -> list[tuple[str, str, str]]:
    """(kind, English, French) for every day, month, country or region, language with a two-letter code,
    and city that names a time zone."""
    from babel import Locale

    en, fr = Locale("en"), Locale("fr")
    found = []
    for kind, english, french in (
            ("day", en.days["format"]["wide"], fr.days["format"]["wide"]),
            ("month", en.months["format"]["wide"], fr.months["format"]["wide"]),
            ("territory", en.territories, fr.territories),
            ("language", {k: v for k, v in en.languages.items() if len(k) == 2},
             {k: v for k, v in fr.languages.items() if len(k) == 2}),
            ("city", *cities(en, fr))):
        for key in sorted(english, key=str):
            if key in french and folded(english[key]) != folded(french[key]):
                found.append((kind, english[key], french[key]))
    return found


def cities(en: Any, fr: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The cities that name a time zone ("Europe/Moscow": Moscow, Moscou), by zone, in each language.
    CLDR writes a city only where it differs from the zone's own name, which is the English one;
    qualified names ("Vincennes, Indiana", "Tripoli (Libye)") and "Unknown Location" are left out."""
    def plain(name: str) -> bool:
        return not any(mark in name for mark in ",([") and name != "Unknown Location"

    french = {zone: names["city"] for zone, names in fr.time_zones.items() if "city" in names}
    english = {zone: en.time_zones.get(zone, {}).get("city") or zone.rsplit("/", 1)[-1].replace("_", " ")
               for zone in french}
    kept = [zone for zone in french if plain(english[zone]) and plain(french[zone]) and zone != "Etc/Unknown"]
    return {zone: english[zone] for zone in kept}, {zone: french[zone] for zone in kept}


def main() -> int:
    from babel import __version__
    from babel.core import get_cldr_version

    rows = pairs()
    header = (f"# English and French names of the same day, month, territory, language or city: Unicode CLDR "
              f"{get_cldr_version()} through Babel {__version__}\n# (Unicode License v3: rag/data/LICENSE-unicode.txt), written by "
              f"scripts/counterparts.py. kind<TAB>English<TAB>French\n")
    TARGET.write_text(header + "".join(f"{k}\t{e}\t{f}\n" for k, e, f in rows), encoding="utf-8")
    print(f"{len(rows)} pairs written to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
