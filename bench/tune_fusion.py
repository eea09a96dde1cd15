"""Grid search of the fusion weights (rag/policy.py FusionPolicy) on the tuning half of the eval set.

For every answerable question, retrieval features are computed once; each weight
combination is then scored by how often its best sentence lies in a passage that
holds the evidence. Prints the best combinations: pick one on a plateau, not a spike.

With --squad FILE (a *development* SQuAD file, such as the manual pages of
bench/manpages_devset.py; never service-public), its questions are scored too: a
combination is good there when its best sentence overlaps the answer span in the
right document. Both figures and their mean are printed.

Run: python bench/tune_fusion.py [--squad FILE] [eval files...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


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
    data = []
    for item in tuning_half(load_questions(files)):
        if not item.get("evidence"):
            continue
        retrieval = engine.retrieve(item["question"], item.get("history"))
        features = np.array([[c.dense, c.passage_dense, c.lexical, c.lexical_passage] for c in retrieval.candidates])
        gold = np.array([item["evidence"] in c.passage.text for c in retrieval.candidates])
        data.append((features, gold))
    development = squad_features(squad) if squad else []
    results = []
    for passage_w in (0.0, 0.2, 0.4, 0.6, 1.0):
        for lexical_w in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12):
            for lexical_p_w in (0.0, 0.01, 0.02, 0.04):
                weights = np.array([1.0, passage_w, lexical_w, lexical_p_w])
                hit = top_hit(data, weights)
                dev = top_hit(development, weights) if development else hit
                results.append(((hit + dev) / 2, hit, dev, passage_w, lexical_w, lexical_p_w))
    results.sort(reverse=True)
    print(f"{'mean':>6} {'eval/ tuning':>13} {'development':>12} {'passage':>8} {'lexical':>8} {'lex. passage':>13}")
    for mean, hit, dev, passage_w, lexical_w, lexical_p_w in results[:25]:
        print(f"{mean:>6.1%} {hit:>13.1%} {dev:>12.1%} {passage_w:>8} {lexical_w:>8} {lexical_p_w:>13}")
    current = [r for r in results if r[3:] == (0.4, 0.03, 0.02)]
    if current:
        print("current (0.4, 0.03, 0.02):", f"{current[0][1]:.1%} / {current[0][2]:.1%}")


def top_hit(data: list, weights: np.ndarray) -> float:
    return float(np.mean([gold[int(np.argmax(features @ weights))] for features, gold in data if len(features)]))


def squad_features(path: Path) -> list:
    """Features of each SQuAD question's candidates, and which overlap the answer span."""
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.squad import load_squad, squad_settings

    documents, questions = load_squad(path)
    engine = Engine(squad_settings(path, documents, Settings.resolve()))
    index = engine.open()
    data = []
    for item in questions:
        retrieval = engine.retrieve(item.question)
        features = np.array([[c.dense, c.passage_dense, c.lexical, c.lexical_passage] for c in retrieval.candidates])
        gold = np.array([index.documents[c.sentence.doc_id].source == item.source
                         and c.sentence.start < item.answer_end and item.answer_start < c.sentence.end
                         for c in retrieval.candidates])
        data.append((features, gold))
    return data


if __name__ == "__main__":
    main()
