"""The judge (rag/embedding/judge.py; trained by `rag train-judge`): measured on train/'s held-out half,
tried as a reranker of the answer stage (dropped), and studied as an abstention signal, where its cut is
chosen. Each command takes a judge folder (default: the shipped one, rag/data/judge).

    python bench/cross_encoder.py measure [--judge DIR] --questions 600 [--adapter ADAPTER_FOLDER]
    python bench/cross_encoder.py judge [--judge DIR] --mode reorder --weight 0.01 --dev --out …
    python bench/cross_encoder.py abstain [--judge DIR] [--rows ROWS.json] [--write-cut]
    python bench/cross_encoder.py cost [--judge DIR]

`measure`: the answering sentence first among its paragraph's sentences, for the first N questions of
train/'s held-out half, as written and translated, beside the base bi-encoder's cosines on the same
questions (and those of each `--adapter`, a `rag train` output folder).

`judge`: bench/regression.py with the judge's scores over the top `--top` statements of each ranking
(three) put to another use than the veto (built in; off but for `trim`): `reorder` adds weight ×
(score − best score) to their fused scores; `alone` quotes the best sentence alone when the judge prefers
it to each of the others by more than `--margin`; `trim` drops each quote of those statements but the
first that the judge scores below `--keep` (0: "does not answer").

`abstain`: bench/abstention_corpora.py (development halves, leave one corpus out) with the judge's best
score over the top statements as a signal beside the margin; then each signal's ROC AUC, and the shipped
margin with a judge veto at the answerable questions' 1st and 2nd percentiles. `--write-cut` writes the
1st percentile as the judge's cut (`cut.json` in its folder): the answer stage refuses below it.

`cost`: the judge over the question with two and three candidates, against the question's embedding,
side by side, both in ONNX Runtime. Figures and verdicts: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

NO_STATEMENT = -99.0  # the judge's score of a question whose top candidates say nothing: below any cut
CUT_SHARE = 0.01  # the cut: this share of the answerable development questions scores below it


def runtime_judge(folder: Path, threads: int = 2) -> Any:
    from rag.config import Settings
    from rag.embedding.judge import Judge

    return Judge(folder, Settings.resolve().cache_dir, threads)


def cached_scorer(folder: Path, threads: int) -> Any:
    """score(question, sentences) → the judge's scores, each pair scored once (both rankings, and each
    question's two asks in a study, read the same top sentences)."""
    import numpy as np

    judge = runtime_judge(folder, threads)
    seen: dict[tuple[str, str], float] = {}

    def score(question: str, sentences: list[str]) -> np.ndarray:
        fresh = [s for s in dict.fromkeys(sentences) if (question, s) not in seen]
        if fresh:
            seen.update(((question, s), float(v)) for s, v in zip(fresh, judge.scores(question, fresh)))
        return np.array([seen[(question, s)] for s in sentences])

    return score


def top_statements(candidates: tuple, n: int) -> list[int]:
    """Positions of the first `n` statements of a ranking: what the engine's judge reads, `n` apart."""
    from rag.answer.select import judged_positions
    from rag.policy import DEFAULT

    return judged_positions(candidates, replace(DEFAULT.selection, judged_statements=n))


def train_data() -> tuple[Any, Any, Any]:
    from rag.learn.run import training_data, translations

    qa, _ = training_data(ROOT / "train")
    translated, _ = translations(ROOT / "train")
    held = qa.half("heldout")
    return qa.half("train").with_translations(translated), held, held.translated(translated)


