"""A fifth French benchmark, for *development*: a FAQ scraped as pages, `# question` then one glued paragraph.

This is the shape of a scraped FAQ site: each page a Markdown file whose first line is the question
as the site asks it (`# Comment signaler un bogue dans Debian ?`), a blank line, then the answer as
one paragraph in which the page's paragraphs and list items were glued with no space between them
(`…utilisez la commande :lsb_release -a`, `…sur le CD.Pour plus d'informations…`), as text extracted
from block elements is. Neither the service-public fiches (no title text, no glued sentences) nor the
Debian FAQ set (`bench/debianfaq_devset.py`, asked in the FAQ's own words of untitled sections) has it.

- The pages are the 112 sections of the French Debian FAQ (`debian-faq-fr` 11.1), each with its own
  question heading as the page's title.
- The questions (`eval/faq-pages/questions.jsonl`, 95 of them, one per section that has an answer span
  in `eval/debian-faq/answers.jsonl`) are paraphrases, written the way a user asks ("Comment empêcher
  la mise à jour d'un paquet ?" for "Comment est-ce que je mets un paquet en « hold » ?"), before any
  answer of the system was seen. A question that repeats its page's heading word for word would
  measure nothing.
- The halves are the Debian FAQ set's own (the same fixed hash of each section): the held-out half's
  pages are sections that no choice read in either set.

Run: python bench/faqpages_devset.py [--out build/faqpages]   then
     rag eval --squad build/faqpages/faq-pages-fr.json eval/dev.jsonl          (development)
     rag eval --squad build/faqpages/faq-pages-fr-heldout.json eval/dev.jsonl  (held out)
Needs apt-get and dpkg-deb (Debian). Prints the files it wrote.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from debianfaq_devset import ANSWERS, fetch, sections, unwrap
from devsets import held_out

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "faq-pages" / "questions.jsonl"
LIST_MARK = re.compile(r"^\*\s+")


def page(heading: str, body: list[str]) -> str:
    """`# heading`, a blank line, and the body's paragraphs and items glued into one line, as a scrape of
    `<p>` and `<li>` elements writes them (the list marks go with the elements)."""
    lines = [LIST_MARK.sub("", line) for line in unwrap(body).splitlines() if line.strip()]
    return f"# {heading}\n\n{''.join(lines)}\n"


def find_answer(context: str, answer: str) -> re.Match | None:
    """The answer in the page: any white space matches any other, or none where two lines were glued."""
    return re.search(r"\s*".join(re.escape(word) for word in answer.split()), context)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build(work: Path) -> list[Path]:
    french = sections(fetch(work, "fr"))
    answers = {item["section"]: item["answer"] for item in read_jsonl(ANSWERS)}
    pages = {key: page(heading, body) for key, (heading, body) in french.items()}
    questions = []
    for item in read_jsonl(QUESTIONS):
        key = item["section"]
        found = find_answer(pages[key], answers[key])
        if found is None:
            sys.exit(f"{ANSWERS}: the answer for section {key} is not in its page: {answers[key]!r}")
        questions.append({"section": key, "question": item["question"], "start": found.start(),
                          "answer": found.group()})
    return [write_squad(pages, [q for q in questions if not held_out("debian-faq", q["section"])],
                        work / "faq-pages-fr.json"),
            write_squad(pages, [q for q in questions if held_out("debian-faq", q["section"])],
                        work / "faq-pages-fr-heldout.json")]


def write_squad(pages: dict[str, str], questions: list[dict], out: Path) -> Path:
    """Every page as a context named by its section (faq-09-03), with the questions about it."""
    articles = []
    for key, context in pages.items():
        chapter, number = key.split(".")
        qas = [{"id": f"{key}-fr", "question": q["question"],
                "answers": [{"answer_start": q["start"], "text": q["answer"]}]}
               for q in questions if q["section"] == key]
        articles.append({"title": f"faq-{int(chapter):02d}-{int(number):02d}",
                         "paragraphs": [{"context": context, "qas": qas}]})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"version": "faq-pages-fr-11.1", "data": articles}, ensure_ascii=False),
                   encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "faqpages")
    work = parser.parse_args().out
    # The Debian FAQ's package, downloaded once for both sets.
    shared = ROOT / "build" / "debianfaq"
    if (shared / "package").exists() and not (work / "package").exists():
        work.mkdir(parents=True, exist_ok=True)
        (work / "package").symlink_to(shared / "package")
    for path in build(work):
        print(path)


if __name__ == "__main__":
    main()
