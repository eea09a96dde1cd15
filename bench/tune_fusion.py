"""Grid search of the fusion weights (rag/answer/policy.py FusionPolicy) on the tuning half of the eval set.

For every answerable question, retrieval features are computed once; each weight
combination is then scored by how often its best sentence lies in a passage that
holds the evidence. Prints the best combinations: pick one on a plateau, not a spike.

Run: python bench/tune_fusion.py [eval files...]
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

    files = [Path(a) for a in sys.argv[1:]] or sorted((ROOT / "eval").glob("*.jsonl"))
    engine = Engine(Settings.resolve())
    data = []
    for item in tuning_half(load_questions(files)):
        if not item.get("evidence"):
            continue
        retrieval = engine.retrieve(item["question"], item.get("history"))
        features = np.array([[c.dense, c.passage_dense, c.lexical, c.lexical_passage] for c in retrieval.candidates])
        gold = np.array([item["evidence"] in c.passage.text for c in retrieval.candidates])
        data.append((features, gold))
    results = []
    for passage_w in (0.0, 0.2, 0.4, 0.6, 1.0):
        for lexical_w in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08):
            for lexical_p_w in (0.0, 0.01, 0.02, 0.04):
                weights = np.array([1.0, passage_w, lexical_w, lexical_p_w])
                hits = [gold[int(np.argmax(features @ weights))] for features, gold in data if len(features)]
                results.append((float(np.mean(hits)), passage_w, lexical_w, lexical_p_w))
    results.sort(reverse=True)
    print(f"{'top-1 in evidence':>18} {'passage':>8} {'lexical':>8} {'lex. passage':>13}")
    for hit, passage_w, lexical_w, lexical_p_w in results[:20]:
        print(f"{hit:>18.1%} {passage_w:>8} {lexical_w:>8} {lexical_p_w:>13}")


if __name__ == "__main__":
    main()