def measure(args: argparse.Namespace) -> None:
    import numpy as np

    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.learn.examples import QASet
    from rag.learn.measure import rank

    _, held, across = train_data()
    judge = runtime_judge(args.judge)
    cache_dir = Settings.resolve().cache_dir
    bi_encoders = {"base bi-encoder": Embedder(cache_dir=cache_dir, adapter="none"),
                   **{str(path): Embedder(cache_dir=cache_dir, adapter=str(path)) for path in args.adapter}}
    for name, qa in (("as written", held), ("translated", across)):
        subset = QASet(qa.paragraphs, qa.examples[: args.questions])
        cosines = {model_name: rank(subset, e.encode_queries, e.encode_passages).sentence_first
                   for model_name, e in bi_encoders.items()}
        right = sum(int(np.argmax(judge.scores(example.question, subset.paragraphs[example.paragraph].sentences)))
                    == example.positive for example in subset.examples)
        print(f"{name}: {len(subset.examples)} questions, answering sentence first: "
              + ", ".join(f"{model_name} {share:.1%}" for model_name, share in cosines.items())
              + f", judge {right / len(subset.examples):.1%}")


def judge(args: argparse.Namespace) -> None:
    """bench/regression.py with the judge rescoring each ranking's top statements (the veto off), or
    trimming an answer's runner-ups (the veto on)."""
    import numpy as np
    import regression
    from rag import engine

    judged = cached_scorer(args.judge, threads=1)

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

    def trimmed(index: Any, retrieval: Any, query: Any, *rest: Any, **options: Any) -> Any:
        selection = plain_select(index, retrieval, query, *rest, **options)
        if selection.abstained or selection.broad or len(selection.sentences) < 2:
            return selection
        top = [retrieval.candidates[i] for i in top_statements(retrieval.candidates, args.top)]
        values = dict(zip((c.sentence.sentence_id for c in top), judged(query.query, [c.sentence.text for c in top])))
        first = top[0].sentence.sentence_id
        kept = tuple(c for c in selection.sentences if c.sentence.sentence_id == first
                     or values.get(c.sentence.sentence_id, np.inf) >= args.keep)
        return replace(selection, sentences=kept)

    plain_retrieve, plain_select = engine.Engine._retrieve, engine.select
    if args.mode == "trim":
        engine.select = trimmed
    else:
        engine.Engine._retrieve = retrieve
    asked = list(args.regression)
    if args.mode != "trim" and not args.veto:  # one --policy list (a second would replace the first)
        at = asked.index("--policy") + 1 if "--policy" in asked else len(asked)
        asked[at:at] = ["selection.judge_veto=False"] if "--policy" in asked else ["--policy", "selection.judge_veto=False"]
    sys.argv = ["regression.py", *asked]
    regression.main()


def collect_with_judge(args: argparse.Namespace) -> list[dict[str, Any]]:
    """bench/abstention_corpora.py's rows (the engine's own veto off), each with the judge's best score
    over the top statements."""
    import abstention_corpora as study
    from rag import engine

    judged = cached_scorer(args.judge, threads=2)
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
        found["follow_up"] = bool(history)
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
    from rag.embedding.judge import CUT_FILE, judge_digest

    def study_model_id() -> str:
        base = Settings.resolve()
        return Embedder(model=base.model, cache_dir=base.cache_dir, adapter=base.embed_adapter).model_id

    if args.from_rows:
        rows = json.loads(args.from_rows.read_text(encoding="utf-8"))
    else:
        rows = collect_with_judge(args)
        if args.rows:
            args.rows.write_text(json.dumps(rows), encoding="utf-8")
    rows = [r for r in rows if not r.get("follow_up")]  # the veto never reads a follow-up (SelectionPolicy)
    corpora = sorted({r["corpus"] for r in rows})

    rules = {"margin": lambda train: lambda r: r["margin"], "judge": lambda train: lambda r: r["judge"],
             "margin + judge (learned)": lambda train: study.logistic(train, ("margin", "judge")),
             "margin, cosine, across, judge (learned)": lambda train: study.logistic(
                 train, ("margin", "cosine", "across", "judge"))}
    print(f"{len(rows)} questions no other condition refuses (follow-ups left out), on {', '.join(corpora)}")
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
    for share in (None, CUT_SHARE, 2 * CUT_SHARE):
        cut = -np.inf if share is None else judged[int(share * len(judged))]
        refused = [r for r in rows if r["margin"] < margin or r["judge"] < cut]
        print(f"| {'none' if share is None else f'{cut:.2f} ({share:.0%} of answerable)'} | "
              f"{sum(r['answerable'] for r in refused)} of {sum(r['answerable'] for r in rows)} | "
              f"{sum(not r['answerable'] for r in refused)} of {sum(not r['answerable'] for r in rows)} |")
    if args.write_cut:
        cut = round(float(judged[int(CUT_SHARE * len(judged))]), 2)
        record = {"cut": cut, "judge": judge_digest(args.judge),
                  "source": f"bench/cross_encoder.py abstain: the {CUT_SHARE:.0%} percentile of the judge's best score "
                            f"over the top statements of {len(judged)} answerable development questions "
                            f"({', '.join(corpora)}; follow-ups left out)"}
        (args.judge / CUT_FILE).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\ncut {cut} written to {args.judge / CUT_FILE}")


