"""Wikipedia paragraphs the model was never trained on, asked as written and in the other language.

`rag train` learns from the training half of `train/` (PIAF's French and XQuAD's English articles,
split by article: `rag/learn/examples.py`); its held-out half is text the model has never read. Here
that half becomes two corpora of the regression table (`bench/regression.py`):

- `wiki`: every paragraph of the held-out articles is one context (untitled, like service-public), and
  each paragraph's first question is asked as its writer wrote it (French over French, English over
  English), with its gold answer span;
- `wiki-across`: the same contexts and answer spans, the same questions put in the other language by
  Apertium (`train/questions-translated.json`): English questions over French text, and French over
  English, hundreds of them where eval/ has a few dozen. Machine translations are rougher than a
  person's question ("That it was the employer of Leavitt…"), so this set says more about names and
  words across languages than about fluent English;
- `wiki-later`, `wiki-later-across`: the same contexts, each paragraph's later questions (1,619 of them,
  PIAF's and XQuAD's writers ask several of each paragraph), as written and translated. Asked only when
  named (`bench/regression.py --sets wiki-later wiki-later-across`): four times the questions of `wiki`,
  kept for checking a choice on questions no earlier choice was made with.

Articles are split by a fixed hash into a development half (`wiki-*.json`: choices may read it) and
a held-out half (`wiki-*-heldout.json`), which no choice may read. Every file holds every context, so
one index serves both halves.

Run: python bench/wiki_devset.py [--out build/wiki]   (prints the files it wrote)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devsets import held_out

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCES = (("piaf", ROOT / "train" / "piaf-v1.0.json"), ("xquad", ROOT / "train" / "xquad.en.json"))


def heldout_articles() -> list[tuple[str, dict]]:
    """(corpus, article) for every article of train/'s held-out half: the text no training run read."""
    from rag.learn.examples import half_of

    return [(corpus, article) for corpus, path in SOURCES
            for article in json.loads(path.read_text(encoding="utf-8"))["data"]
            if half_of(corpus, str(article.get("title", ""))) == "heldout"]


def asked(corpus: str, paragraph: dict, translations: dict[str, str] | None, later: bool) -> list[dict]:
    """The paragraph's first answered question, or with `later` every answered question after it
    (translated, when `translations` is given and has it)."""
    answered = [qa for qa in paragraph.get("qas", []) if qa.get("answers")]
    picked = []
    for qa in answered[1:] if later else answered[:1]:
        question = qa["question"] if translations is None else translations.get(f"{corpus} {qa['id']}")
        if question is None:
            continue
        answer = qa["answers"][0]
        picked.append({"id": f"{corpus}-{qa['id']}", "question": " ".join(question.split()),
                       "answers": [{"text": answer["text"], "answer_start": answer["answer_start"]}]})
    return picked


def squad(articles: list[tuple[str, dict]], translations: dict[str, str] | None, heldout: bool,
          later: bool = False) -> dict:
    """Every context of `articles`; questions only in the articles of the half asked for."""
    data = []
    for corpus, article in articles:
        title = f"{corpus} {article['title']}"
        ours = held_out("wiki", title) == heldout
        paragraphs = []
        for paragraph in article["paragraphs"]:
            questions = asked(corpus, paragraph, translations, later) if ours else []
            paragraphs.append({"context": paragraph["context"], "qas": questions})
        data.append({"title": title, "paragraphs": paragraphs})
    return {"version": "wiki-devset", "data": data}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "wiki")
    args = parser.parse_args()
    articles = heldout_articles()
    translations = json.loads((ROOT / "train" / "questions-translated.json").read_text(encoding="utf-8"))["questions"]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, translated, later in (("wiki", None, False), ("wiki-across", translations, False),
                                    ("wiki-later", None, True), ("wiki-later-across", translations, True)):
        for heldout, suffix in ((False, ""), (True, "-heldout")):
            target = args.out / f"{name}{suffix}.json"
            target.write_text(json.dumps(squad(articles, translated, heldout, later), ensure_ascii=False),
                              encoding="utf-8")
            print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
