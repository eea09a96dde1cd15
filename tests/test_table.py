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
    silent_comparison = _answer()  # answered, every column silent: it quotes nothing
    assert answer_columns([_answer("x" * 10), silent_comparison], [True, False])["chars"] == 10.0
    assert answer_columns([], []) == {"answer": None, "false_abstentions": None, "wrong": None, "chars": None}
    assert rate([True, False, False]) == 0.3333


def test_each_answer_needs_its_verdict():
    with pytest.raises(ValueError, match="2 answers for 1 verdicts"):
        answer_columns([_answer("x"), _answer("y")], [True])


def test_fishers_exact_test_matches_its_textbook_values():
    from rag.evaluate.table import fisher_exact

    assert fisher_exact(3, 4, 1, 4) == pytest.approx(0.4857, abs=1e-4)  # Fisher's lady tasting tea
    assert fisher_exact(3, 24, 9, 16) == pytest.approx(0.005043, abs=1e-6)  # scipy.stats.fisher_exact's
    assert fisher_exact(30, 92, 20, 98) == pytest.approx(0.069884, abs=1e-6)
    assert fisher_exact(5, 10, 5, 10) == 1.0
    assert fisher_exact(0, 0, 3, 5) == 1.0
    with pytest.raises(ValueError, match="between 0 and the questions"):
        fisher_exact(5, 4, 1, 4)


def test_the_gap_halves_can_tell_from_chance_shrinks_with_their_size():
    from rag.evaluate.table import detectable_gap

    small, large = detectable_gap(0.6, 31, 75), detectable_gap(0.6, 768, 851)
    assert small == pytest.approx(0.2050, abs=1e-3) and large == pytest.approx(0.0478, abs=1e-3)
    assert detectable_gap(0.0, 10, 10) == 0.0 and detectable_gap(0.5, 0, 10) == 1.0
