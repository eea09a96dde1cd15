"""A whole build with the model loaded and an empty index (issue 12): the service-public fiches by default.

Run: python bench/bench_build.py [--docs DIR]
Prints documents, passages, sentences, texts and seconds; never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, help="documents folder (default: the service-public contexts)")
    args = parser.parse_args()

    from bench_backends import service_public_folder

    from rag.embedding.embedder import Embedder
    from rag.index.build import build

    docs = args.docs or service_public_folder()
    embedder = Embedder()
    embedder.encode_queries(["warm-up"])  # the model is loaded before the clock starts
    with tempfile.TemporaryDirectory() as index_dir:
        started = time.perf_counter()
        report = build(docs, Path(index_dir), embedder)
        seconds = time.perf_counter() - started
    print(f"{report.documents} documents, {report.passages} passages, {report.sentences} sentences, "
          f"{report.embedded_texts} distinct texts embedded, {len(report.skipped)} skipped: {seconds:.1f} s "
          f"({report.embedded_texts / seconds:.0f} texts/s), backend {embedder.backend}")


if __name__ == "__main__":
    main()
