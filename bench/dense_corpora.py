"""Plain cosines on the development corpora, no rule: how the model in use ranks, before the answer stage.

For each development half of bench/regression.py's SQuAD corpora (never service-public), with the
index the regression table built for this model:
- `sentence first`: the sentence of the gold document closest to the question overlaps the gold span;
- `document first`: the closest sentence of the whole collection lies in the gold document.
Set beside the regression table, it tells whether a model's gain is lost in the fusion and the rules.

Run: [RAG_EMBED_ADAPTER=…] python bench/dense_corpora.py  (after bench/regression.py --dev, which builds the indexes)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    import regression as R
    from rag.answer.calibration import BEING_MEASURED
    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.engine import Engine
    from rag.evaluate.squad import load_squad

    base = Settings.resolve()
    embedder = Embedder(model=base.model, cache_dir=base.cache_dir, adapter=base.embed_adapter)
    print(embedder.model_id)
    for corpus in R.CORPORA:
        if corpus.name == "service-public":
            continue
        R.ensure_files(corpus)
        documents, questions = next(load_squad(path) for half, path in corpus.files if half == "dev")
        key = hashlib.sha256(json.dumps(documents, sort_keys=True).encode()).hexdigest()[:12]
        work = base.cache_dir / "regression" / f"{corpus.folder}-{key}"
        engine = Engine(base.replace(docs_dir=work / "docs", index_dir=work / R.index_folder(embedder), store="faiss"),
                        embedder=embedder, calibration=BEING_MEASURED)
        index = engine.open()
        gold_of = {document.source: doc_id for doc_id, document in index.documents.items()}
        sentences = index.sentences_by_id(list(range(index.sentence_count)))
        owners = np.array([s.doc_id for s in sentences])
        vectors = index.sentence_vectors_of(list(range(index.sentence_count)))
        scores = vectors @ embedder.encode_queries([q.question for q in questions]).T
        sentence_first = document_first = 0
        for column, question in zip(scores.T, questions):
            gold = gold_of[question.source]
            inside = np.flatnonzero(owners == gold)
            if inside.size:  # a document with no quotable sentence can hold no first one
                best = sentences[int(inside[np.argmax(column[inside])])]
                sentence_first += best.start < question.answer_end and question.answer_start < best.end
            document_first += owners[int(np.argmax(column))] == gold
        n = len(questions)
        print(f"{corpus.name:<11} {n:>4} questions  sentence first {sentence_first / n:6.1%}  "
              f"document first {document_first / n:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
