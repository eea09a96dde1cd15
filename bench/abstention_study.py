"""How well does each abstention signal separate answerable from unanswerable questions?

For the tuning half of eval/ (never the held-out half, never service-public), prints
per question the best sentence cosine, the background reference (generic text),
and the corpus's own score distribution (mean, spread, high quantile), then the
ROC AUC of each candidate support measure. Used to choose the measure; the
threshold itself comes from bench/calibrate.py.

With --squad FILE (a development SQuAD file, never service-public): the same AUCs on
that corpus, its questions against every eval/ question asked of it (foreign).

Run: python bench/abstention_study.py [--squad FILE] [eval files...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def auc(positive: list[float], negative: list[float]) -> float:
    """P(a random answerable question scores above a random unanswerable one)."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positive for n in negative]
    return float(np.mean(pairs)) if pairs else float("nan")


def main() -> None:
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.labelled import load_questions, tuning_half

    args = sys.argv[1:]
    if args[:1] == ["--squad"]:
        squad_study(Path(args[1]), [Path(a) for a in args[2:]] or sorted((ROOT / "eval").glob("*.jsonl")))
        return
    files = [Path(a) for a in args] or sorted((ROOT / "eval").glob("*.jsonl"))
    items = tuning_half(load_questions(files))
    engine = Engine(Settings.resolve())
    rows = []
    for item in items:
        answer = engine.ask(item["question"], item.get("history"), threshold=-1.0)
        measures = engine.support_measures(item["question"], item.get("history"))
        rows.append((item.get("answerable", True) is not False, answer.abstained, measures, item))
    names = sorted(rows[0][2])
    print(f"{len(rows)} tuning questions ({sum(r[0] for r in rows)} answerable)")
    for name in names:
        positive = [r[2][name] for r in rows if r[0] and not r[1]]
        negative = [r[2][name] for r in rows if not r[0] and not r[1]]
        print(f"{name:<28} AUC {auc(positive, negative):.3f}")


def squad_study(path: Path, foreign_files: list[Path]) -> None:
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.labelled import load_questions
    from rag.evaluate.squad import load_squad, squad_settings

    documents, questions = load_squad(path)
    engine = Engine(squad_settings(path, documents, Settings.resolve()))
    engine.open()
    positive = [engine.support_measures(q.question) for q in questions]
    negative = [engine.support_measures(item["question"]) for item in load_questions(foreign_files)]
    print(f"{path.name}: {len(positive)} questions against {len(negative)} foreign ones")
    for name in sorted(positive[0]):
        print(f"{name:<28} AUC {auc([m[name] for m in positive], [m[name] for m in negative]):.3f}")


if __name__ == "__main__":
    main()
