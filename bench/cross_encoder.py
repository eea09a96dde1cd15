"""A cross-encoder judge: LoRA on the built-in model reading the question with each candidate sentence, a
linear head on its mean-pooled output, trained on train/'s training half. Dropped as a reranker; as an
abstention signal, studied (BENCHMARKS.md).

    python bench/cross_encoder.py train --steps 900 --out build/cross-encoder/ce.pt
    python bench/cross_encoder.py measure build/cross-encoder/ce.pt --questions 600 --adapter ADAPTER_FOLDER
    python bench/cross_encoder.py judge build/cross-encoder/ce.pt --mode reorder --weight 0.01 --dev --out …
    python bench/cross_encoder.py cost build/cross-encoder/ce.pt
    python bench/cross_encoder.py train --steps 700 --null-share 0.5 --out build/cross-encoder/ce-null.pt
    python bench/cross_encoder.py abstain build/cross-encoder/ce-null.pt [--rows ROWS.json]

`train`: each step takes 8 questions (written and Apertium-translated, mixed), each against its answering
sentence and 3 others, the other sentences of its paragraph first: a softmax over the four (rank 8 on
every block's linear layers, learning rate 3e-4, seed 0). With `--null-share`, that share of the
questions is asked against sentences of other articles only, and a fixed logit of 0 ("none answers")
joins every softmax: a score above 0 then means "answers", whatever the question.

`measure`: the answering sentence first among its paragraph's sentences, for the first N questions of
train/'s held-out half, as written and translated, beside the base bi-encoder's cosines on the same
questions (and those of each `--adapter`, a `rag train` output folder).

`judge`: bench/regression.py with the judge's scores over the top `--top` statements of each ranking
(three): `reorder` adds weight × (score − best score) to their fused scores; `alone` quotes the best
sentence alone when the judge prefers it to each of the others by more than `--margin`; `veto` refuses
an answer when the judge scores each of them below `--cut` (a judge trained with `--null-share`).

`abstain`: bench/abstention_corpora.py (development halves, leave one corpus out) with the judge's best
score over the top statements as a signal beside the margin; then each signal's ROC AUC, and the shipped
margin with a judge veto at two cuts.

`cost`: the judge's forward pass over the question with two and three candidates, against the
question's embedding, side by side. Figures and verdicts: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MAX_TOKENS = 160
NO_STATEMENT = -99.0  # the judge's score of a question whose top candidates say nothing: below any cut


def base_model(adapter: Path | None = None) -> tuple[Any, Any]:
    """(tokenizer, model) of the built-in model, merged with `adapter` as the embedder merges it."""
    from rag.config import Settings
    from rag.embedding.adapter import merged_folder, read_adapter
    from rag.learn.run import default_base
    from rag.learn.trainer import load_base

    cache_dir = Settings.resolve().cache_dir
    folder = default_base(cache_dir).folder
    return load_base(folder if adapter is None else merged_folder(folder, read_adapter(adapter), cache_dir))


def judge_model(checkpoint: Path | None) -> tuple[Any, Any, Any]:
    """(tokenizer, LoRA-wrapped model, head), loaded from `checkpoint` when given."""
    import torch
    from peft import LoraConfig, get_peft_model

    from rag.learn.trainer import BLOCK_LINEARS

    torch.manual_seed(0)
    tokenizer, model = base_model()
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=BLOCK_LINEARS, lora_dropout=0.0))
    head = torch.nn.Linear(model.config.hidden_size, 1)
    if checkpoint is not None:
        saved = torch.load(checkpoint)
        model.load_state_dict(saved["lora"], strict=False)
        head.load_state_dict(saved["head"])
    return tokenizer, model, head


def scores(tokenizer: Any, model: Any, head: Any, questions: list[str], sentences: list[str]) -> Any:
    batch = tokenizer(["query: " + q for q in questions], ["passage: " + s for s in sentences], padding=True,
                      truncation="only_second", max_length=MAX_TOKENS, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)


def inference_judge(checkpoint: Path, threads: int) -> tuple[Any, Any, Any]:
    """(tokenizer, model, head) of a trained judge, its LoRA merged, ready to score."""
    import torch

    torch.set_num_threads(threads)
    tokenizer, model, head = judge_model(checkpoint)
    model = model.merge_and_unload()
    model.eval()
    return tokenizer, model, head


def cached_scorer(checkpoint: Path, threads: int) -> Any:
    """score(question, sentences) → the judge's scores, each pair scored once (both rankings, and each
    question's two asks in a study, read the same top sentences)."""
    import numpy as np
    import torch

    tokenizer, model, head = inference_judge(checkpoint, threads)
    seen: dict[tuple[str, str], float] = {}

    def score(question: str, sentences: list[str]) -> np.ndarray:
        fresh = [s for s in dict.fromkeys(sentences) if (question, s) not in seen]
        if fresh:
            with torch.inference_mode():
                values = scores(tokenizer, model, head, [question] * len(fresh), fresh).numpy()
            seen.update(((question, s), float(v)) for s, v in zip(fresh, values))
        return np.array([seen[(question, s)] for s in sentences])

    return score


