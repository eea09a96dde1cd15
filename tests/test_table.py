"""The regression table's shared answer columns (rag.evaluate.table), counted from graded answers."""

from __future__ import annotations

import pytest

from rag.evaluate.table import answer_columns, rate
from rag.records import Answer, Quote


def _answer(*quotes: str, abstained: bool = False) -> Answer:
    return Answer("Q ?", "fr", abstained, "", tuple(Quote(q, 1, 0, len(q), "d", "") for q in quotes), ())


def test_wrong_is_answered_and_not_right_and_a_refusal_is_never_wrong():
    answers = [_answer("a" * 100), _answer("b" * 50, "c" * 150), _answer("d" * 10), _answer(abstained=True)]
    right = [True, False, True, False]
    columns = answer_columns(answers, right)
    assert columns == {"answer": 0.5, "false_abstentions": 0.25, "wrong": 0.25, "chars": pytest.approx(310 / 3, abs=0.05)}
    # right + wrong + refused covers every question once
    assert columns["answer"] + columns["wrong"] + columns["false_abstentions"] == pytest.approx(1.0)


def test_characters_count_only_answers_that_quote_and_no_answer_leaves_the_column_empty():
    assert answer_columns([_answer(abstained=True)], [False])["chars"] is None
    assert answer_columns([], []) == {"answer": None, "false_abstentions": None, "wrong": None, "chars": None}
    assert rate([True, False, False]) == 0.3333


def test_each_answer_needs_its_verdict():
    with pytest.raises(ValueError, match="2 answers for 1 verdicts"):
        answer_columns([_answer("x"), _answer("y")], [True])
