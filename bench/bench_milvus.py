"""FAISS in the app process against Milvus through a loopback server, on the growth corpora.

For each size (synthetic corpora of bench_growth.py: the seeds' real sentences
recombined, their real vectors plus noise), the same index is written once as
FAISS files and once into a `milvus-lite server` on 127.0.0.1. Then fresh *app
processes* open each store and answer the eval questions (dev + own, twice):

  - build: time to write each store; load: time for an app process to open it
  - answer latency p50/p95 per stage, in the app process
  - app-process RSS after answering (VmRSS, and its peak VmHWM); the Milvus
    server's own RSS is reported apart
  - recall@10 of the passage search against exact search on the same vectors
  - answers/s with 16 simultaneous users split over two app processes (8 threads each)

Milvus Lite is a pure-Python engine on this same 2-core machine: its figures show
the client path and the app-process memory, not what a Milvus cluster serves.

Run: python bench/bench_milvus.py [--sizes 100000,1000000] [--seconds 30] [--json build/bench/milvus.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
STAGES = ("embed", "dense_search", "lexical_search", "fusion", "selection", "total")


def status_mb(pid: int | str = "self") -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def questions() -> list[tuple[str, list[str] | None]]:
    from rag.evaluate import load_questions

    items = load_questions([ROOT / "eval" / "dev.jsonl", ROOT / "eval" / "own.jsonl"])
    return [(i["question"], i.get("history")) for i in items]


# ---------------------------------------------------------------- the app process

def app(args: argparse.Namespace) -> None:
    """Open one store like `rag serve` would, answer, measure; print one JSON line."""
    from rag.config import Settings
    from rag.engine import Engine, ready_for_questions

    settings = Settings.resolve(index_dir=args.index_dir, store=args.store, milvus_uri=args.uri or None,
                                milvus_collection=args.prefix or None, embed_threads=1)
    engine = Engine(settings)
    engine.embedder.info  # the model first: its load time is not the store's
    started = time.perf_counter()
    if args.store == "milvus":
        from rag.index.milvus import connect, open_served

        index = open_served(connect(settings))
    else:
        from rag.index.store import load

        index = load(Path(args.index_dir), verify=False)
    engine._index = ready_for_questions(index)
    load_s = time.perf_counter() - started
    asked = questions()
    engine.ask(*asked[0])
    per_stage: dict[str, list[float]] = {}
    # The latency pass belongs to the single process; users in pairs start together, not minutes apart.
    for question, history in [] if args.threads else asked * 2:
        for stage, ms in engine.ask(question, history).timings_ms.items():
            per_stage.setdefault(stage, []).append(ms)
    row = {"load_s": load_s, **status_mb()}
    for stage in STAGES:
        values = sorted(per_stage.get(stage, [0.0]))
        row[f"{stage}_p50_ms"] = statistics.median(values)
        row[f"{stage}_p95_ms"] = values[int(0.95 * len(values)) - 1]
    if args.recall:
        vectors = np.load(args.recall)
        exact = np.load(args.recall.replace(".npy", "-exact.npy"))
        found = [set(index.search_passages(v, 10)[1].tolist()) for v in vectors]
        row["recall_at_10"] = float(np.mean([len(f & set(e.tolist())) / 10 for f, e in zip(found, exact)]))
    if args.threads:
        while time.time() < args.start_at:
            time.sleep(0.01)
        stop = time.time() + args.seconds
        counts = [0] * args.threads

        def user(n: int) -> None:
            k = n
            while time.time() < stop:
                engine.ask(*asked[k % len(asked)])
                counts[n] += 1
                k += args.threads

        threads = [threading.Thread(target=user, args=(n,)) for n in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        row["answers"] = sum(counts)
        row["answers_per_s"] = sum(counts) / args.seconds
    row.update({f"end_{k}": v for k, v in status_mb().items()})
    print("RESULT " + json.dumps(row), flush=True)


def run_apps(common: list[str], count: int, threads: int, seconds: int, recall: str = "") -> list[dict]:
    start_at = time.time() + 90 if threads else 0  # both processes load, then start together
    processes = [subprocess.Popen([sys.executable, __file__, "--app", *common, "--threads", str(threads),
                                   "--seconds", str(seconds), "--start-at", str(start_at)]
                                  + (["--recall", recall] if recall and n == 0 else []),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(count)]
    rows = []
    for process in processes:
        out, err = process.communicate()
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        if not lines:
            raise RuntimeError(f"app process failed: {err[-3000:]}")
        rows.append(json.loads(lines[-1][len("RESULT "):]))
    return rows


# ---------------------------------------------------------------- the corpus

def write_both(index, folder: Path, uri: str, prefix: str) -> dict[str, float]:
    from bench_growth import write_index
    from rag.index import milvus
    from rag.index.targets import NewVersion

    timings = {}
    started = time.perf_counter()
    manifest = {**index.manifest, "format_version": 1, "chunking": {}, "documents": []}
    write_index(index, folder, manifest)
    timings["faiss_write_s"] = time.perf_counter() - started
    started = time.perf_counter()
    connection = milvus.Connection(uri, "", prefix)
    data = NewVersion(manifest=manifest, documents=list(index.documents.values()), passages=index.passages,
                      sentences=index.sentences, passage_vectors=np.asarray(index.passage_vectors),
                      sentence_vectors=np.asarray(index.sentence_vectors),
                      clause_vectors=np.asarray(index.clause_vectors), clause_sentence=index.clause_sentence,
                      passage_lexical=index.passage_bm25, sentence_lexical=index.sentence_bm25,
                      faiss_kind=manifest["faiss"]["passages"])
    milvus.write_version(connection, data)
    timings["milvus_write_s"] = time.perf_counter() - started
    return timings


def recall_queries(index, folder: Path) -> str:
    """The questions' vectors and their exact top-10 passages, for recall@10 in the app process."""
    from rag.embedding.embedder import Embedder

    embedder = Embedder()
    vectors = embedder.encode_queries([q for q, _ in questions()])
    passages = np.asarray(index.passage_vectors)
    exact = np.argsort(-(vectors @ passages.T), axis=1)[:, :10]
    path = folder / "recall.npy"
    np.save(path, vectors)
    np.save(folder / "recall-exact.npy", exact)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "milvus.json"))
    parser.add_argument("--workdir", default="", help="keep each size's stores here (DIR/<size>/) and reuse them "
                        "on the next run instead of writing them again (Milvus Lite takes minutes at 100k)")
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", default="faiss", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--uri", default="", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--recall", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app:
        return app(args)

    from bench_growth import synthetic_index
    from milvus_equivalence import start_server
    from rag.config import Settings
    from rag.engine import Engine

    real = Engine(Settings.resolve())
    real.open()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as temporary:
            scratch = Path(args.workdir) / str(n) if args.workdir else Path(temporary)
            scratch.mkdir(parents=True, exist_ok=True)
            written = scratch / "written.json"
            server, uri = start_server(scratch / "milvus")
            try:
                started = time.perf_counter()
                index, _, kind = synthetic_index(real.index, n)
                row = {"passages": n, "sentences": index.sentence_count, "clauses": len(index.clause_sentence),
                       "faiss_kind": kind, "assemble_s": time.perf_counter() - started}
                if written.exists():  # the same synthetic corpus (fixed seed), written by an earlier run
                    row.update({**json.loads(written.read_text()), "stores_from_an_earlier_run": True})
                else:
                    row.update(write_both(index, scratch / "faiss", uri, "bench"))
                    written.write_text(json.dumps({k: row[k] for k in ("faiss_write_s", "milvus_write_s")}))
                recall = recall_queries(index, scratch)
                index = None
                row["milvus_server_mb_after_write"] = status_mb(server.pid)["VmRSS"]
                print(f"{n}: written (FAISS {row['faiss_write_s']:.0f} s, Milvus {row['milvus_write_s']:.0f} s)",
                      flush=True)
                for store, common in (("faiss", ["--store", "faiss", "--index-dir", str(scratch / "faiss")]),
                                      ("milvus", ["--store", "milvus", "--index-dir", str(scratch / "local"),
                                                  "--uri", uri, "--prefix", "bench"])):
                    single = run_apps(common, 1, 0, 0, recall)[0]
                    row[store] = single
                    if store == "faiss" and single["VmRSS"] * 2 > 0.8 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20:
                        row[store + "_two_processes"] = "not run: two copies of the index do not fit in memory"
                    else:
                        pair = run_apps(common, 2, 8, args.seconds)
                        row[store + "_two_processes"] = {
                            "answers_per_s": sum(p["answers_per_s"] for p in pair),
                            "rss_mb_each": [p["end_VmRSS"] for p in pair]}
                    print(f"{n} {store}: " + json.dumps({k: (round(v, 2) if isinstance(v, float) else v)
                                                          for k, v in single.items()}), flush=True)
                    print(f"{n} {store} two processes × 8 users: {row[store + '_two_processes']}", flush=True)
                row["milvus_server_mb_end"] = status_mb(server.pid)["VmRSS"]
            finally:
                server.terminate()
                server.wait(60)
        results.append(row)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
