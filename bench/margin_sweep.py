"""Every abstention margin at once: each set's answers and refusals under each cut, from one run.

`bench/regression.py --threshold -1 --out RUN.json` asks every question with the margin refusing
nothing and records each answer's support (its best evidence minus the closest unrelated sentence).
A margin `t` would have refused exactly the answers whose support is below `t` (the answer itself
does not depend on `t`), so one run shows every cut. Printed per set and half, against a run of
the regression table (`--against`, for example the default model's), in questions:

    answers gained − lost, foreign questions refused gained − lost

and, last, the lowest margin at which no set's figure falls by more than one question (answers, or
foreign questions refused) against `--against`, and among the settings that pass, the one with the
largest net gain. It reads every half the runs hold: to choose, make both
runs with `--dev` (development halves, and eval/'s tuning half as the foreign questions), then read the
held-out halves once.

With `--judge-cuts`, each margin is also tried beside each cut of the judge's veto: the run must have been
made with a judge whose own cut refuses nothing (a copy of its folder with `"cut": -99` in `cut.json`, named
by RAG_JUDGE) and `--policy selection.judge_reads_all=True`, so that every answer records the judge's best
score over its statements ("judged"), not the first that reaches the cut.

Run: python bench/margin_sweep.py RUN.json --against BASE.json [--cuts -0.01 0 0.005 …] [--judge-cuts -2.21 -1.5 …]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from regression import policies_with  # noqa: E402  (a sibling script)


def verdicts(records: dict[str, list[dict[str, Any]]], cut: float | None,
             judge_cut: float | None = None, rescue: float | None = None) -> dict[str, list[bool]]:
    """Per set/half, each question's verdict (`rag.evaluate.paired.outcome`) under margin `cut` (None: as
    recorded) and the judge's `judge_cut` (None: as recorded); `rescue`: the judge's score at which a
    margin's refusal is overturned (`SelectionPolicy.judge_rescue`, `Engine._rescued`)."""
    from rag.evaluate.paired import outcome

    out = {}
    for key, items in records.items():
        row = []
        for item in items:
            judged = item.get("judged")
            rescued = rescue is not None and judged is not None and judged >= rescue
            refused = item["abstained"] or (cut is not None and item.get("support", 1.0) < cut and not rescued) \
                or (judge_cut is not None and judged is not None and judged < judge_cut)
            row.append(bool(outcome(item, refused)))
        out[key] = row
    return out


def compare(run: dict[str, list[bool]], against: dict[str, list[bool]]) -> dict[str, tuple[int, int]]:
    """Per set/half both runs asked alike: (questions gained, questions lost) against the other run."""
    moved = {}
    for key, row in run.items():
        if key not in against or len(against[key]) != len(row):
            continue
        moved[key] = (sum(a and not b for a, b in zip(row, against[key])),
                      sum(b and not a for a, b in zip(row, against[key])))
    return moved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="bench/regression.py --threshold -1 --out RUN.json")
    parser.add_argument("--against", type=Path, required=True, help="a regression run to compare with")
    parser.add_argument("--cuts", type=float, nargs="*",
                        default=[round(-0.02 + 0.0025 * i, 4) for i in range(21)])
    parser.add_argument("--judge-cuts", type=float, nargs="*", default=[None],
                        help="cuts of the judge's veto to try beside each margin (the run's judge refused nothing)")
    args = parser.parse_args()
    run = json.loads(args.run.read_text(encoding="utf-8"))
    if run.get("threshold") != -1:
        raise SystemExit(f"{args.run} was not run with --threshold -1: its margin refused answers already")
    against = verdicts(json.loads(args.against.read_text(encoding="utf-8"))["answers"], None)
    rescue = policies_with(run.get("policy") or []).selection.judge_rescue  # the run's, not today's default
    if args.judge_cuts != [None] and not any(
            item.get("judged") is not None for items in run["answers"].values() for item in items):
        raise SystemExit(f"{args.run} holds no judge scores: run it with a judge whose cut refuses nothing")
    passing = []
    for judge_cut in args.judge_cuts:
        for cut in args.cuts:
            moved = compare(verdicts(run["answers"], cut, judge_cut, rescue), against)
            worst = max((lost - gain for gain, lost in moved.values()), default=0)
            gained = sum(g for g, _ in moved.values())
            lost = sum(lost for _, lost in moved.values())
            label = f"margin {cut:+.4f}" + ("" if judge_cut is None else f", judge {judge_cut:+.2f}")
            print(f"{label}: +{gained} −{lost}, worst set's net −{max(worst, 0)} | "
                  + "  ".join(f"{k} +{g}−{lost_}" for k, (g, lost_) in sorted(moved.items()) if g or lost_))
            if worst <= 1:
                passing.append((gained - lost, cut, judge_cut))
    if passing:
        lowest = min(passing, key=lambda p: p[1])
        net, cut, judge_cut = max(passing, key=lambda p: p[0])
        print(f"lowest margin at which no set loses more than one question: {lowest[1]:+.4f}"
              + ("" if lowest[2] is None else f" (judge {lowest[2]:+.2f})"))
        print(f"{len(passing)} settings keep every set within one question; the best, net +{net}: margin {cut:+.4f}"
              + ("" if judge_cut is None else f", judge {judge_cut:+.2f}"))
    else:
        print("no setting keeps every set within one question")
    return 0


if __name__ == "__main__":
    sys.exit(main())
