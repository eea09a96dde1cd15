"""Abstention signals across corpus shapes, development halves only: is one margin the best rule?

For the seeds' tuning half and each development corpus of bench/regression.py (its development
questions, answerable, and eval/'s tuning-half questions asked of it, which must abstain), every
question is asked with abstention off; questions another condition refuses anyway (names or words
the collection never uses) are left out. Three rules are then compared, each choosing its threshold
on the other corpora so that at most 3% of their answerable questions are refused, and measured on
the corpus left out (refusals and false abstentions summed over corpora):
- `margin`: the best evidence's cosine minus the closest background sentence's (the shipped rule);
- `cosine`: the best evidence's cosine alone;
- `learned`: a logistic regression over the margin, the cosine, and whether the evidence is in
  another language than the question.
Never reads a held-out half or service-public.

Run: [RAG_EMBED_ADAPTER=…] python bench/abstention_corpora.py  (prints, too, each simple rule's cut
fitted on every corpus at once: what a calibration over all of them would take)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MAX_FALSE_ABSTENTION = 0.03


def signals(engine: Any, question: str, history: list[str] | None = None) -> dict[str, float] | None:
    """The signals of one question (`Engine.support_measures`), or None when another condition
    refuses it anyway."""
    if engine.ask(question, history, threshold=-1.0).abstained:
        return None
    measures = engine.support_measures(question, history)
    return {"margin": measures["margin_background"], "cosine": measures["cosine"], "across": measures["across"]}


def collect() -> list[dict[str, Any]]:
    import regression as R
    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.engine import Engine
    from rag.evaluate.labelled import load_questions, split_of
    from rag.evaluate.squad import load_squad
    from rag.answer.calibration import BEING_MEASURED
    from rag.policy import DEFAULT

    base = Settings.resolve()
    embedder = Embedder(model=base.model, cache_dir=base.cache_dir, adapter=base.embed_adapter)
    tune = [item for item in load_questions(sorted((ROOT / "eval").glob("*.jsonl"))) if split_of(item) == "tune"]
    rows: list[dict[str, Any]] = []

    def add(corpus: str, engine: Any, question: str, answerable: bool, history: list[str] | None = None) -> None:
        found = signals(engine, question, history)
        if found is not None:
            rows.append({"corpus": corpus, "answerable": answerable, **found})

    seeds = Engine(base.replace(docs_dir=ROOT / "seeds", store="faiss", index_dir=base.cache_dir / "regression"
                                / f"seeds-{R.index_folder(embedder)}"), embedder=embedder, policies=DEFAULT,
                   calibration=BEING_MEASURED, judge=None)
    for item in tune:
        add("seeds", seeds, item["question"], item.get("answerable", True) is not False, item.get("history"))
    for corpus in R.CORPORA:
        if corpus.name in ("seeds", "service-public"):
            continue
        R.ensure_files(corpus)
        loaded = {half: load_squad(path) for half, path in corpus.files}
        documents, questions = loaded["dev"]
        key = hashlib.sha256(json.dumps(documents, sort_keys=True).encode()).hexdigest()[:12]
        work = base.cache_dir / "regression" / f"{corpus.folder}-{key}"
        engine = Engine(base.replace(docs_dir=work / "docs", index_dir=work / R.index_folder(embedder), store="faiss"),
                        embedder=embedder, policies=DEFAULT, calibration=BEING_MEASURED, judge=None)
        for question in questions:
            add(corpus.name, engine, question.question, True)
        for item in tune:
            add(corpus.name, engine, item["question"], False)
    return rows


def logistic(rows: list[dict[str, Any]], names: tuple[str, ...] = ("margin", "cosine", "across")
             ) -> Callable[[dict[str, Any]], float]:
    """A logistic regression over the signals `names` (standardized, lightly regularized)."""
    features = lambda r: [r[name] for name in names]  # noqa: E731
    x = np.array([features(r) for r in rows])
    y = np.array([r["answerable"] for r in rows], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.1 * (z.T @ (p - y) / len(y) + 0.01 * w)
        b -= 0.1 * float((p - y).mean())
    return lambda r: float((np.array(features(r)) - mean) / scale @ w + b)


def threshold(score: Callable[[dict[str, Any]], float], rows: list[dict[str, Any]]) -> float:
    answerable = sorted(score(r) for r in rows if r["answerable"])
    return answerable[int(MAX_FALSE_ABSTENTION * len(answerable))]


def main() -> None:
    rows = collect()
    corpora = sorted({r["corpus"] for r in rows})
    totals = {name: [0, 0, 0, 0] for name in ("margin", "cosine", "learned")}
    for left_out in corpora:
        train = [r for r in rows if r["corpus"] != left_out]
        test = [r for r in rows if r["corpus"] == left_out]
        rules = {"margin": lambda r: r["margin"], "cosine": lambda r: r["cosine"], "learned": logistic(train)}
        for name, score in rules.items():
            cut = threshold(score, train)
            total = totals[name]
            total[0] += sum(1 for r in test if r["answerable"] and score(r) < cut)
            total[1] += sum(1 for r in test if r["answerable"])
            total[2] += sum(1 for r in test if not r["answerable"] and score(r) < cut)
            total[3] += sum(1 for r in test if not r["answerable"])
    print(f"{len(rows)} questions no other condition refuses, on {', '.join(corpora)}")
    print(f"{'rule':<8} {'false abstentions':>18} {'foreign refused':>16}")
    for name, (false, answerable, refused, foreign) in totals.items():
        print(f"{name:<8} {false:>8} of {answerable:<7} {refused:>6} of {foreign:<7}")
    # What a calibration fitted on every corpus would ship: each simple rule's cut over all of them.
    for name in ("margin", "cosine"):
        print(f"{name} cut over all {len(corpora)} corpora: {threshold(lambda r: r[name], rows):+.4f}")


if __name__ == "__main__":
    main()
