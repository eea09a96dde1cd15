"""What a cross-encoder reranker would cost before it ranks anything: the model's forward pass over the
question paired with each of the top candidates, against the one pass over the question a bi-encoder makes.

    python bench/bench_rerank_cost.py --candidates 10 20 40 --repeat 30

A cross-encoder on the same base reads "question + candidate" once per candidate, so its cost is at
least this forward pass (its scoring head is a single layer). The questions are eval/'s, the candidates
the seeds' sentences (their real lengths). Prints p50 and p90 in milliseconds,
measured side by side in one process; the answer stage's bar for a reranker is p50 ≤ 80 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, nargs="*", default=[10, 20, 40])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    import tempfile

    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.labelled import load_questions

    questions = [item["question"] for item in load_questions(sorted((ROOT / "eval").glob("*.jsonl")))]
    with tempfile.TemporaryDirectory() as scratch:
        engine = Engine(Settings.resolve(docs_dir=ROOT / "seeds", index_dir=Path(scratch) / "index", store="faiss"))
        index = engine.open()
        embedder = engine.embedder
        # Sentence-sized candidates, as the index ranks them (40 to 300 characters).
        sentences = [t.strip() for doc in index.documents for line in index.document_text(doc).splitlines()
                     for t in line.split(". ") if 40 <= len(t.strip()) <= 300]
        embedder.encode_queries(["warm-up"])
        single, paired = [], {n: [] for n in args.candidates}
        for i in range(args.repeat):
            question = questions[i % len(questions)]
            started = time.perf_counter()
            embedder.encode_queries([question + f" {i}"])  # a new text each time: no cache
            single.append(1000 * (time.perf_counter() - started))
            for n in args.candidates:
                pairs = [f"{question} {i} {sentences[(i + k) % len(sentences)]}" for k in range(n)]
                started = time.perf_counter()
                embedder.encode_passages(pairs)
                paired[n].append(1000 * (time.perf_counter() - started))
    print(f"model: {embedder.model_id}; {args.repeat} questions")
    print(f"question alone (bi-encoder): p50 {statistics.median(single):.1f} ms, p90 {percentile(single, 0.9):.1f} ms")
    for n, times in paired.items():
        print(f"question + each of {n} candidates (cross-encoder pass): p50 {statistics.median(times):.1f} ms, "
              f"p90 {percentile(times, 0.9):.1f} ms ({statistics.median(times) / statistics.median(single):.1f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
