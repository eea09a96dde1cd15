"""Contrastive fine-tuning of the embedding model on QA examples: LoRA (the shipped adapter) or every
transformer layer with the word embeddings frozen (the reference LoRA is measured against).

Each step takes `batch_size` questions; each question must pick its answering sentence out of every
sentence of the batch: the other questions' answers, its paragraph's other sentences, and the sentences
of other paragraphs the base model ranks highest (mined once, before training, with the answer's text
kept out). A sentence that is another question's answer *and* equal to this one's is not a negative.

Deterministic for a seed on one machine: the order, the sampled negatives and torch's generator all
come from it. torch, transformers and peft are imported here, only when training.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .examples import QASet

# Every linear layer of every transformer block (never the word embeddings, the pooler or the norms).
BLOCK_LINEARS = r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
ATTENTION_ONLY = r".*encoder\.layer\.\d+\.attention\.self\.(query|key|value)"
TARGETS = {"all-linear": BLOCK_LINEARS, "attention": ATTENTION_ONLY}
QUERY_PROMPT, PASSAGE_PROMPT = "query: ", "passage: "


@dataclass(frozen=True)
class TrainSettings:
    """How one training run goes. Defaults: the shipped adapter's run (see rag/data/adapter/training.json)."""

    method: str = "lora"  # "lora", or "full": every transformer layer, the word-embedding table frozen
    rank: int = 8
    alpha: int = 16
    targets: str = "all-linear"  # a key of TARGETS
    learning_rate: float = 3e-4
    epochs: float = 1.0
    batch_size: int = 16
    paragraph_negatives: int = 1
    mined_negatives: int = 1
    # multilingual-e5 was trained at 0.01, which packs its cosines into a narrow band; every margin
    # and weight of the answer stage is written in that scale. At 0.05 the model spread them 4.2
    # times (train/'s held-out half: mean 0.75 → 0.08; bench/cosine_scale.py), and those numbers no
    # longer meant what they were measured as.
    temperature: float = 0.01
    max_tokens: int = 128
    warmup: float = 0.1  # share of the steps
    seed: int = 0
    max_steps: int = 0  # 0: as many as the epochs make
    # Each question also asked in the other language (train/questions-translated.json, by Apertium), its
    # answer the same sentence: the pairs across languages the first adapter never saw.
    translated_questions: bool = True
    # Each reader's rating (`rag train --feedback`) taken this many times: taken once, a collection's few
    # dozen corrections among train/'s three thousand pairs moved little; five times, the rated questions
    # are learned, not the collection's other questions (BENCHMARKS, "Ratings taken five times").
    feedback_repeat: int = 1
    # Trained for the model that answers: the loss reads the base model's vector and the adapted one side
    # by side (each ×√½, `Embedder.beside`), so a cosine is the mean of both, as in the chat. The base
    # half is fixed (embedded once, before the first step); the adapter learns what the base gets wrong.
    beside: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ConfigError(f"method must be lora or full, got {self.method!r}")
        if self.targets not in TARGETS:
            raise ConfigError(f"targets must be one of {', '.join(TARGETS)}, got {self.targets!r}")
        for name in ("rank", "alpha", "batch_size", "max_tokens", "feedback_repeat"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.beside and self.method != "lora":
            raise ConfigError("beside trains an adapter to work next to the base model: it needs method lora")
        if not 0 < self.learning_rate < 1 or self.epochs <= 0 or self.temperature <= 0:
            raise ConfigError("learning_rate must be in (0, 1), epochs and temperature above 0")


@dataclass(frozen=True)
class Triple:
    question: str
    positive: str
    negatives: tuple[str, ...]


@dataclass
class Trained:
    """What a run leaves: the model (peft-wrapped for LoRA), and its record."""

    model: Any
    tokenizer: Any
    record: dict[str, Any] = field(default_factory=dict)


def load_base(folder: Path) -> tuple[Any, Any]:
    """(tokenizer, BertModel) of a sentence-transformers folder, in float32, on the CPU."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
    return tokenizer, model


def embed(model: Any, tokenizer: Any, texts: Sequence[str], prompt: str, max_tokens: int) -> Any:
    """Mean-pooled, unit-length vectors (a torch tensor, with gradients when the caller allows them)."""
    import torch

    batch = tokenizer([prompt + t for t in texts], padding=True, truncation=True, max_length=max_tokens,
                      return_tensors="pt")
    hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def encoder(model: Any, tokenizer: Any, prompt: str, max_tokens: int = 512, batch: int = 64, beside: bool = False
            ) -> Callable[[Sequence[str]], np.ndarray]:
    """A plain numpy encoder over a torch model, for mining and measuring; `beside`: a peft model's
    vectors laid beside its base model's (`side_by_side`), the model that answers after `beside` training."""
    import torch

    def vectors(texts: Sequence[str]) -> Any:
        tuned = embed(model, tokenizer, texts, prompt, max_tokens)
        if not beside:
            return tuned
        with model.disable_adapter():
            return side_by_side(embed(model, tokenizer, texts, prompt, max_tokens), tuned)

    def encode(texts: Sequence[str]) -> np.ndarray:
        model.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch):
                out.append(vectors(texts[i:i + batch]).numpy())
        width = model.config.hidden_size * (2 if beside else 1)
        return np.concatenate(out) if out else np.zeros((0, width), dtype=np.float32)

    return encode


