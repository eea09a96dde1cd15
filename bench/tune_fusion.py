"""Grid search of the fusion weights (rag/policy.py FusionPolicy) on the tuning half of the eval set.

Each question is understood and embedded once; each weight combination then runs the real
retrieval (`rag.retrieve.hybrid.retrieve`, every other part of the fusion as the policy has it)
and is scored by how often its best sentence lies in a passage that holds the evidence. Prints
the best combinations: pick one on a plateau, not a spike.

With --squad FILE (a *development* SQuAD file, such as the manual pages of
bench/manpages_devset.py; never service-public), its questions are scored too: a
combination is good there when its best sentence overlaps the answer span in the
right document. Both figures and their mean are printed.

Run: python bench/tune_fusion.py [--squad FILE] [eval files...]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GRID = {"dense_passage": (0.0, 0.2, 0.4, 0.6, 1.0), "lexical_sentence": (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12),
        "lexical_passage": (0.0, 0.01, 0.02, 0.04)}


@dataclass(frozen=True)
class Case:
    """One question, understood and embedded once, and what makes a candidate right."""

    index: Any
    query: Any
    vector: np.ndarray
    lean: dict[str, float]
    right: Callable[[Any], bool]


def understood(engine: Any, question: str, history: list[str] | None, right: Callable[[Any], bool]) -> Case:
    from rag.query.understand import parse_question, understand
    from rag.retrieve.hybrid import language_lean

    index = engine.index
    query = understand(parse_question(question, history, policy=engine.policies.question), index,
                       engine.policies.question)
    vector = engine.embedder.encode_queries(list(query.views)).mean(axis=0)
    return Case(index, query, vector, language_lean(index, vector), right)


def first_right(cases: list[Case], fusion: Any) -> float:
    """The share of `cases` whose first candidate, under `fusion`, is right."""
    from rag.retrieve.hybrid import retrieve

    hits = []
    for case in cases:
        candidates = retrieve(case.index, case.vector, case.query, fusion, language_lean=case.lean).candidates
        hits.append(bool(candidates) and case.right(candidates[0]))
    return float(np.mean(hits)) if hits else 0.0


def main() -> None:
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.labelled import load_questions, tuning_half

    args = sys.argv[1:]
    squad = None
    if args[:1] == ["--squad"]:
        squad, args = Path(args[1]), args[2:]
    files = [Path(a) for a in args] or sorted((ROOT / "eval").glob("*.jsonl"))
    engine = Engine(Settings.resolve())
    tuning = [understood(engine, item["question"], item.get("history"),
                         lambda c, evidence=item["evidence"]: evidence in c.passage.text)
              for item in tuning_half(load_questions(files)) if item.get("evidence")]
    development = squad_cases(squad) if squad else []
    default = engine.policies.fusion
    results = []
    for passage_w in GRID["dense_passage"]:
        for lexical_w in GRID["lexical_sentence"]:
            for lexical_p_w in GRID["lexical_passage"]:
                fusion = replace(default, dense_passage=passage_w, lexical_sentence=lexical_w, lexical_passage=lexical_p_w)
                hit = first_right(tuning, fusion)
                dev = first_right(development, fusion) if development else hit
                results.append(((hit + dev) / 2, hit, dev, passage_w, lexical_w, lexical_p_w))
    results.sort(reverse=True)
    print(f"{'mean':>6} {'eval/ tuning':>13} {'development':>12} {'passage':>8} {'lexical':>8} {'lex. passage':>13}")
    for mean, hit, dev, passage_w, lexical_w, lexical_p_w in results[:25]:
        print(f"{mean:>6.1%} {hit:>13.1%} {dev:>12.1%} {passage_w:>8} {lexical_w:>8} {lexical_p_w:>13}")
    now = (default.dense_passage, default.lexical_sentence, default.lexical_passage)
    current = [r for r in results if r[3:] == now]
    if current:
        print(f"current {now}:", f"{current[0][1]:.1%} / {current[0][2]:.1%}")


def squad_cases(path: Path) -> list[Case]:
    """Each SQuAD question, right when a candidate overlaps the answer span in the right document."""
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.squad import load_squad, squad_settings

    documents, questions = load_squad(path)
    engine = Engine(squad_settings(path, documents, Settings.resolve()))
    index = engine.open()

    def right_for(item: Any) -> Callable[[Any], bool]:
        return lambda c: (index.documents[c.sentence.doc_id].source == item.source
                          and c.sentence.start < item.answer_end and item.answer_start < c.sentence.end)

    return [understood(engine, item.question, None, right_for(item)) for item in questions]


if __name__ == "__main__":
    main()
