"""Warm answer latency per stage, index build throughput, and a naive baseline, in one run.

- Warm latency: every eval question, three passes; per stage p50/p95 (median of the
  passes, with min and max), beside the question embedding alone (the floor).
- Build: the seeds indexed from scratch (model already loaded): documents and
  sentences per second, peak RSS of the process.
- Naive baseline, measured in the same run: flat dense search over fixed-size
  500-character chunks of the raw files, answer = the top chunk. Same questions,
  same model; quality and latency reported as ratios.

Run: python bench/bench_answers.py [--json build/bench/answers.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSES = 3
CHUNK = 500


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def naive_baseline(embedder, docs_dir: Path, items: list[dict]) -> dict[str, object]:
    import faiss

    chunks = []
    for path in sorted(docs_dir.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        chunks += [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    vectors = embedder.encode_passages(chunks)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    hits = correct = 0
    answerable = [i for i in items if i.get("answerable", True) is not False and i.get("evidence")]
    latencies = []
    for item in items:
        started = time.perf_counter()
        question = " ".join((item.get("history") or []) + [item["question"]])
        _, ids = index.search(embedder.encode_queries([question]), 1)
        latencies.append((time.perf_counter() - started) * 1000)
        if item in answerable:
            top = chunks[int(ids[0][0])]
            hits += item["evidence"] in top
            correct += any(a in top for a in item.get("answer", []))
    return {"chunks": len(chunks), "hit@1": hits / len(answerable), "answer_accuracy": correct / len(answerable),
            "abstention_recall": 0.0, "latency_ms_p50": statistics.median(latencies),
            "latency_ms_p95": percentile(latencies, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "answers.json"))
    args = parser.parse_args()

    from rag.index.build import build
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate import evaluate, load_questions

    items = load_questions([ROOT / "eval" / "dev.jsonl", ROOT / "eval" / "own.jsonl"])
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings.resolve(index_dir=scratch)
        engine = Engine(settings)
        engine.embedder.encode_queries(["warm-up"])
        started = time.perf_counter()
        report = build(settings.docs_dir, settings.index_dir, engine.embedder)
        build_s = time.perf_counter() - started
        engine.warm_up()

        stage_runs: dict[str, list[float]] = {}
        quality = None
        for _ in range(PASSES):
            outcomes, quality = evaluate(engine, items)
            per_stage: dict[str, list[float]] = {}
            for outcome in outcomes:
                for stage, ms in outcome.answer.timings_ms.items():
                    per_stage.setdefault(stage, []).append(ms)
            for stage, values in per_stage.items():
                stage_runs.setdefault(f"{stage}_p50", []).append(statistics.median(values))
                stage_runs.setdefault(f"{stage}_p95", []).append(percentile(values, 0.95))
        floor_runs = []
        for _ in range(PASSES):
            times = []
            for item in items:
                t0 = time.perf_counter()
                engine.embedder.encode_queries([item["question"]])
                times.append((time.perf_counter() - t0) * 1000)
            floor_runs.append(statistics.median(times))
        baseline = naive_baseline(engine.embedder, settings.docs_dir, items)

    latency = {key: spread(values) for key, values in stage_runs.items()}
    floor = spread(floor_runs)
    figures = {
        "questions": len(items),
        "latency_ms": latency,
        "embedding_alone_ms_p50": floor,
        "ratio_total_to_embedding": latency["total_p50"]["median"] / floor["median"],
        "build": {"seconds": build_s, "documents": report.documents, "sentences": report.sentences,
                  "passages": report.passages, "documents_per_s": report.documents / build_s,
                  "sentences_per_s": report.sentences / build_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "ours": {k: quality["all"][k] for k in ("hit@1", "answer_accuracy", "abstention_recall", "faithfulness")},
        "baseline": baseline,
    }
    figures["ratios"] = {
        "answer_accuracy": figures["ours"]["answer_accuracy"] / max(baseline["answer_accuracy"], 1e-9),
        "latency_p50": latency["total_p50"]["median"] / baseline["latency_ms_p50"],
    }
    print(f"warm latency over {len(items)} questions × {PASSES} passes (median [min–max] of the passes, ms):")
    for stage in ("normalize", "embed", "dense_search", "lexical_search", "fusion", "selection", "formatting", "total"):
        p50, p95 = latency[f"{stage}_p50"], latency[f"{stage}_p95"]
        print(f"  {stage:<15} p50 {p50['median']:7.2f} [{p50['min']:.2f}–{p50['max']:.2f}]   "
              f"p95 {p95['median']:7.2f} [{p95['min']:.2f}–{p95['max']:.2f}]")
    print(f"  question embedding alone p50 {floor['median']:.2f} [{floor['min']:.2f}–{floor['max']:.2f}]"
          f"  → total / embedding = {figures['ratio_total_to_embedding']:.2f}")
    b = figures["build"]
    print(f"build: {b['documents']} documents, {b['sentences']} sentences in {b['seconds']:.2f} s "
          f"({b['documents_per_s']:.2f} docs/s, {b['sentences_per_s']:.1f} sentences/s), peak RSS {b['peak_rss_mb']:.0f} MB")
    print(f"{'':<22}{'ours':>10}{'baseline':>10}")
    for key in ("hit@1", "answer_accuracy", "abstention_recall"):
        print(f"{key:<22}{figures['ours'][key]:>10.1%}{baseline[key]:>10.1%}")
    print(f"{'latency p50 (ms)':<22}{latency['total_p50']['median']:>10.2f}{baseline['latency_ms_p50']:>10.2f}")
    print(f"ratios: accuracy ×{figures['ratios']['answer_accuracy']:.2f}, latency ×{figures['ratios']['latency_p50']:.2f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