def top_statements(candidates: tuple, n: int) -> list[int]:
    """Positions of the first `n` candidates that say something (what selection reads)."""
    from rag.answer.select import is_statement

    return [i for i, c in enumerate(candidates) if is_statement(c.sentence.text)][:n]


def train_data() -> tuple[Any, Any, Any]:
    from rag.learn.run import training_data, translations

    qa, _ = training_data(ROOT / "train")
    translated, _ = translations(ROOT / "train")
    held = qa.half("heldout")
    return qa.half("train").with_translations(translated), held, held.translated(translated)


def train(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(2)
    training, _, _ = train_data()
    tokenizer, model, head = judge_model(None)
    rng = random.Random(0)
    examples = list(training.examples)
    rng.shuffle(examples)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad] + list(head.parameters()),
                                  lr=3e-4)
    model.train()
    unrelated = {article: [p for p in training.paragraphs if p.article != article]
                 for article in {p.article for p in training.paragraphs}} if args.null_share else {}
    started, losses = time.perf_counter(), []
    for step in range(args.steps):
        batch = examples[step * args.batch % len(examples):][: args.batch]
        questions, sentences, targets = [], [], []
        for example in batch:
            own = list(training.paragraphs[example.paragraph].sentences)
            if args.null_share and rng.random() < args.null_share:
                # The question against sentences of other articles only: none answers it, the null must win.
                others = unrelated[training.paragraphs[example.paragraph].article]
                chosen = [rng.choice(rng.choice(others).sentences) for _ in range(args.negatives + 1)]
                targets.append(0)
            else:
                others = [s for i, s in enumerate(own) if i != example.positive]
                rng.shuffle(others)
                others = others[: args.negatives]
                while len(others) < args.negatives:
                    others.append(rng.choice(training.paragraphs[rng.randrange(len(training.paragraphs))].sentences))
                chosen = [own[example.positive], *others]
                targets.append(1 if args.null_share else 0)
            for sentence in chosen:
                questions.append(example.question)
                sentences.append(sentence)
        logits = scores(tokenizer, model, head, questions, sentences).view(len(batch), args.negatives + 1)
        if args.null_share:  # a fixed logit of 0 for "no sentence answers": the scores get an absolute meaning
            logits = torch.cat([torch.zeros(len(batch), 1), logits], dim=1)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}: loss {statistics.mean(losses[-50:]):.3f}, "
                  f"{(time.perf_counter() - started) / (step + 1):.2f} s a step", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"lora": {k: v for k, v in model.state_dict().items() if "lora" in k}, "head": head.state_dict()},
               args.out)
    print(f"{args.steps} steps in {time.perf_counter() - started:.0f} s: {args.out}")


def measure(args: argparse.Namespace) -> None:
    import torch

    from rag.learn.examples import QASet
    from rag.learn.measure import rank
    from rag.learn.trainer import PASSAGE_PROMPT, QUERY_PROMPT, encoder

    _, held, across = train_data()
    tokenizer, model, head = judge_model(args.checkpoint)
    model.eval()
    bi_encoders = {"base bi-encoder": base_model(), **{str(path): base_model(path) for path in args.adapter}}
    for name, qa in (("as written", held), ("translated", across)):
        subset = QASet(qa.paragraphs, qa.examples[: args.questions])
        cosines = {model_name: rank(subset, encoder(m, t, QUERY_PROMPT), encoder(m, t, PASSAGE_PROMPT)).sentence_first
                   for model_name, (t, m) in bi_encoders.items()}
        right = 0
        with torch.inference_mode():
            for example in subset.examples:
                own = list(subset.paragraphs[example.paragraph].sentences)
                right += int(torch.argmax(scores(tokenizer, model, head, [example.question] * len(own), own))) \
                    == example.positive
        print(f"{name}: {len(subset.examples)} questions, answering sentence first: "
              + ", ".join(f"{model_name} {share:.1%}" for model_name, share in cosines.items())
              + f", judge {right / len(subset.examples):.1%}")


