"""One huge one-paragraph file, built alone: time per stage and peak memory, by size (issue 27).

Each size is built in a fresh child process (real model, real FAISS) from a folder holding one
`.txt` file of that many bytes on one line: words with no sentence end (`--kind words`), or a
base64 line (`--kind base64`). The child reports when each build stage began; the parent reads
the child's peak resident memory from the kernel (wait4). Splitting must grow linearly with the
size, and peak memory must stay bounded.

    .venv/bin/python bench/bench_bigfile.py --sizes 65536 262144 1048576 --kind words
    .venv/bin/python bench/bench_bigfile.py --sizes 1048576 --kind base64 --split-only
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("les marques investiront davantage dans le social commerce et les créateurs suivront le mouvement "
         "pendant que les plateformes testent de nouveaux formats publicitaires").split()

CHILD = r"""
import json, sys, time
from pathlib import Path
from rag.config import Settings
docs, index, split_only = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
marks = {}
def progress(stage, done, total):
    marks.setdefault(stage, time.perf_counter())
started = time.perf_counter()
settings = Settings.resolve(docs_dir=docs, index_dir=index)
if split_only:
    from rag.index.build import read_folder
    from rag.index.plan import chunk_settings, plan_documents
    raws, skipped = read_folder(docs, settings, progress)
    planned = plan_documents(raws, chunk_settings(settings), "bench", skipped, progress)
    marks["embedding"] = time.perf_counter()
    counts = [sum(p.counts) for p in planned]
    texts = sum(counts)
else:
    from rag.embedding.embedder import Embedder
    from rag.index.build import build
    embedder = Embedder(model=settings.model, cache_dir=settings.cache_dir, adapter=settings.embed_adapter)
    embedder.info
    started = time.perf_counter()
    report = build(docs, index, embedder, progress=progress, settings=settings)
    texts = report.embedded_texts
end = time.perf_counter()
stages = {k: v - started for k, v in marks.items()}
print(json.dumps({"split_s": stages.get("embedding", end - started) - stages.get("splitting", 0.0),
                  "total_s": end - started, "texts": texts}))
"""


def one_line(size: int, kind: str) -> str:
    if kind == "base64":
        return base64.b64encode(random.Random(size).randbytes(size * 3 // 4 + 3)).decode()[:size]
    rng, out, length = random.Random(size), [], 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


def measure(size: int, kind: str, split_only: bool) -> dict:
    with tempfile.TemporaryDirectory() as work:
        docs = Path(work) / "docs"
        docs.mkdir()
        (docs / "big.txt").write_text(one_line(size, kind) + "\n", encoding="utf-8")
        process = subprocess.Popen([sys.executable, "-c", CHILD, str(docs), str(Path(work) / "index"),
                                    "1" if split_only else "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the build of {size} bytes failed")
        return {**json.loads(out.strip().splitlines()[-1]), "peak_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[65536, 262144, 1048576, 4194304, 16777216])
    parser.add_argument("--kind", choices=("words", "base64"), default="words")
    parser.add_argument("--split-only", action="store_true", help="read and split, embed nothing")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| size | split s | s per MB split | total s | texts embedded | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        row = measure(size, args.kind, args.split_only)
        mb = size / 2**20
        print(f"| {mb:g} MB | {row['split_s']:.1f} | {row['split_s'] / mb:.1f} | {row['total_s']:.1f} | "
              f"{row['texts']} | {row['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
