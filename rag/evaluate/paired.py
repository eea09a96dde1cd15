"""Two runs over the same questions, compared question by question (pure).

A change that moves answers moves them both ways; a count of "answers moved" says nothing of
whether the gains outnumber the losses by more than chance. Each question that one run gets
right and the other wrong is a discordant pair; under "no difference", each such pair is a
fair coin, so the exact two-sided sign test (McNemar's exact test) says how surprising the
split is. Stop 42's seed control (the same training with another seed) moved a set by two net
answers: a guard of "no set loses more than one" is below that noise, and a set's loss means
something only when its p-value says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Any, Callable, Iterable, Mapping


@dataclass(frozen=True)
class PairedChange:
    """One set's questions asked by two runs: how many the second gets right that the first did not."""

    name: str
    questions: int  # asked by both runs, with an outcome in both
    gained: int
    lost: int

    @property
    def p_value(self) -> float:
        return sign_test(self.gained, self.lost)


def sign_test(gained: int, lost: int) -> float:
    """Exact two-sided sign test of `gained` against `lost` discordant pairs (1.0 when there are none)."""
    if gained < 0 or lost < 0:
        raise ValueError(f"counts of discordant pairs cannot be negative: gained={gained}, lost={lost}")
    pairs = gained + lost
    if pairs == 0:
        return 1.0
    tail = sum(comb(pairs, k) for k in range(min(gained, lost) + 1)) / 2 ** pairs
    return min(1.0, 2 * tail)


def outcome(record: Mapping[str, Any], refused: bool | None = None) -> bool | None:
    """Whether a recorded answer is right: the gold span quoted (SQuAD sets), the right answer or a right
    refusal (seeds, comparisons), or, for a question about something else asked of a corpus (a record with
    neither verdict), a refusal. `refused` judges the answer as if it had been refused or not (a margin
    or a judge's cut simulated, `bench/margin_sweep.py`); None: as recorded. A record that cannot say
    whether its question was answerable (a comparison, an older seeds record) keeps its verdict. None when
    the record holds no verdict at all."""
    was_refused = bool(record.get("abstained")) if refused is None else refused
    if "span" in record:
        return bool(record["span"]) and not was_refused
    if "correct" in record:
        if refused is None or "answerable" not in record:
            return bool(record["correct"])
        return bool(record["correct"]) and not refused if record["answerable"] else refused
    if "abstained" in record:
        return was_refused
    return None


# A question's outcome, ranked: a refusal is better than a wrong quote (the bot must say that the
# documents do not answer rather than invent), and worse than the right answer.
RIGHT, REFUSED, WRONG = 2, 1, 0


def ranked_outcome(record: Mapping[str, Any]) -> int | None:
    """`outcome` with the wrong answers told apart from the refusals: RIGHT, REFUSED (an answerable
    question refused) or WRONG (a quote that does not answer, or an answer to a question that had none).
    None when the record holds no verdict."""
    right = outcome(record)
    if right is None:
        return None
    return RIGHT if right else REFUSED if record.get("abstained") else WRONG


def paired_changes(before: Mapping[str, list[Mapping[str, Any]]], after: Mapping[str, list[Mapping[str, Any]]],
                   rank: Callable[[Mapping[str, Any]], int | bool | None] = outcome) -> list[PairedChange]:
    """Per set (the keys both runs share, in `after`'s order): questions matched by their text. A question
    is gained when `rank` puts its second outcome above its first: with `outcome`, right against not
    right; with `ranked_outcome`, a wrong quote turned into a refusal is gained too."""
    changes = []
    for name, records in after.items():
        if name not in before:
            continue
        was = {r["question"]: rank(r) for r in before[name]}
        pairs = [(was[r["question"]], rank(r)) for r in records if r["question"] in was]
        pairs = [(old, new) for old, new in pairs if old is not None and new is not None]
        changes.append(PairedChange(name, len(pairs), sum(new > old for old, new in pairs),
                                    sum(new < old for old, new in pairs)))
    return changes


def pooled(changes: Iterable[PairedChange], name: str) -> PairedChange:
    """The sets taken together (each question once per set it belongs to)."""
    changes = list(changes)
    return PairedChange(name, sum(c.questions for c in changes), sum(c.gained for c in changes),
                        sum(c.lost for c in changes))
