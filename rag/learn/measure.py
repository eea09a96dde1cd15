"""How well a model ranks answers on a QA set, with plain cosines and no rule (pure over vectors).

Two figures, the ones the training record and BENCHMARKS report:
- `sentence_first`: the answering sentence is the closest to the question among its paragraph's sentences
  (choosing what to quote inside the right document);
- `paragraph_first`: the closest sentence of the whole set lies in the question's paragraph (finding the
  right document among all of them, each judged by its best sentence);
- `cosine_mean`, `cosine_spread`: the mean cosine of a question with the set's sentences, and the mean
  of each question's standard deviation over them: the scale every margin of the answer stage is
  written in, which a trained model must keep;
- `language_gap`: how much the model prefers a question's own language, by the language alone: the
  question's best cosine with sentences in the other language minus its best cosine with sentences of
  its own language from other articles, averaged over questions (all of those sentences unrelated to
  it). An English question over French documents has its evidence held against unrelated text of
  both languages; a gap that grows turns its answers into refusals. 0 when the set has one language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .examples import QASet

Encode = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Ranking:
    questions: int
    sentence_first: float
    paragraph_first: float
    cosine_mean: float = 0.0
    cosine_spread: float = 0.0
    language_gap: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"questions": self.questions, "sentence_first": round(self.sentence_first, 4),
                "paragraph_first": round(self.paragraph_first, 4), "cosine_mean": round(self.cosine_mean, 4),
                "cosine_spread": round(self.cosine_spread, 4), "language_gap": round(self.language_gap, 4)}


def rank(qa: QASet, encode_queries: Encode, encode_passages: Encode) -> Ranking:
    """Both figures for every question of `qa`; the encoders return unit vectors, one row per text."""
    if not qa.examples:
        raise ValueError("the set has no question to measure")
    owners = np.array([i for i, p in enumerate(qa.paragraphs) for _ in p.sentences])
    offsets = np.cumsum([0] + [len(p.sentences) for p in qa.paragraphs])
    sentences = encode_passages([s for p in qa.paragraphs for s in p.sentences])
    questions = encode_queries([e.question for e in qa.examples])
    scores = questions @ sentences.T
    first_sentence = first_paragraph = 0
    for row, example in zip(scores, qa.examples):
        inside = row[offsets[example.paragraph]:offsets[example.paragraph + 1]]
        first_sentence += int(np.argmax(inside)) == example.positive
        first_paragraph += int(owners[int(np.argmax(row))]) == example.paragraph
    n = len(qa.examples)
    return Ranking(n, first_sentence / n, first_paragraph / n, float(scores.mean()), float(scores.std(axis=1).mean()),
                   language_gap(qa, scores, owners))


def language_gap(qa: QASet, scores: np.ndarray, owners: np.ndarray) -> float:
    """Mean over questions of (best cosine in the other language) − (best cosine in its own language),
    its own article left out of both; 0 unless the set has two languages. `scores`: questions × sentences."""
    languages = np.array([p.language for p in qa.paragraphs])[owners]
    articles = np.array([f"{p.corpus} {p.article}" for p in qa.paragraphs])[owners]
    if len(set(languages.tolist())) < 2:
        return 0.0
    gaps = []
    for row, example in zip(scores, qa.examples):
        own = qa.paragraphs[example.paragraph]
        language = example.language or own.language  # a translated question's own language is not its paragraph's
        unrelated = articles != f"{own.corpus} {own.article}"
        same, other = unrelated & (languages == language), unrelated & (languages != language)
        if same.any() and other.any():
            gaps.append(float(row[other].max() - row[same].max()))
    return float(np.mean(gaps)) if gaps else 0.0
