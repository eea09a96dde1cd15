"""The scale of a model's cosines, and how it ranks, on the held-out half of train/: base against adapters.

    python bench/cosine_scale.py rag/data/adapter OTHER_ADAPTER_FOLDER …

For the base model and each adapter merged into it (the ONNX embedder, as answering runs it), prints
`rag.learn.measure.rank` on train/'s held-out half, its questions as asked and put into the other language
(train/questions-translated.json): sentence first, paragraph first, the mean and per-question spread of
question–sentence cosines, and the language gap. Every weight and margin of the answer stage is
written in the base model's scale; an adapter that spreads its cosines changes what they mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapters", nargs="*", help="adapter folders (peft's layout) trained on the built-in model")
    args = parser.parse_args()

    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.learn.measure import rank
    from rag.learn.run import training_data, translations

    settings = Settings.resolve()
    heldout = training_data(ROOT / "train")[0].half("heldout")
    across = heldout.translated(translations(ROOT / "train")[0])
    print(f"train/ held-out half: {len(heldout.examples)} questions on {len(heldout.paragraphs)} paragraphs; "
          f"the same questions in the other language: {len(across.examples)}")
    for adapter in ["none", *args.adapters]:
        embedder = Embedder(model=settings.model, cache_dir=settings.cache_dir, adapter=adapter)
        for name, qa in (("as asked", heldout), ("translated", across)):
            print(embedder.model_id, name, rank(qa, embedder.encode_queries, embedder.encode_passages).as_dict(),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