def mine_negatives(qa: QASet, question_vectors: np.ndarray, sentence_vectors: np.ndarray, count: int
                   ) -> list[tuple[str, ...]]:
    """For each example, the `count` sentences of *other* paragraphs closest to its question that do not
    contain its answer's text (a sentence elsewhere that states the answer is no negative). Pure."""
    if count == 0:
        return [() for _ in qa.examples]
    texts = [s for p in qa.paragraphs for s in p.sentences]
    owners = np.array([i for i, p in enumerate(qa.paragraphs) for _ in p.sentences])
    scores = question_vectors @ sentence_vectors.T
    mined = []
    for row, example in zip(scores, qa.examples):
        picked: list[str] = []
        for j in np.argsort(-row)[: 20 + count]:
            if owners[j] != example.paragraph and example.answer.lower() not in texts[j].lower():
                picked.append(texts[j])
                if len(picked) == count:
                    break
        mined.append(tuple(picked))
    return mined


def triples(qa: QASet, mined: list[tuple[str, ...]], paragraph_negatives: int, rng: random.Random) -> list[Triple]:
    """One triple per example: its question, its answer, sampled sentences of its paragraph and its mined ones."""
    out = []
    for example, far in zip(qa.examples, mined):
        sentences = qa.paragraphs[example.paragraph].sentences
        others = [s for i, s in enumerate(sentences) if i != example.positive]
        near = tuple(rng.sample(others, min(paragraph_negatives, len(others))))
        out.append(Triple(example.question, sentences[example.positive], near + far))
    return out


def contrastive_loss(questions: Any, passages: Any, positives: Sequence[str], texts: Sequence[str],
                     temperature: float) -> Any:
    """Cross-entropy of each question over every passage of the batch, its own answer (row i) as the target;
    a passage whose text equals the question's answer elsewhere in the batch is masked out."""
    import torch

    scores = questions @ passages.T / temperature
    same = torch.tensor([[text == positive for text in texts] for positive in positives])
    target = torch.arange(len(positives))
    same[target, target] = False
    scores = scores.masked_fill(same, float("-inf"))
    return torch.nn.functional.cross_entropy(scores, target)


def require_peft() -> None:
    """Raises ConfigError, saying which extra to install, when peft is missing."""
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise ConfigError("LoRA training needs peft, which is not installed: run scripts/setup.sh train "
                          "(or pip install -e '.[train]')")


def prepare_model(model: Any, settings: TrainSettings) -> Any:
    """LoRA wrapping, or every block's weights trainable with the embeddings frozen."""
    if settings.method == "lora":
        require_peft()
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0, bias="none",
                            target_modules=TARGETS[settings.targets])
        return get_peft_model(model, config)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not name.startswith("embeddings.")
    return model


