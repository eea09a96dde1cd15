"""Readers' ratings as training data, measured: what `rag train --feedback` gains on a collection's held-out half.

A reader who checks each quote in its document likes an answer that quotes the right passage and marks
the others "citation fausse". This script plays that reader on the development halves of the regression
table's collections (`bench/regression.py`; their held-out halves ask about other sections or pages of the
same collections, which no rating touches) and writes the ratings as the chat writes them:

    python bench/feedback_gain.py --out build/feedback/ratings.jsonl
    rag train --feedback build/feedback/ratings.jsonl --out build/adapters/feedback
    RAG_EMBED_ADAPTER=build/adapters/feedback rag calibrate   # a new model must be calibrated to be opened
    RAG_EMBED_ADAPTER=build/adapters/feedback python bench/regression.py --threshold T --out …

then compare against the adapter trained on train/ alone, at the same margin (BENCHMARKS, "Readers'
ratings"). Only the development halves are asked here; Wikipedia (train/'s own held-out articles) and
service-public are never rated.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

RATED = ("faq-pages", "manpages", "debian-faq", "edu-fr", "edu-en")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the ratings file to write (replaced)")
    parser.add_argument("--sets", nargs="*", default=list(RATED), help="collections whose development half is rated")
    args = parser.parse_args()

    import regression
    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.evaluate.feedback import LIKE, WRONG_QUOTE, Rating, record
    from rag.evaluate.squad import judge_squad, load_squad
    from rag.policy import DEFAULT

    base = Settings.resolve()
    embedder = Embedder(model=base.model, cache_dir=base.cache_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.unlink(missing_ok=True)
    counts: Counter[tuple[str, str]] = Counter()
    for corpus in regression.CORPORA:
        if corpus.name not in args.sets:
            continue
        regression.ensure_files(corpus)
        documents, questions = load_squad(dict(corpus.files)["dev"])
        engine = regression.corpus_engine(corpus, documents, embedder, base, DEFAULT)
        index = engine.open()
        texts = {doc_id: index.document_text(doc_id) for doc_id in index.documents}
        for item in questions:
            answer = engine.ask(item.question)
            if answer.abstained:
                counts[corpus.name, "refused"] += 1
                continue  # nothing quoted: the reader has nothing to check
            rating = LIKE if judge_squad(item, answer, texts).span_hit else WRONG_QUOTE
            record(args.out, Rating(item.question, (), rating, answer.to_json()))
            counts[corpus.name, rating] += 1
    for name in args.sets:
        print(f"{name}: {counts[name, LIKE]} liked, {counts[name, WRONG_QUOTE]} wrong quote, "
              f"{counts[name, 'refused']} refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
