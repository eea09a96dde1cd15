"""Training examples from SQuAD-format QA data: a question, the sentence that answers it, and the
sentences that do not (pure, apart from reading the file).

A paragraph is split into sentences by the project's own splitter (`text.sentences`), so the model
learns to rank exactly the rows an index holds. The positive is the sentence holding the answer's
first character; the paragraph's other sentences are the hardest negatives there are (same topic,
same words, not the answer).

Articles, not questions, are split into halves (a fixed hash of the corpus and the article's title):
a question's paragraph and its neighbours never sit on both sides, so the held-out half measures
text the model has never read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import RagError
from ..records import Span
from ..text.language import other_language
from ..text.sentences import split_sentences

HALVES = ("train", "heldout")


@dataclass(frozen=True)
class Paragraph:
    """One context, cut into the sentences an index would hold."""

    corpus: str
    article: str
    language: str
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Example:
    """A question and the sentence of its paragraph that answers it."""

    question: str
    paragraph: int  # position in the list of paragraphs it was read with
    positive: int  # position of the answering sentence in that paragraph
    answer: str  # the gold answer's text, to keep mined negatives that contain it out
    key: str = ""  # "<corpus> <question id>": what a translation of the question is filed under
    language: str = ""  # the question's language, when it is not its paragraph's (a translated question)


@dataclass(frozen=True)
class QASet:
    """Paragraphs and their questions, from one or more SQuAD files."""

    paragraphs: tuple[Paragraph, ...]
    examples: tuple[Example, ...]

    def half(self, name: str) -> "QASet":
        """The paragraphs of the articles of one half (`train` or `heldout`), renumbered, with their questions."""
        if name not in HALVES:
            raise ValueError(f"half must be one of {HALVES}, got {name!r}")
        return self.where(lambda p: half_of(p.corpus, p.article) == name)

    def where(self, keep: Callable[[Paragraph], bool]) -> "QASet":
        """The paragraphs `keep` accepts, renumbered, with their questions."""
        kept = [i for i, p in enumerate(self.paragraphs) if keep(p)]
        renumber = {old: new for new, old in enumerate(kept)}
        return QASet(tuple(self.paragraphs[i] for i in kept),
                     tuple(replace(e, paragraph=renumber[e.paragraph]) for e in self.examples if e.paragraph in renumber))

    def __add__(self, other: "QASet") -> "QASet":
        shift = len(self.paragraphs)
        return QASet(self.paragraphs + other.paragraphs,
                     self.examples + tuple(replace(e, paragraph=e.paragraph + shift) for e in other.examples))

    def translated(self, translations: dict[str, str]) -> "QASet":
        """The same paragraphs, asked in the other language: each question that has a translation
        (by its key), put in it; the answering sentence stays the original one."""
        return QASet(self.paragraphs, tuple(
            replace(e, question=translations[e.key], language=other_language(self.paragraphs[e.paragraph].language))
            for e in self.examples if e.key in translations))

    def with_translations(self, translations: dict[str, str]) -> "QASet":
        """Every question, and beside it its translation: the pairs across languages join the set."""
        return QASet(self.paragraphs, self.examples + self.translated(translations).examples)


def half_of(corpus: str, article: str) -> str:
    """`train` or `heldout` for an article: a fixed hash, not a choice."""
    return HALVES[hashlib.sha256(f"{corpus} {article}".encode()).digest()[0] % 2]


def sentence_spans(context: str, language: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `context`, paragraph by paragraph, as an index cuts them."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for block in context.split("\n"):
        start = cursor
        cursor += len(block) + 1
        if block.strip():
            spans += [(s.start, s.end) for s in split_sentences(context, Span(start, start + len(block)), language)]
    return spans


def read_squad(path: Path, corpus: str, language: str) -> QASet:
    """Every paragraph of a SQuAD v1 file and every question whose answer starts inside a sentence.

    Raises RagError when the file is not SQuAD-shaped JSON."""
    try:
        articles = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path} is not a readable SQuAD file (a JSON object with 'data'): {exc}") from exc
    paragraphs: list[Paragraph] = []
    examples: list[Example] = []
    for article in articles:
        title = str(article.get("title", ""))
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            spans = sentence_spans(context, language)
            if len(spans) < 2:
                continue  # nothing to rank inside it
            number = len(paragraphs)
            paragraphs.append(Paragraph(corpus, title, language, tuple(context[s:e] for s, e in spans)))
            for qa in paragraph.get("qas", []):
                answers = qa.get("answers") or []
                if not answers:
                    continue
                start = int(answers[0]["answer_start"])
                holding = [i for i, (s, e) in enumerate(spans) if s <= start < e]
                if holding:
                    examples.append(Example(" ".join(qa["question"].split()), number, holding[0],
                                            str(answers[0]["text"]), f"{corpus} {qa['id']}" if qa.get("id") else ""))
    return QASet(tuple(paragraphs), tuple(examples))


def read_sets(files: Iterable[tuple[Path, str, str]]) -> QASet:
    """Several SQuAD files, each given as (path, corpus name, language), read into one set."""
    total = QASet((), ())
    for path, corpus, language in files:
        total = total + read_squad(path, corpus, language)
    return total
