"""The answer columns every row of the regression table shares (pure; `bench/regression.py`).

Each set grades its questions its own way (a gold span quoted, the right answer or refusal, every
comparison column right); once graded, the columns are counted alike for all of them, here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def rate(values: Sequence[bool]) -> float | None:
    """The share of true values, to four decimals; None for no value (a column the set cannot fill)."""
    return round(sum(values) / len(values), 4) if values else None


def answer_columns(answers: Sequence[Any], right: Sequence[bool]) -> dict[str, float | None]:
    """`answer`, `false_abstentions`, `wrong` and `chars` of answerable questions' answers, each graded
    right or not by its set: *wrong* is answered and not right (where a refusal would have been better),
    *chars* the characters quoted per answer that quotes anything (an all-silent comparison is not a
    0-character answer)."""
    if len(answers) != len(right):
        raise ValueError(f"{len(answers)} answers for {len(right)} verdicts: grade each answer once")
    quoting = [a for a in answers if a.sentences]
    return {
        "answer": rate(list(right)),
        "false_abstentions": rate([a.abstained for a in answers]),
        "wrong": rate([not a.abstained and not ok for a, ok in zip(answers, right)]),
        "chars": round(statistics.mean(sum(len(q.text) for q in a.sentences) for a in quoting), 1) if quoting else None,
    }


def fisher_exact(right_a: int, questions_a: int, right_b: int, questions_b: int) -> float:
    """Two-sided p-value of Fisher's exact test that two halves answer right at one rate: the probability,
    with the margins fixed, of a split at least as unlikely as the one seen (1.0 when a half is empty)."""
    if not (0 <= right_a <= questions_a and 0 <= right_b <= questions_b):
        raise ValueError(f"right answers must lie between 0 and the questions: {right_a}/{questions_a}, "
                         f"{right_b}/{questions_b}")
    right, total = right_a + right_b, questions_a + questions_b
    if questions_a == 0 or questions_b == 0:
        return 1.0

    def chance(k: int) -> float:
        return math.comb(questions_a, k) * math.comb(questions_b, right - k) / math.comb(total, right)

    seen = chance(right_a)
    lowest, highest = max(0, right - questions_b), min(right, questions_a)
    return min(1.0, sum(p for p in map(chance, range(lowest, highest + 1)) if p <= seen * (1 + 1e-9)))


def detectable_gap(rate_: float, questions_a: int, questions_b: int) -> float:
    """The gap between two halves of these sizes that a two-sided test at 5% tells from chance, at the
    pooled rate `rate_` (normal approximation): below it, a gap between halves says nothing."""
    if questions_a == 0 or questions_b == 0:
        return 1.0
    return 1.96 * math.sqrt(rate_ * (1 - rate_) * (1 / questions_a + 1 / questions_b))