def judge(args: argparse.Namespace) -> None:
    """bench/regression.py with the judge patched in: rescoring each ranking's top statements, or vetoing."""
    import regression
    from rag import engine

    judged = cached_scorer(args.checkpoint, threads=1)

    def rejudged(candidates: tuple, question: str) -> tuple:
        top = top_statements(candidates, args.top)
        if len(top) < 2:
            return candidates
        values = judged(question, [candidates[i].sentence.text for i in top])
        if args.mode == "alone":
            if top[0] == 0 and all(values[0] - v > args.margin for v in values[1:]):
                return (candidates[0],) + tuple(replace(c, fused=c.fused - 1.0) for c in candidates[1:])
            return candidates
        moved = list(candidates)
        for i, value in zip(top, values):
            moved[i] = replace(candidates[i], fused=candidates[i].fused + args.weight * (value - values.max()))
        return tuple(sorted(moved, key=lambda c: (-c.fused, c.sentence.sentence_id)))

    def retrieve(self: Any, index: Any, query: Any, timings: dict[str, float]) -> Any:
        retrieval, vector, lean = plain_retrieve(self, index, query, timings)
        uncorrected = None if retrieval.uncorrected is None else rejudged(retrieval.uncorrected, query.query)
        return replace(retrieval, candidates=rejudged(retrieval.candidates, query.query),
                       uncorrected=uncorrected), vector, lean

    def vetoed(index: Any, retrieval: Any, query: Any, *rest: Any, **options: Any) -> Any:
        selection = plain_select(index, retrieval, query, *rest, **options)
        top = [retrieval.candidates[i].sentence.text for i in top_statements(retrieval.candidates, args.top)]
        if selection.abstained or not top or judged(query.query, top).max() >= args.cut:
            return selection
        return replace(selection, abstained=True, sentences=(), reason="the judge finds no sentence that answers")

    plain_retrieve, plain_select = engine.Engine._retrieve, engine.select
    if args.mode == "veto":
        engine.select = vetoed
    else:
        engine.Engine._retrieve = retrieve
    sys.argv = ["regression.py", *args.regression]
    regression.main()


def collect_with_judge(args: argparse.Namespace) -> list[dict[str, Any]]:
    """bench/abstention_corpora.py's rows, each with the judge's best score over the top statements."""
    import abstention_corpora as study
    from rag import engine

    judged = cached_scorer(args.checkpoint, threads=2)
    plain_retrieve, plain_signals = engine.Engine._retrieve, study.signals

    def retrieve(self: Any, index: Any, query: Any, timings: dict[str, float]) -> Any:
        found = plain_retrieve(self, index, query, timings)
        self.judged = (query.query, found[0].candidates)  # what the signals of this question read next
        return found

    def signals(eng: Any, question: str, history: list[str] | None = None) -> dict[str, float] | None:
        found = plain_signals(eng, question, history)
        if found is None:
            return None
        asked, candidates = eng.judged
        top = [candidates[i].sentence.text for i in top_statements(candidates, args.top)]
        found["judge"] = float(judged(asked, top).max()) if top else NO_STATEMENT
        return found

    engine.Engine._retrieve, study.signals = retrieve, signals
    return study.collect()


def abstain(args: argparse.Namespace) -> None:
    """bench/abstention_corpora.py with the judge's best score over the top statements as one more signal:
    leave one corpus out, each rule's cut refusing at most 3% of the other corpora's answerable questions."""
    import numpy as np

    import abstention_corpora as study
    from rag.answer.calibration import find_calibration
    from rag.config import Settings
    from rag.embedding.embedder import Embedder

    def study_model_id() -> str:
        base = Settings.resolve()
        return Embedder(model=base.model, cache_dir=base.cache_dir, adapter=base.embed_adapter).model_id

    if args.from_rows:
        rows = json.loads(args.from_rows.read_text(encoding="utf-8"))
    else:
        rows = collect_with_judge(args)
        if args.rows:
            args.rows.write_text(json.dumps(rows), encoding="utf-8")
    corpora = sorted({r["corpus"] for r in rows})

    rules = {"margin": lambda train: lambda r: r["margin"], "judge": lambda train: lambda r: r["judge"],
             "margin + judge (learned)": lambda train: study.logistic(train, ("margin", "judge")),
             "margin, cosine, across, judge (learned)": lambda train: study.logistic(
                 train, ("margin", "cosine", "across", "judge"))}
    print(f"{len(rows)} questions no other condition refuses, on {', '.join(corpora)}")
    print("| rule | " + " | ".join(corpora) + " | false abstentions | foreign refused |")
    print("|---|" + "---|" * (len(corpora) + 2))
    for name, make in rules.items():
        cells, false, answerable, refused, foreign = [], 0, 0, 0, 0
        for left_out in corpora:
            train = [r for r in rows if r["corpus"] != left_out]
            test = [r for r in rows if r["corpus"] == left_out]
            score = make(train)
            cut = study.threshold(score, train)
            f = sum(1 for r in test if r["answerable"] and score(r) < cut)
            a = sum(1 for r in test if r["answerable"])
            k = sum(1 for r in test if not r["answerable"] and score(r) < cut)
            n = sum(1 for r in test if not r["answerable"])
            cells.append(f"{f}/{a}, {k}/{n}")
            false, answerable, refused, foreign = false + f, answerable + a, refused + k, foreign + n
        print(f"| {name} | " + " | ".join(cells) + f" | {false} of {answerable} | {refused} of {foreign} |")
    print("cells: answerable refused / answerable, foreign refused / foreign (the corpus left out)")

    def auc(name: str) -> float:
        answerable = np.array([r[name] for r in rows if r["answerable"]])
        foreign = np.array([r[name] for r in rows if not r["answerable"]])
        above, tied = answerable[:, None] > foreign[None, :], answerable[:, None] == foreign[None, :]
        return float((above + 0.5 * tied).mean())

    print("\nROC AUC, answerable against foreign: " + ", ".join(f"{n} {auc(n):.3f}" for n in ("cosine", "margin", "judge")))
    # The veto: the shipped margin kept, and an answer refused too when the judge scores every top statement
    # below a cut (a low percentile of the answerable questions' scores, over every corpus).
    margin = find_calibration(study_model_id(), Settings.resolve().cache_dir).margin_threshold
    judged = sorted(r["judge"] for r in rows if r["answerable"])
    print(f"\n| veto cut | false abstentions | foreign refused |  (the margin, {margin:+.4f}, refusing too)")
    for share in (None, 0.01, 0.02):
        cut = -np.inf if share is None else judged[int(share * len(judged))]
        refused = [r for r in rows if r["margin"] < margin or r["judge"] < cut]
        print(f"| {'none' if share is None else f'{cut:.2f} ({share:.0%} of answerable)'} | "
              f"{sum(r['answerable'] for r in refused)} of {sum(r['answerable'] for r in rows)} | "
              f"{sum(not r['answerable'] for r in refused)} of {sum(not r['answerable'] for r in rows)} |")


