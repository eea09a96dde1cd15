"""Choose LoRA's rank and target layers on the *training* half alone: train on three quarters of its
articles, measure on the last quarter (a second fixed hash), for each configuration given.

    python bench/train_choice.py --steps 80 rank=8,targets=all-linear rank=16,targets=attention

Prints, per configuration, sentence_first and paragraph_first on the validation quarter, the steps per
second and the adapter's size. The held-out half of train/ is never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def quarters(qa, keep_validation: bool):
    from rag.learn.examples import Example, QASet

    kept = [i for i, p in enumerate(qa.paragraphs)
            if (hashlib.sha256(f"validation {p.corpus} {p.article}".encode()).digest()[0] % 4 == 0) == keep_validation]
    renumber = {old: new for new, old in enumerate(kept)}
    return QASet(tuple(qa.paragraphs[i] for i in kept),
                 tuple(Example(e.question, renumber[e.paragraph], e.positive, e.answer)
                       for e in qa.examples if e.paragraph in renumber))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="key=value,key=value of TrainSettings fields")
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()

    from rag.config import Settings
    from rag.learn.run import default_base, measured, training_data
    from rag.learn.trainer import TrainSettings, load_base, train

    qa, _ = training_data(ROOT / "train")
    fit, validation = quarters(qa.half("train"), False), quarters(qa.half("train"), True)
    base = default_base(Settings.resolve().cache_dir)
    print(f"fit: {len(fit.examples)} questions, validation: {len(validation.examples)}")
    tokenizer, model = load_base(base.folder)
    print("base", measured(model, tokenizer, validation), flush=True)
    for config in args.configs:
        given = dict(item.split("=") for item in config.split(","))
        fields = TrainSettings.__dataclass_fields__
        settings = TrainSettings(max_steps=args.steps, **{k: fields[k].type == "int" and int(v) or
                                                          fields[k].type == "float" and float(v) or v
                                                          for k, v in given.items()})
        started = time.perf_counter()
        trained = train(fit, base.folder, settings, progress=False, log=lambda line: None)
        size = sum(p.numel() for p in trained.model.parameters() if p.requires_grad) * 4 / 1e6
        print(config, measured(trained.model, trained.tokenizer, validation),
              f"{trained.record['seconds_per_step']} s/step", f"{size:.2f} MB fp32",
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
