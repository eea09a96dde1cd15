"""Every question of train/'s SQuAD files put into the other language by Apertium, for cross-lingual pairs.

    apt-get install apertium apertium-fr-es apertium-eng-spa   # Debian's packages
    python train/translate.py                                   # writes train/questions-translated.json

Why: every training pair of the first adapter asked in the language of its answer, so the model learned
nothing about an English question over a French page, the case the chat loses most (BENCHMARKS.md,
"language gap"). No French–English pair of Apertium is packaged in Debian; both directions go through
Spanish, its best-developed pairs: French → Spanish → English for PIAF, English → Spanish → French for
XQuAD. The translations are rough ("What filial of WPP has published these forecasts for 2019 ?"), as a
reader's quick English question may be; the answer sentence is the original one, untouched.

Output: {"tool": …, "questions": {"<corpus> <question id>": "<translation>"}}; one question per line
through each pipe, so the n-th line out is the n-th question in. Deterministic for a given Apertium.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = (("piaf-v1.0.json", "piaf", ("fr-es", "spa-eng")), ("xquad.en.json", "xquad", ("eng-spa", "es-fr")))
OUT = HERE / "questions-translated.json"


def questions_of(path: Path) -> list[tuple[str, str]]:
    """(question id, question on one line) for every question of a SQuAD file, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [(qa["id"], " ".join(qa["question"].split()))
            for article in data for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def translate(lines: list[str], modes: tuple[str, ...]) -> list[str]:
    text = "\n".join(lines) + "\n"
    for mode in modes:
        text = subprocess.run(["apertium", "-u", mode], input=text, capture_output=True, text=True, check=True).stdout
    out = text.rstrip("\n").split("\n")
    if len(out) != len(lines):
        raise SystemExit(f"apertium {' | '.join(modes)} gave {len(out)} lines for {len(lines)} questions")
    return [" ".join(line.split()) for line in out]


def main() -> int:
    if shutil.which("apertium") is None:
        raise SystemExit("apertium is not installed: apt-get install apertium apertium-fr-es apertium-eng-spa")
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", "apertium", "apertium-fr-es",
                              "apertium-eng-spa"], capture_output=True, text=True).stdout.strip().splitlines()
    translated: dict[str, str] = {}
    for name, corpus, modes in SOURCES:
        pairs = questions_of(HERE / name)
        for (qid, _), english in zip(pairs, translate([q for _, q in pairs], modes)):
            translated[f"{corpus} {qid}"] = english
        print(f"{name}: {len(pairs)} questions through {' → '.join(modes)}", file=sys.stderr)
    OUT.write_text(json.dumps({"tool": version, "questions": translated}, ensure_ascii=False, indent=0) + "\n",
                   encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
