"""Selection: choose the verbatim sentences that answer, or decide to abstain.

Pure functions over a `Retrieval`: no model, no disk. The support test compares
the best evidence with the closest *background* sentence (everyday text from
unrelated domains, `data/background.txt`): evidence that is no closer to the
question than unrelated text does not answer it. The margin threshold is
calibrated on the labelled eval set (`bench/calibrate.py` → `data/calibration.json`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..index.store import Index
from ..records import Passage, Sentence
from .query import Query
from .retrieve import Candidate, Retrieval

ANAPHORIC_START = re.compile(
    r"^(?:C[’']est|Ce |Cela|Ceci|Ces |Cette |Cet |Celui|Celle|Il |Elle |Ils |Elles |It |This |That |These |Those |They )")
MAX_BROAD_SENTENCES = 6
MAX_CLOSEST = 3
SECOND_SENTENCE_GAP = 0.01
BROAD_DENSE_WINDOW = 0.08
BROAD_REDUNDANT = 0.95


@dataclass(frozen=True)
class Calibration:
    margin_threshold: float
    source: str = "default"


@lru_cache(maxsize=1)
def calibration() -> Calibration:
    try:
        data = json.loads(resources.files("rag.data").joinpath("calibration.json").read_text(encoding="utf-8"))
        return Calibration(float(data["margin_threshold"]), str(data.get("source", "calibration.json")))
    except (OSError, ValueError, KeyError):
        return Calibration(0.015, "built-in default")


@dataclass(frozen=True)
class Selection:
    """What the answer stage decided, before wording."""

    abstained: bool
    sentences: tuple[Candidate, ...]
    closest: tuple[tuple[Passage, float], ...]
    support: float
    broad: bool
    reason: str = ""


def _redundant(index: Index, chosen: list[Candidate], candidate: Candidate, limit: float = 0.93) -> bool:
    vector = index.sentence_vectors[candidate.sentence.sentence_id]
    return any(float(index.sentence_vectors[c.sentence.sentence_id] @ vector) > limit for c in chosen)


def _previous_sentence(index: Index, sentence: Sentence) -> Sentence | None:
    if sentence.sentence_id == 0:
        return None
    previous = index.sentences[sentence.sentence_id - 1]
    return previous if previous.doc_id == sentence.doc_id else None


def _with_antecedent(index: Index, chosen: Candidate) -> list[Candidate]:
    """A sentence that opens with a pronoun ("C’est le dernier mot…") needs the one before it."""
    if not ANAPHORIC_START.match(chosen.sentence.text):
        return [chosen]
    previous = _previous_sentence(index, chosen.sentence)
    if previous is None:
        return [chosen]
    passage = index.passages[previous.passage_id]
    return [Candidate(previous, passage, chosen.dense, chosen.passage_dense, 0.0, chosen.fused), chosen]


def select(index: Index, retrieval: Retrieval, query: Query, background_max: float,
           threshold: float | None = None) -> Selection:
    """Pick the answer sentences, or decide to abstain. Pure.

    `background_max` is the best cosine of the question with unrelated text;
    `threshold` overrides the calibrated margin (for calibration itself).
    """
    threshold = calibration().margin_threshold if threshold is None else threshold
    candidates = retrieval.candidates
    closest = tuple(retrieval.top_passages(MAX_CLOSEST))
    broad = query.broad
    if not candidates:
        return Selection(True, (), closest, 0.0, broad, "the index is empty")
    best_dense = max(c.dense for c in candidates[:3])
    support = best_dense - background_max
    if query.unknown_names:
        return Selection(True, (), closest, support, broad,
                         "names the documents never mention: " + ", ".join(query.unknown_names))
    if support < threshold:
        return Selection(True, (), closest, support, broad, "no passage is closer to the question than unrelated text")
    if broad:
        # Each sentence of a broad answer must still beat unrelated text, and stay near the best one.
        floor = max(background_max, best_dense - BROAD_DENSE_WINDOW)
        return Selection(False, tuple(_select_broad(index, candidates, floor)), closest, support, True)
    best = candidates[0]
    chosen = _with_antecedent(index, best)
    # A near tie means the ranking cannot tell which of two sentences answers, and a runner-up
    # that the model finds closer in meaning than the winner was only outranked by word overlap:
    # in both cases show it too.
    runner_up = next((c for c in candidates[1:3] if c.sentence not in [x.sentence for x in chosen]), None)
    if runner_up is not None and (runner_up.fused >= best.fused - SECOND_SENTENCE_GAP or runner_up.dense > best.dense) \
            and not _redundant(index, chosen, runner_up):
        chosen.append(runner_up)
    return Selection(False, tuple(chosen), closest, support, False)


def _select_broad(index: Index, candidates: tuple[Candidate, ...], floor: float) -> list[Candidate]:
    """Several sentences from different passages, diverse, each closer than unrelated text."""
    chosen: list[Candidate] = []
    used_passages: set[int] = set()
    for candidate in candidates[:40]:
        if len(chosen) == MAX_BROAD_SENTENCES:
            break
        if candidate.dense < floor or candidate.passage.passage_id in used_passages:
            continue
        if _redundant(index, chosen, candidate, limit=BROAD_REDUNDANT):
            continue
        chosen.append(candidate)
        used_passages.add(candidate.passage.passage_id)
    return chosen or [candidates[0]]
