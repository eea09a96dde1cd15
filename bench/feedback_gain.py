"""Readers' ratings as training data, measured: what `rag train --feedback` gains on a collection's held-out half.

A reader who checks each quote in its document likes an answer that quotes the right passage. When it
does not, the reader reads the documents the answer cites (its quotes', or a refusal's closest passages')
and points at the sentence that answers, when one of them holds it (a correction, as the chat's "La réponse
est ailleurs ?" list records it); else marks the answer "citation fausse" (`--no-corrections`: never
points). This script plays that reader on the development halves of the regression
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

RATED = ("faq-pages", "manpages", "debian-faq", "edu-fr", "edu-en")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the ratings file to write (replaced)")
    parser.add_argument("--sets", nargs="*", default=list(RATED), help="collections whose development half is rated")
    parser.add_argument("--no-corrections", action="store_true",
                        help="the reader never points at the answering sentence (likes and wrong quotes only)")
    args = parser.parse_args()

    import regression
    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.evaluate.feedback import CORRECTED, LIKE, WRONG_QUOTE, Rating, correction_of, record, shown_passages
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
            shown = answer.to_json()
            if not answer.abstained and judge_squad(item, answer, texts).span_hit:
                record(args.out, Rating(item.question, (), LIKE, shown))
                counts[corpus.name, LIKE] += 1
                continue
            passages = [] if args.no_corrections else shown_passages(answer, index)
            pointed = holding_sentence(passages, answer, item)
            if pointed is not None:
                record(args.out, Rating(item.question, (), CORRECTED, shown, answering=correction_of(passages, pointed)))
                counts[corpus.name, CORRECTED] += 1
            elif answer.abstained:
                counts[corpus.name, "refused"] += 1  # no passage shown holds it: the reader has nothing to give
            else:
                record(args.out, Rating(item.question, (), WRONG_QUOTE, shown))
                counts[corpus.name, WRONG_QUOTE] += 1
    for name in args.sets:
        print(f"{name}: {counts[name, LIKE]} liked, {counts[name, CORRECTED]} corrected, "
              f"{counts[name, WRONG_QUOTE]} wrong quote, {counts[name, 'refused']} refused and not corrected")
    return 0


def holding_sentence(passages: list[Any], answer: Any, item: Any) -> str | None:
    """The choice (as the chat's list gives it) of the first shown sentence that overlaps the gold span."""
    from rag.evaluate.feedback import choice_value

    documents = {c.n: c.document for c in answer.citations}
    for passage in passages:
        if documents.get(passage.citation) == item.source:
            for start, end in passage.sentences:
                if start < item.answer_end and item.answer_start < end:
                    return choice_value(passage.citation, start, end)
    return None


if __name__ == "__main__":
    sys.exit(main())
