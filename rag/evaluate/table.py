"""The answer columns every row of the regression table shares (pure; `bench/regression.py`).

Each set grades its questions its own way (a gold span quoted, the right answer or refusal, every
comparison column right); once graded, the columns are counted alike for all of them, here.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def rate(values: Sequence[bool]) -> float | None:
    """The share of true values, to four decimals; None for no value (a column the set cannot fill)."""
    return round(sum(values) / len(values), 4) if values else None


def answer_columns(answers: Sequence[Any], right: Sequence[bool]) -> dict[str, float | None]:
    """`answer`, `false_abstentions`, `wrong` and `chars` of answerable questions' answers, each graded
    right or not by its set: *wrong* is answered and not right (where a refusal would have been better),
    *chars* the characters quoted per answer that quotes anything."""
    if len(answers) != len(right):
        raise ValueError(f"{len(answers)} answers for {len(right)} verdicts: grade each answer once")
    quoting = [a for a in answers if a.sentences]
    return {
        "answer": rate(list(right)),
        "false_abstentions": rate([a.abstained for a in answers]),
        "wrong": rate([not a.abstained and not ok for a, ok in zip(answers, right)]),
        "chars": round(statistics.mean(sum(len(q.text) for q in a.sentences) for a in quoting), 1) if quoting else None,
    }
