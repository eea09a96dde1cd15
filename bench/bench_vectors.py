"""Vector index types as the corpus grows: build time, memory, disk, query latency, recall@10.

Vectors are perturbed copies of real embeddings (the seeds' sentences, passages and
clauses, plus the background sentences), so neighbourhoods have the clustered
shape of real data; queries are real questions of the eval set, embedded.
Recall@10 is measured against exact (flat) search on the same vectors.

Run: python bench/bench_vectors.py [--sizes 10000,100000,1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def perturbed_corpus(base: np.ndarray, n: int, noise: float, seed: int = 0) -> np.ndarray:
    """Unit vectors made of a random mix of three real embeddings plus noise: passages that
    recombine real sentences, spread over a continuum rather than a few tight clusters."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        stop = min(n, start + step)
        picks = rng.integers(0, len(base), (stop - start, 3))
        weights = rng.dirichlet(np.ones(3), stop - start).astype(np.float32)
        block = np.einsum("nk,nkd->nd", weights, base[picks])
        block += rng.normal(0, noise, block.shape).astype(np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def measure(kind: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    import faiss

    from rag.retrieve.hybrid import DENSE_PASSAGES
    from rag.index.dense import build_faiss, configure_search, search

    started = time.perf_counter()
    index = build_faiss(vectors, vectors.shape[1], kind)
    build_s = time.perf_counter() - started
    configure_search(index, kind)
    with tempfile.NamedTemporaryFile(suffix=".faiss") as handle:
        faiss.write_index(index, handle.name)
        disk = Path(handle.name).stat().st_size
    latencies, found, reranked = [], [], []
    for query in queries:
        t0 = time.perf_counter()
        # As the pipeline does: DENSE_PASSAGES candidates from the index, scored exactly.
        _, ids = search(index, query[None, :], DENSE_PASSAGES)
        candidates = ids[0]
        exact = vectors[candidates] @ query
        best = candidates[np.argsort(-exact)[:10]]
        latencies.append((time.perf_counter() - t0) * 1000)
        found.append(candidates[:10])
        reranked.append(best)
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
    recall_reranked = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(reranked, truth)]))
    return {"build_s": build_s, "disk_mb": disk / 2**20, "query_ms_p50": statistics.median(latencies),
            "query_ms_p95": sorted(latencies)[int(0.95 * len(latencies)) - 1], "recall@10": recall,
            "recall@10_reranked": recall_reranked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--kinds", default="flat,hnsw,ivf")
    parser.add_argument("--json")
    args = parser.parse_args()

    import faiss

    from rag.config import Settings
    from rag.retrieve.hybrid import DENSE_PASSAGES
    from rag.answer.background import background_sentences
    from rag.engine import Engine
    from rag.evaluate import load_questions

    engine = Engine(Settings.resolve())
    index = engine.index
    base = np.vstack([index.sentence_vectors, index.passage_vectors, index.clause_vectors,
                      engine.embedder.encode_passages(list(background_sentences()))])
    questions = [i["question"] for i in load_questions([ROOT / "eval" / "dev.jsonl", ROOT / "eval" / "own.jsonl"])]
    queries = engine.embedder.encode_queries(questions)
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        vectors = perturbed_corpus(base, n, noise=0.03)
        exact = faiss.IndexFlatIP(vectors.shape[1])
        exact.add(vectors)
        _, truth = exact.search(queries, 10)
        for kind in args.kinds.split(","):
            row = {"n": n, "kind": kind, **measure(kind, vectors, queries, truth)}
            results.append(row)
            print(f"{n:>9} {kind:<5} build {row['build_s']:7.1f} s  disk {row['disk_mb']:8.1f} MB  "
                  f"query+rerank p50 {row['query_ms_p50']:7.2f} ms  p95 {row['query_ms_p95']:7.2f} ms  "
                  f"recall@10 raw {row['recall@10']:.3f}  after exact rerank of {DENSE_PASSAGES} "
                  f"{row['recall@10_reranked']:.3f}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
