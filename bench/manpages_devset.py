"""A second French benchmark, for *development*: Debian's French manual pages as SQuAD.

service-public (`../shared/eval/service-public/`) measures the system on documents nobody
tuned for, so no choice may be made on it. Choices about documents unlike the seeds (short
lines, headings, lists, shared boilerplate across pages) are made here instead: 46 French
manual pages from the `manpages-fr` Debian package (about 540k characters) and 75 questions
(57 French, 18 English) written from the pages' text, with the exact answer span, in
`eval/manpages-fr/questions.jsonl`. The last 30 were written after the choices the first 45
informed, in the words a user would use rather than the page's. The pages are not copied into the repository (their
licences vary); this script fetches the package from the Debian archive and renders it.

31 more questions (19 French, 12 English), marked "heldout", about 15 pages no other question
is about, were written in a third session after its choices and before any answer to them was
seen: they go to a separate file, manpages-fr-heldout.json, which no choice may read.

Run: python bench/manpages_devset.py [--out build/manpages]   then
     rag eval --squad build/manpages/manpages-fr.json            (development)
     rag eval --squad build/manpages/manpages-fr-heldout.json    (held out)
Needs apt-get, dpkg-deb and man (Debian). Prints the file it wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from devsets import debian_file

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "manpages-fr" / "questions.jsonl"
PAGES = [  # man8/fsck is rendered from usr/share/man/fr/man8/fsck.8.gz
    "man1/cp", "man1/mv", "man1/rm", "man1/mkdir", "man1/ls", "man1/chmod", "man1/chown", "man1/du", "man1/df",
    "man1/date", "man1/sleep", "man1/timeout", "man1/nice", "man1/nohup", "man1/tail", "man1/head", "man1/sort",
    "man1/uniq", "man1/wc", "man1/cut", "man1/tr", "man1/tar", "man1/gzip", "man1/crontab", "man1/at", "man1/grep",
    "man1/find", "man1/xargs", "man1/shred", "man1/tee", "man1/seq", "man1/su", "man1/ln", "man1/split",
    "man7/hier", "man5/shells", "man5/issue", "man5/group", "man8/cron", "man8/shutdown", "man8/ping", "man8/fsck",
    "man8/mount", "man7/environ", "man7/hostname", "man7/boot",
]


def fetch_package(work: Path) -> Path:
    """The unpacked manpages-fr package (downloaded once)."""
    debian_file(work, "manpages-fr", "usr/share/man/fr")
    return work / "package"


def render(page: Path) -> str:
    """The page as plain text, one paragraph per line (a very wide terminal), no header or footer."""
    env = dict(os.environ, MANWIDTH="5000", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8")
    shown = subprocess.run(["man", "-l", str(page)], env=env, check=True, capture_output=True).stdout
    plain = subprocess.run(["col", "-bx"], input=shown, check=True, capture_output=True).stdout.decode("utf-8")
    lines = [line.strip() for line in plain.splitlines()[1:-1]]
    text, blank = [], True
    for line in lines:
        if line or not blank:
            text.append(line)
        blank = not line
    return "\n".join(text).strip() + "\n"


def build(work: Path) -> list[Path]:
    package = fetch_package(work)
    questions = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    development = [q for q in questions if not q.get("heldout")]
    held_out = [q for q in questions if q.get("heldout")]
    contexts = {name: render(package / "usr/share/man/fr" / f"{name}.{name[3]}.gz") for name in PAGES}
    asked = {q["doc"] for q in questions}
    missing = asked - {Path(n).name for n in PAGES}
    if missing:
        sys.exit(f"{QUESTIONS}: questions about pages not in the corpus: {sorted(missing)}")
    return [write_squad(contexts, development, work / "manpages-fr.json"),
            write_squad(contexts, held_out, work / "manpages-fr-heldout.json")]


def write_squad(contexts: dict[str, str], questions: list[dict], out: Path) -> Path:
    """Every page as a context (man8/fsck → fsck), with the questions about it."""
    articles = []
    for name in PAGES:
        context = contexts[name]
        qas = []
        for number, item in enumerate(q for q in questions if q["doc"] == Path(name).name):
            start = context.find(item["answer"])
            if start < 0:
                sys.exit(f"{QUESTIONS}: the answer of {item['question']!r} is not in {name}: {item['answer']!r}")
            qas.append({"id": f"{Path(name).name}-{number}", "question": item["question"],
                        "answers": [{"answer_start": start, "text": item["answer"]}]})
        articles.append({"title": Path(name).name, "paragraphs": [{"context": context, "qas": qas}]})
    out.write_text(json.dumps({"version": "manpages-fr-dev", "data": articles}, ensure_ascii=False), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "manpages")
    for path in build(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
