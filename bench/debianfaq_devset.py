"""A third French benchmark, for *development*: the Debian FAQ as SQuAD, with questions nobody here wrote.

service-public (`../shared/eval/service-public/`) is untitled French prose with one question per
context; no choice may be made on it. The manual pages (`bench/manpages_devset.py`) are lists and
terms, not prose, and their questions were written here. This set is closer to service-public and
its questions come from elsewhere:

- every section of the French Debian FAQ (`debian-faq-fr`, version 11.1, 112 sections, 160k
  characters of contexts) is one context, its body unwrapped into paragraphs, *without* its question
  heading (a context does not hold the question that is asked of it);
- each section's question is asked twice: in French as the French FAQ words it, and in English
  as the English FAQ (`debian-faq`, same version and numbering) words it. Neither was written
  for this project, so neither fits the system;
- the answer span of 95 sections (`eval/debian-faq/answers.jsonl`) was chosen here, reading the
  French text only, before any answer of the system to them was seen. Lists with no single
  answering sentence were left without a question.

Sections are split by a fixed hash: half go to debian-faq-fr.json (development: choices may
read it), half to debian-faq-fr-heldout.json, which no choice may read.

Run: python bench/debianfaq_devset.py [--out build/debianfaq]   then
     rag eval --squad build/debianfaq/debian-faq-fr.json eval/dev.jsonl      (development)
     rag eval --squad build/debianfaq/debian-faq-fr-heldout.json eval/dev.jsonl (held out)
Needs apt-get and dpkg-deb (Debian). Prints the files it wrote.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

from devsets import debian_file, held_out

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "eval" / "debian-faq" / "answers.jsonl"
PACKAGES = {"fr": "debian-faq-fr", "en": "debian-faq"}
SECTION = re.compile(r"^(\d+)\.(\d+)\.\s+(.*)")
CHAPTER = re.compile(r"^(Chapitre|Chapter)\s+\d+\.")
WRAPPED = 55  # the text version is wrapped near 70 columns: a shorter line ends its paragraph


def fetch(work: Path, language: str) -> Path:
    """The FAQ's plain-text version in `language`, from its Debian package (downloaded once)."""
    return debian_file(work, PACKAGES[language], f"usr/share/doc/debian/FAQ/debian-faq.{language}.txt.gz")


def sections(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{"9.3": (question heading, body lines)} for every numbered section of the FAQ."""
    with gzip.open(path, "rt", encoding="utf-8") as compressed:
        lines = compressed.read().splitlines()
    start = next(i for i, line in enumerate(lines) if CHAPTER.match(line) and re.search(r"\s1\.", line))
    found: dict[str, tuple[list[str], list[str]]] = {}
    current, in_heading = None, False
    for line in lines[start:]:
        if match := SECTION.match(line):
            current, in_heading = f"{match[1]}.{match[2]}", True
            found[current] = ([match[3]], [])
        elif CHAPTER.match(line):
            current = None
        elif current is None:
            continue
        elif in_heading:
            if line.strip():
                found[current][0].append(line.strip())
            else:
                in_heading = False
        else:
            found[current][1].append(line)
    return {key: (" ".join(head), body) for key, (head, body) in found.items()}


def unwrap(body: list[str]) -> str:
    """Paragraphs on one line each; list items, commands and short lines keep their own line."""
    out: list[str] = []
    previous = None  # (indent, length, is a list item) of the line the current paragraph ends with
    for line in body:
        if not line.strip():
            previous = None
            continue
        indent, text = len(line) - len(line.lstrip()), line.strip()
        continues = (previous is not None and not text.startswith("*") and previous[1] >= WRAPPED
                     and (indent == previous[0] or (previous[2] and indent == previous[0] + 2)))
        if continues:
            out[-1] += " " + text
        else:
            out.append(text)
        previous = (indent, len(line), text.startswith("*"))
    return "\n".join(out) + "\n"


def find_answer(context: str, answer: str) -> re.Match | None:
    """The answer in the context, any whitespace matching any other: the FAQ writes French
    typography with no-break spaces ("« stable »"), and a paragraph may break inside a sentence."""
    return re.search(r"\s+".join(re.escape(word) for word in answer.split()), context)


def build(work: Path) -> list[Path]:
    french, english = sections(fetch(work, "fr")), sections(fetch(work, "en"))
    if set(french) != set(english):
        sys.exit(f"the French and English FAQs number their sections differently: {sorted(set(french) ^ set(english))}")
    answers = [json.loads(line) for line in ANSWERS.read_text(encoding="utf-8").splitlines() if line.strip()]
    contexts = {key: unwrap(body) for key, (_, body) in french.items()}
    questions = []
    for item in answers:
        context = contexts[item["section"]]
        found = find_answer(context, item["answer"])
        if found is None:
            sys.exit(f"{ANSWERS}: the answer for section {item['section']} is not in its text: {item['answer']!r}")
        for language, faq in (("fr", french), ("en", english)):
            questions.append({"section": item["section"], "lang": language, "question": faq[item["section"]][0],
                              "start": found.start(), "answer": found.group()})
    return [write_squad(contexts, [q for q in questions if not held_out("debian-faq", q["section"])], work / "debian-faq-fr.json"),
            write_squad(contexts, [q for q in questions if held_out("debian-faq", q["section"])], work / "debian-faq-fr-heldout.json")]


def write_squad(contexts: dict[str, str], questions: list[dict], out: Path) -> Path:
    """Every section as a context named by its number only (faq-09-03), with the questions about it."""
    articles = []
    for key, context in contexts.items():
        chapter, number = key.split(".")
        qas = [{"id": f"{key}-{q['lang']}", "question": q["question"],
                "answers": [{"answer_start": q["start"], "text": q["answer"]}]}
               for q in questions if q["section"] == key]
        articles.append({"title": f"faq-{int(chapter):02d}-{int(number):02d}", "paragraphs": [{"context": context, "qas": qas}]})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"version": "debian-faq-fr-11.1", "data": articles}, ensure_ascii=False), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "debianfaq")
    for path in build(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
