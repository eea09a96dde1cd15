"""A build's embedding with the machine to itself, then beside a CPU-bound process (issue 12).

The busy process takes one core of the machine's N: a build that shares the cores
gracefully takes at most N/(N-1) times as long (2x on two cores). Thread counts are
set on purpose (RAG_EMBED_THREADS, no spin-waiting); this measures what that buys.

Run: python bench/bench_contention.py [--limit 10] [--backend onnx]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BUSY = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--backend", default="onnx")
    args = parser.parse_args()

    from bench_backends import build_texts, service_public_folder

    from rag.embedding.embedder import Embedder

    texts, _ = build_texts(service_public_folder(), args.limit)
    embedder = Embedder(backend=args.backend)
    embedder.encode_passages(texts[:16])

    def timed() -> float:
        started = time.perf_counter()
        embedder.encode_passages(texts)
        return time.perf_counter() - started

    alone = min(timed(), timed())
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(1.0)
        shared = min(timed(), timed())
    finally:
        busy.kill()
        busy.wait()
    cores = os.cpu_count() or 1
    fair = cores / max(cores - 1, 1)
    print(f"{len(texts)} texts, backend {args.backend}, {embedder.threads} threads on {cores} cores")
    print(f"alone: {alone:.1f} s   beside one busy process: {shared:.1f} s   slowdown {shared / alone:.2f}x "
          f"(fair share: {fair:.2f}x)")


if __name__ == "__main__":
    main()