def train(qa: QASet, base_folder: Path, settings: TrainSettings, progress: bool = True,
          log: Callable[[str], None] = print) -> Trained:
    """Fine-tune the base model on `qa`'s examples; return the trained model and its record (steps, time,
    the loss curve). Nothing is written: see `save_adapter`."""
    import torch

    if not qa.examples:
        raise ConfigError("no training example: the training set is empty")
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    tokenizer, model = load_base(base_folder)

    started = time.perf_counter()
    base = _base_vectors(qa, model, tokenizer, settings)
    mined = mine_negatives(qa, base.question_matrix, base.sentence_matrix, settings.mined_negatives) \
        if settings.mined_negatives else [() for _ in qa.examples]
    mining_seconds = time.perf_counter() - started
    log(f"mined negatives for {len(qa.examples)} questions in {mining_seconds:.0f} s")

    model = prepare_model(model, settings)
    parameters = [p for p in model.parameters() if p.requires_grad]
    steps = settings.max_steps or max(1, round(math.ceil(len(qa.examples) / settings.batch_size) * settings.epochs))
    optimizer, schedule = _optimizer(parameters, settings, steps)

    order: list[Triple] = []
    losses: list[float] = []
    bar = progress_bar(steps, progress)
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        if len(order) < settings.batch_size:
            fresh = triples(qa, mined, settings.paragraph_negatives, rng)
            rng.shuffle(fresh)
            order += fresh
        batch, order = order[: settings.batch_size], order[settings.batch_size :]
        texts = [t.positive for t in batch] + [n for t in batch for n in t.negatives]
        questions = embed(model, tokenizer, [t.question for t in batch], QUERY_PROMPT, settings.max_tokens)
        passages = embed(model, tokenizer, texts, PASSAGE_PROMPT, settings.max_tokens)
        if settings.beside:
            questions = side_by_side(base.questions_of([t.question for t in batch]), questions)
            passages = side_by_side(base.sentences_of(texts), passages)
        loss = contrastive_loss(questions, passages, [t.positive for t in batch], texts, settings.temperature)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    model.eval()
    seconds = time.perf_counter() - started
    record = {
        "settings": asdict(settings),
        "examples": len(qa.examples), "paragraphs": len(qa.paragraphs), "steps": steps,
        "trainable_parameters": sum(p.numel() for p in parameters),
        "seconds": round(seconds + mining_seconds, 1), "seconds_per_step": round(seconds / steps, 2),
        "torch_threads": torch.get_num_threads(),
        "loss_curve": [round(float(np.mean(losses[i:i + 10])), 4) for i in range(0, len(losses), 10)],
    }
    return Trained(model, tokenizer, record)


def _optimizer(parameters: list[Any], settings: TrainSettings, steps: int) -> tuple[Any, Any]:
    """AdamW, and a learning rate that warms up linearly over `settings.warmup` of the steps, then decays to 0."""
    import torch

    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.01)
    warmup = max(1, round(steps * settings.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    return optimizer, schedule


@dataclass(frozen=True)
class BaseVectors:
    """The base model's vectors of every training question (examples' order) and sentence (paragraphs'
    order), taken once before any step: they mine the negatives, and they are the fixed half of `beside`
    training, looked up by text."""

    question_matrix: np.ndarray
    sentence_matrix: np.ndarray
    questions: dict[str, np.ndarray]
    sentences: dict[str, np.ndarray]

    def questions_of(self, texts: Sequence[str]) -> Any:
        return _tensor_of(self.questions, texts)

    def sentences_of(self, texts: Sequence[str]) -> Any:
        return _tensor_of(self.sentences, texts)


def _tensor_of(vectors: dict[str, np.ndarray], texts: Sequence[str]) -> Any:
    import torch

    return torch.from_numpy(np.stack([vectors[t] for t in texts]))


def side_by_side(base: Any, tuned: Any) -> Any:
    """The two unit vectors laid end to end, each ×√½, the base first as `Embedder.beside` lays them: a
    unit vector whose cosines are the mean of both models'."""
    import torch

    return torch.cat([base.to(tuned.dtype), tuned], dim=-1) * math.sqrt(0.5)


def _base_vectors(qa: QASet, model: Any, tokenizer: Any, settings: TrainSettings) -> BaseVectors:
    """`BaseVectors` of `qa`, embedded by the untrained model (skipped when nothing reads them). Embedded
    in the examples' and paragraphs' order, as the shipped adapter's negatives were mined."""
    if not settings.mined_negatives and not settings.beside:
        return BaseVectors(np.zeros((0, 0)), np.zeros((0, 0)), {}, {})
    questions = [e.question for e in qa.examples]
    sentences = [s for p in qa.paragraphs for s in p.sentences]
    q = encoder(model, tokenizer, QUERY_PROMPT)(questions)
    p = encoder(model, tokenizer, PASSAGE_PROMPT, settings.max_tokens)(sentences)
    return BaseVectors(q, p, dict(zip(questions, q)), dict(zip(sentences, p)))


def progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="step", desc="training", dynamic_ncols=True)
