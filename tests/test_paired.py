"""Two runs compared question by question: gains, losses and the sign test (rag.evaluate.paired)."""

from __future__ import annotations

import pytest

from rag.evaluate.paired import REFUSED, RIGHT, WRONG, outcome, paired_changes, pooled, ranked_outcome, sign_test


def test_the_sign_test_is_exact_and_two_sided():
    assert sign_test(0, 0) == 1.0
    assert sign_test(3, 3) == 1.0
    assert sign_test(5, 0) == pytest.approx(2 / 32)  # both tails of five fair coins all one way
    assert sign_test(0, 5) == sign_test(5, 0)
    assert sign_test(94, 100) == pytest.approx(0.7197, abs=1e-4)
    assert sign_test(13, 0) < 0.001
    with pytest.raises(ValueError, match="negative"):
        sign_test(-1, 2)


def test_an_outcome_is_the_verdict_recorded_else_a_refusal_of_a_foreign_question():
    assert outcome({"correct": True, "answerable": True, "abstained": False}) is True
    assert outcome({"span": False, "hit1": True, "abstained": False}) is False
    assert outcome({"question": "Quel temps fera-t-il ?", "abstained": True}) is True  # asked of a corpus about something else
    assert outcome({"question": "x", "answerable": True}) is None


def test_a_refusal_ranks_between_the_right_answer_and_a_wrong_quote():
    """bench/ablate.py's outcomes: a rule that turns wrong quotes into refusals earns its place."""
    assert ranked_outcome({"span": True, "abstained": False}) == RIGHT
    assert ranked_outcome({"span": False, "abstained": True}) == REFUSED
    assert ranked_outcome({"span": False, "abstained": False}) == WRONG
    assert ranked_outcome({"correct": False, "answerable": False, "abstained": False}) == WRONG  # answered, with no answer there
    assert ranked_outcome({"correct": True, "answerable": False, "abstained": True}) == RIGHT
    assert ranked_outcome({"question": "Quel temps fera-t-il ?", "abstained": False}) == WRONG  # about something else
    assert ranked_outcome({"question": "x"}) is None
    assert WRONG < REFUSED < RIGHT


def test_an_outcome_under_a_simulated_refusal_is_what_the_margin_sweep_counts():
    span = {"span": True, "abstained": False}
    assert outcome(span, refused=True) is False and outcome(span, refused=False) is True
    answerable = {"correct": True, "answerable": True, "abstained": False}
    assert outcome(answerable, refused=True) is False
    unanswerable = {"correct": False, "answerable": False, "abstained": False}
    assert outcome(unanswerable, refused=True) is True and outcome(unanswerable) is False
    foreign = {"question": "Quel temps fera-t-il ?", "abstained": False}
    assert outcome(foreign, refused=True) is True
    compared = {"correct": True, "abstained": False}  # a comparison: no margin can be simulated on it
    assert outcome(compared, refused=True) is True


def test_questions_are_paired_by_their_text_and_only_discordant_ones_count():
    before = {"wiki/held-out": [{"question": "a", "span": True}, {"question": "b", "span": False},
                                {"question": "c", "span": True}, {"question": "gone", "span": True}],
              "wiki/foreign": [{"question": "f", "abstained": False}]}
    after = {"wiki/held-out": [{"question": "c", "span": True}, {"question": "b", "span": True},
                               {"question": "a", "span": False}, {"question": "new", "span": True}],
             "wiki/foreign": [{"question": "f", "abstained": True}],
             "only-after/dev": [{"question": "a", "span": True}]}
    changes = {c.name: c for c in paired_changes(before, after)}
    assert set(changes) == {"wiki/held-out", "wiki/foreign"}
    held = changes["wiki/held-out"]
    assert (held.questions, held.gained, held.lost) == (3, 1, 1)
    assert held.p_value == 1.0
    assert (changes["wiki/foreign"].gained, changes["wiki/foreign"].lost) == (1, 0)
    both = pooled(changes.values(), "all")
    assert (both.questions, both.gained, both.lost) == (4, 2, 1)


def test_ranked_pairs_count_a_wrong_quote_turned_into_a_refusal_as_a_gain():
    """What the two-valued count misses: the answer-kind rule's value was refusals kept from turning wrong."""
    before = {"sp/measure": [{"question": "a", "span": False, "abstained": True},
                             {"question": "b", "span": False, "abstained": False},
                             {"question": "c", "span": True, "abstained": False}]}
    after = {"sp/measure": [{"question": "a", "span": False, "abstained": False},
                            {"question": "b", "span": False, "abstained": True},
                            {"question": "c", "span": False, "abstained": True}]}
    plain = paired_changes(before, after)[0]
    assert (plain.gained, plain.lost) == (0, 1)
    graded = paired_changes(before, after, rank=ranked_outcome)[0]
    assert (graded.questions, graded.gained, graded.lost) == (3, 1, 2)
