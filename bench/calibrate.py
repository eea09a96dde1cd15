"""Calibrate the abstention threshold on the tuning half of labelled questions (answerable and not).

The support of an answer is how much closer its best sentence is to the question
than the closest background sentence. This script measures the support of every
eval question, picks the threshold that gets the most questions right (answered
correctly, or rightly abstained) while wrongly abstaining on at most 5% of the
answerable ones, reports a leave-one-out estimate of how well that choice
generalizes, and writes rag/data/calibration.json.

Only the tuning half (rag.evaluate.labelled.split_of) is read: the held-out half measures.

Run: python bench/calibrate.py [eval files...]   (default: every eval/*.jsonl)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A wrong refusal hides an answer the documents hold; at most one in fifty on the tuning half.
MAX_WRONG_ABSTENTION = 0.02


def choose(rows: list[tuple[float, bool, bool]]) -> float:
    """rows: (support, answerable, abstains-anyway). The threshold with the most right decisions."""
    answerable = sum(1 for _, a, _ in rows if a)
    best_key, best = None, 0.0
    for threshold in sorted({round(s + 1e-4, 4) for s, _, _ in rows} | {-1.0}):
        right = wrong_abstain = 0
        for support, is_answerable, forced in rows:
            abstains = forced or support < threshold
            right += (abstains != is_answerable)
            wrong_abstain += (abstains and is_answerable)
        if answerable and wrong_abstain / answerable > MAX_WRONG_ABSTENTION:
            continue
        key = (right, -threshold)  # among ties, the lowest threshold: abstain only when needed
        if best_key is None or key > best_key:
            best_key, best = key, threshold
    return best


def main() -> None:
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.labelled import load_questions, tuning_half

    files = [Path(a) for a in sys.argv[1:]] or sorted((ROOT / "eval").glob("*.jsonl"))
    items = tuning_half(load_questions(files))
    engine = Engine(Settings.resolve())
    rows = []
    for item in items:
        answer = engine.ask(item["question"], item.get("history"), threshold=-1.0)
        forced = answer.abstained  # abstains whatever the threshold (unknown names, empty index)
        rows.append((answer.support, item.get("answerable", True) is not False, forced))
    threshold = choose(rows)
    # Leave-one-out: choose on all but one question, judge that one.
    loo_right = 0
    for i, (support, answerable, forced) in enumerate(rows):
        t = choose(rows[:i] + rows[i + 1 :])
        loo_right += ((forced or support < t) != answerable)
    out = {
        "margin_threshold": threshold,
        "source": f"bench/calibrate.py on the tuning half of {', '.join(f.name for f in files)} ({len(rows)} questions)",
        "model": engine.embedder.model_id,
        "leave_one_out_decision_accuracy": round(loo_right / len(rows), 4),
    }
    (ROOT / "rag" / "data" / "calibration.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    for (support, answerable, forced), item in sorted(zip(rows, items), key=lambda r: r[0][0]):
        print(f"{support:+.4f} {'answerable' if answerable else 'UNANSWERABLE':<12} {'forced ' if forced else ''}{item['id']}")


if __name__ == "__main__":
    main()