def cost(args: argparse.Namespace) -> None:
    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.evaluate.labelled import load_questions

    judge = runtime_judge(args.judge)
    settings = Settings.resolve()
    embedder = Embedder(model=settings.model, cache_dir=settings.cache_dir)
    questions = [item["question"] for item in load_questions(sorted((ROOT / "eval").glob("*.jsonl")))][:30]
    sentences = [line for path in sorted((ROOT / "seeds").glob("*.txt"))
                 for line in path.read_text(encoding="utf-8").splitlines() if 40 <= len(line) <= 300]
    timings: dict[str, list[float]] = {"question embedded": [], "judge, 2 candidates": [], "judge, 3 candidates": []}
    for turn, question in enumerate(questions * 2):
        started = time.perf_counter()
        embedder.encode_queries([question])
        timings["question embedded"].append((time.perf_counter() - started) * 1000)
        for n in (2, 3):
            chosen = [sentences[(turn * 3 + k) % len(sentences)] for k in range(n)]
            started = time.perf_counter()
            judge.scores(question, chosen)
            timings[f"judge, {n} candidates"].append((time.perf_counter() - started) * 1000)
    for name, values in timings.items():
        print(f"{name}: p50 {statistics.median(values[len(questions):]):.1f} ms")


def main() -> int:
    from rag.embedding.judge import PACKAGED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("measure")
    p.add_argument("--questions", type=int, default=600)
    p.add_argument("--adapter", type=Path, action="append", default=[], help="a bi-encoder adapter to rank with too")
    p = commands.add_parser("judge")
    p.add_argument("--mode", choices=("reorder", "alone", "trim"), default="reorder")
    p.add_argument("--keep", type=float, default=0.0, help="trim: a runner-up the judge scores below this is dropped")
    p.add_argument("--weight", type=float, default=0.01)
    p.add_argument("--margin", type=float, default=1.0)
    p.add_argument("--top", type=int, default=3, help="statements of each ranking the judge reads")
    p.add_argument("--veto", action="store_true", help="reorder, alone: keep the judge's veto on")
    p = commands.add_parser("abstain")
    p.add_argument("--top", type=int, default=3, help="statements of the ranking the judge reads")
    p.add_argument("--rows", type=Path, help="write every question's signals here (JSON)")
    p.add_argument("--from-rows", type=Path, help="read the signals a --rows run wrote, instead of asking again")
    p.add_argument("--write-cut", action="store_true", help="write the 1st percentile as the judge's cut")
    commands.add_parser("cost")
    for sub in commands.choices.values():
        sub.add_argument("--judge", type=Path, default=PACKAGED, help="a judge folder (default: the shipped one)")
    args, rest = parser.parse_known_args()
    if rest and args.command != "judge":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.regression = [a for a in rest if a != "--"]  # judge: bench/regression.py's own arguments
    {"measure": measure, "judge": judge, "abstain": abstain, "cost": cost}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
