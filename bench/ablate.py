"""Every rule earns its place: the regression table's sets asked once with all rules, then once with each
rule switched off, question by question.

    python bench/ablate.py --out build/regression/ablation.json
    python bench/ablate.py --only selection.meaning_runner_up=False

A rule stays only if switching it off loses questions on a held-out set: more of its questions get a worse
outcome than a better one. Outcomes, best first: right (the right answer for eval/, the gold span for the
SQuAD sets, a refusal for eval/'s unanswerable questions and for questions asked of another corpus), refused,
answered wrong: a rule that turns wrong quotes into refusals earns its place too. Prints, per switch, the
questions lost and gained on each held-out set (then on the development halves, which chose the rules, for
reference) and the verdict. A regex field is switched off
with the value `never` (a pattern that matches nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import regression  # noqa: E402  (a sibling script)

# Each rule of the answer stage that a policy can switch off, and the value that switches it off.
SWITCHES = (
    "fusion.dense_passage=0", "fusion.lexical_sentence=0", "fusion.lexical_passage=0", "fusion.cognate_weight=0",
    "fusion.language_lean_weight=0", "fusion.sentence_lean_weight=0", "fusion.title_weight=0",
    "selection.second_sentence_gap=0", "selection.meaning_runner_up=False", "selection.min_quote_words=0",
    "selection.shared_word_required=False", "selection.answer_kind_required=False", "selection.unknown_names_refuse=False",
    "selection.anaphoric_start=never", "question.unfamiliar_min_words=1000000", "question.broad=never",
    "question.compare=never", "question.follow_up_start=never", "question.name_counterparts=False",
    "selection.judge_veto=False", "selection.judge_rescue=None", "selection.compare_common_share=1",
    "selection.compare_topic_share=0",
    "selection.compare_margin=None",
)


def by_half(records: dict[str, list[dict]], halves: dict[str, str]) -> dict[str, list[dict]]:
    """The records, with eval/'s questions asked of another corpus (`<set>/foreign`) split by eval/'s half
    into `<set>/foreign-held-out` and `<set>/foreign-tune`."""
    out: dict[str, list[dict]] = {}
    for key, items in records.items():
        for r in items:
            out.setdefault(_half_key(key, halves.get(r["question"])), []).append(r)
    return out


def _half_key(key: str, eval_half: str | None) -> str:
    if not key.endswith("/foreign"):
        return key
    return f"{key}-held-out" if eval_half == "heldout" else f"{key}-tune"


def moved(reference: dict[str, list[dict]], other: dict[str, list[dict]]) -> dict[str, tuple[int, int]]:
    """(lost, gained) per set and half: questions whose ranked outcome (`ranked_outcome`: right, refused,
    answered wrong) got worse, and better."""
    from rag.evaluate.paired import paired_changes, ranked_outcome

    return {c.name: (c.lost, c.gained) for c in paired_changes(reference, other, rank=ranked_outcome)}


def run_all(embedder: Any, base: Any, items: list[dict], foreign: list[str]) -> dict[str, list[dict]]:
    """Every set of the regression table, both halves, with the policies `regression.POLICIES` holds."""
    return regression.every_set(embedder, base, items, foreign)[1]


def held_out(key: str) -> bool:
    """The halves that chose nothing."""
    return key.endswith(("/held-out", "/measure", "/foreign-held-out"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="these switches instead of every one")
    parser.add_argument("--out", type=Path, help="write every switch's moves as JSON here")
    args = parser.parse_args()

    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.evaluate.labelled import load_questions, split_of

    base = Settings.resolve()
    embedder = Embedder(model=base.model, cache_dir=base.cache_dir)
    items = load_questions(sorted((ROOT / "eval").glob("*.jsonl")))
    foreign = [item["question"] for item in items]
    halves = {item["question"]: split_of(item) for item in items}
    started = time.perf_counter()
    regression.POLICIES = regression.policies_with([])
    reference = by_half(run_all(embedder, base, items, foreign), halves)
    print(f"model: {embedder.model_id}; all rules: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    report: dict[str, Any] = {"model": embedder.model_id, "switches": {}}
    for switch in args.only or SWITCHES:
        regression.POLICIES = regression.policies_with([switch])
        moves = moved(reference, by_half(run_all(embedder, base, items, foreign), halves))
        losing = [key for key, (lost, gained) in moves.items() if held_out(key) and lost > gained]
        report["switches"][switch] = {key: list(v) for key, v in moves.items()}
        shown = ", ".join(f"{key} −{lost}+{gained}" for key, (lost, gained) in moves.items() if lost or gained)
        verdict = f"stays (off, it loses on {', '.join(losing)})" if losing else "goes (off, it loses on no held-out set)"
        print(f"{switch}: {verdict}\n    {shown or 'nothing moved'}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
