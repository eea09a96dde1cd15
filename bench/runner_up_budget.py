"""A length budget for the runner-up, simulated from two runs: would a cap on characters bring FAQ
pages' answers to 300 characters without losing answers elsewhere?

The answer stage quotes a runner-up beside its best sentence when the two nearly tie
(`selection.second_sentence_gap`) or the runner-up is closer in meaning (`selection.meaning_runner_up`).
Two runs of `bench/regression.py` hold, for each question, the answer with and without runner-ups:

    python bench/regression.py --dev --out build/regression/with.json
    python bench/regression.py --dev --policy selection.second_sentence_gap=0 \
        selection.meaning_runner_up=False --out build/regression/without.json
    python bench/runner_up_budget.py build/regression/with.json build/regression/without.json

Each budget keeps an answer's runner-ups only when a condition on lengths holds, else takes the
answer without them; a refusal that differs between the runs is taken from the first. Printed per
set: answers holding the gold span, and mean characters quoted per answer. A simulation: the quotes
a runner-up brings and the rest of the answer are taken as the two runs recorded them.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Record = dict[str, Any]
Condition = Callable[[Record, Record], bool]  # (with runner-ups, without): keep the runner-ups?


def quoted(record: Record) -> int:
    return sum(end - start for _, start, end in record["quotes"])


def brought(with_: Record, without: Record) -> int:
    """Characters of the quotes only the runner-ups brought."""
    return quoted({"quotes": [quote for quote in with_["quotes"] if quote not in without["quotes"]]})


def whole_at_most(n: int) -> Condition:
    return lambda with_, without: quoted(with_) <= n


def runner_ups_at_most(n: int) -> Condition:
    return lambda with_, without: brought(with_, without) <= n


def best_at_most(n: int) -> Condition:
    return lambda with_, without: quoted(without) <= n


BUDGETS: dict[str, Condition] = {
    "as shipped (runner-ups kept)": lambda with_, without: True,
    "no runner-up": lambda with_, without: False,
    **{f"whole answer ≤ {n}": whole_at_most(n) for n in (300, 400, 500, 600)},
    **{f"runner-ups ≤ {n}": runner_ups_at_most(n) for n in (150, 200, 250, 300)},
    **{f"best alone ≤ {n}": best_at_most(n) for n in (150, 200, 250)},
}


def simulate(with_run: dict[str, list[Record]], without_run: dict[str, list[Record]], keep: Condition
             ) -> dict[str, tuple[int, float | None]]:
    out = {}
    for key, records in with_run.items():
        if key.endswith("/foreign") or key.startswith("seeds") or key not in without_run:
            continue
        without = {r["question"]: r for r in without_run[key]}
        spans, chars = 0, []
        for record in records:
            other = without[record["question"]]
            pick = record if record["abstained"] != other["abstained"] or keep(record, other) else other
            spans += bool(pick["span"])
            if not pick["abstained"]:
                chars.append(quoted(pick))
        out[key] = (spans, round(statistics.mean(chars)) if chars else None)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("with_run", type=Path, help="a regression run as shipped")
    parser.add_argument("without_run", type=Path, help="the same questions with the runner-up rules off")
    args = parser.parse_args()
    with_run = json.loads(args.with_run.read_text(encoding="utf-8"))["answers"]
    without_run = json.loads(args.without_run.read_text(encoding="utf-8"))["answers"]
    results = {label: simulate(with_run, without_run, keep) for label, keep in BUDGETS.items()}
    keys = list(next(iter(results.values())))
    print("| budget | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for label, row in results.items():
        print(f"| {label} | " + " | ".join(f"{row[k][0]} / {row[k][1]}" for k in keys) + " |")
    print("\ncells: answers holding the gold span / mean characters quoted per answer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