def cost(args: argparse.Namespace) -> None:
    import torch

    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.evaluate.labelled import load_questions

    tokenizer, model, head = inference_judge(args.checkpoint, threads=2)
    settings = Settings.resolve()
    embedder = Embedder(model=settings.model, cache_dir=settings.cache_dir)
    questions = [item["question"] for item in load_questions(sorted((ROOT / "eval").glob("*.jsonl")))][:30]
    sentences = [line for path in sorted((ROOT / "seeds").glob("*.txt"))
                 for line in path.read_text(encoding="utf-8").splitlines() if 40 <= len(line) <= 300]
    timings: dict[str, list[float]] = {"question embedded": [], "judge, 2 candidates": [], "judge, 3 candidates": []}
    with torch.inference_mode():
        for turn, question in enumerate(questions * 2):
            started = time.perf_counter()
            embedder.encode_queries([question])
            timings["question embedded"].append((time.perf_counter() - started) * 1000)
            for n in (2, 3):
                chosen = [sentences[(turn * 3 + k) % len(sentences)] for k in range(n)]
                started = time.perf_counter()
                scores(tokenizer, model, head, [question] * n, chosen)
                timings[f"judge, {n} candidates"].append((time.perf_counter() - started) * 1000)
    for name, values in timings.items():
        print(f"{name}: p50 {statistics.median(values[len(questions):]):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train")
    p.add_argument("--steps", type=int, default=900)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--negatives", type=int, default=3)
    p.add_argument("--null-share", type=float, default=0.0,
                   help="share of questions asked against other articles' sentences only, where a fixed null "
                        "logit must win (an absolute score, for abstention)")
    p.add_argument("--out", type=Path, default=ROOT / "build/cross-encoder/ce.pt")
    p = commands.add_parser("measure")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--questions", type=int, default=600)
    p.add_argument("--adapter", type=Path, action="append", default=[], help="a bi-encoder adapter to rank with too")
    p = commands.add_parser("judge")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--mode", choices=("reorder", "alone", "veto"), default="reorder")
    p.add_argument("--weight", type=float, default=0.01)
    p.add_argument("--margin", type=float, default=1.0)
    p.add_argument("--cut", type=float, default=-2.21, help="veto: refuse when the judge scores every top statement "
                                                             "below this")
    p.add_argument("--top", type=int, default=3, help="statements of each ranking the judge reads")
    p = commands.add_parser("abstain")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--top", type=int, default=3, help="statements of the ranking the judge reads")
    p.add_argument("--rows", type=Path, help="write every question's signals here (JSON)")
    p.add_argument("--from-rows", type=Path, help="read the signals a --rows run wrote, instead of asking again")
    p = commands.add_parser("cost")
    p.add_argument("checkpoint", type=Path)
    args, rest = parser.parse_known_args()
    if rest and args.command != "judge":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.regression = [a for a in rest if a != "--"]  # judge: bench/regression.py's own arguments
    {"train": train, "measure": measure, "judge": judge, "abstain": abstain, "cost": cost}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
