"""A fourth French benchmark, for *development*: the Debian Edu manual as SQuAD, asked like service-public.

service-public (`../shared/eval/service-public/`) is untitled French prose whose questions were
written by people reading one paragraph each (PIAF), with a short answer span; no choice may be made
on it. The Debian FAQ's questions (`bench/debianfaq_devset.py`) were written before their answers,
and the manual pages are lists and terms. This set asks questions the way PIAF does, of procedural
French prose that nobody here tuned for:

- every numbered section of the French Debian Edu 12 manual (`debian-edu-doc-fr`, version
  2.12.23~deb12u1, HTML) with more than 300 characters of text is one context, *without* its
  heading: its paragraphs, list items and table cells, one per line (121 contexts, 143k characters;
  some paragraphs are untranslated English, as in the package);
- 62 French questions (`eval/debian-edu/questions.jsonl`) were written here by reading one
  section each, with the short answer span chosen at the same time, before any answer of the
  system to them was seen. They paraphrase where a reader would ("Dans quel pays le projet est-il
  né ?" for "lancé en Norvège").

Sections are split by a fixed hash: half go to debian-edu-fr.json (development: choices may read
it), half to debian-edu-fr-heldout.json, which no choice may read. The same questions written in
English (`questions-en.jsonl`, same answer spans) go to debian-edu-en-fr.json and
debian-edu-en-fr-heldout.json, split alike: English questions of a French corpus.

Run: python bench/edu_devset.py [--out build/eduset]   then
     rag eval --squad build/eduset/debian-edu-fr.json eval/dev.jsonl      (development)
     rag eval --squad build/eduset/debian-edu-fr-heldout.json eval/dev.jsonl (held out)
Needs apt-get and dpkg-deb (Debian). Prints the files it wrote.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from devsets import debian_file, held_out

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "debian-edu" / "questions.jsonl"
# The same questions in English, with the same French answer spans: an English question of a French
# corpus, the case where no word is shared and only the model bridges the languages.
QUESTIONS_EN = ROOT / "eval" / "debian-edu" / "questions-en.jsonl"
PACKAGE = "debian-edu-doc-fr"
MANUAL = "usr/share/doc/debian-edu-doc-fr/debian-edu-bookworm-manual.html"
SECTION = re.compile(r"^(\d+(?:\.\d+)*)\.\s+(.*)")
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
MIN_CONTEXT = 300  # a section shorter than this is a heading over its subsections, not a context


def fetch(work: Path) -> Path:
    """The manual's single-page HTML, from its Debian package (downloaded once)."""
    return debian_file(work, PACKAGE, MANUAL)


def _is_block(node) -> bool:
    """A paragraph, a preformatted line, a table cell, a term, or a list item that holds no paragraph."""
    return node.tag in ("p", "pre", "dt", "td") or (node.tag == "li" and node.css_first("p") is None)


def _inside_a_block(node) -> bool:
    parent = node.parent
    while parent is not None and parent.tag != "body":
        if _is_block(parent):
            return True
        parent = parent.parent
    return False


def sections(manual: Path) -> dict[str, str]:
    """{"7.3.1": its text} for every numbered section: its own blocks, one per line, in order."""
    from selectolax.lexbor import LexborHTMLParser

    page = LexborHTMLParser(manual.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    current = None
    for node in page.body.traverse():
        if node.tag in HEADINGS:
            match = SECTION.match(" ".join(node.text().split()))
            current = match[1] if match else None
            if current:
                found[current] = []
        elif current is not None and _is_block(node) and not _inside_a_block(node):
            text = node.text().strip() if node.tag == "pre" else " ".join(node.text().split())
            if text:
                found[current].append(text)
    return {key: "\n".join(blocks) + "\n" for key, blocks in found.items() if sum(map(len, blocks)) > MIN_CONTEXT}


def build(work: Path) -> list[Path]:
    contexts = sections(fetch(work))
    written = []
    for language, path in (("fr", QUESTIONS), ("en", QUESTIONS_EN)):
        questions = located(contexts, path)
        stem = "debian-edu" if language == "fr" else "debian-edu-en"
        written += [write_squad(contexts, [q for q in questions if not held_out("debian-edu", q["section"])],
                                work / f"{stem}-fr.json"),
                    write_squad(contexts, [q for q in questions if held_out("debian-edu", q["section"])],
                                work / f"{stem}-fr-heldout.json")]
    return written


def located(contexts: dict[str, str], path: Path) -> list[dict]:
    """The questions of a JSONL file, each with its answer's offset in its section's context."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        context = contexts.get(item["section"])
        if context is None:
            sys.exit(f"{path}:{number}: section {item['section']} is not a context of the manual")
        start = context.find(item["answer"])
        if start < 0:
            sys.exit(f"{path}:{number}: the answer is not in section {item['section']}: {item['answer']!r}")
        questions.append({**item, "start": start, "id": f"{item['section']}-{number}"})
    return questions


def write_squad(contexts: dict[str, str], questions: list[dict], out: Path) -> Path:
    """Every section as a context named by its number only (edu-7-3-1), with the questions about it."""
    articles = []
    for key, context in contexts.items():
        qas = [{"id": q["id"], "question": q["question"], "answers": [{"answer_start": q["start"], "text": q["answer"]}]}
               for q in questions if q["section"] == key]
        articles.append({"title": "edu-" + key.replace(".", "-"), "paragraphs": [{"context": context, "qas": qas}]})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"version": "debian-edu-doc-fr-2.12.23", "data": articles}, ensure_ascii=False),
                   encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "eduset")
    for path in build(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
