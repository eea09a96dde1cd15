"""How far apart each set's halves are, and whether the gap says more than chance.

    python bench/halves.py build/regression/RUN.json

For every set that a full run of `bench/regression.py` asked in both halves (held out, and
development or tuning), the share of answerable questions answered right in each, their gap, the
two-sided p-value of Fisher's exact test, and the smallest gap those sizes can tell from chance at
5% (`rag.evaluate.table`). Issue 26 asks the halves to stay within 5 points; with 30–100 questions a
half, only gaps of 13–25 points can be told from the luck of the split.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.evaluate.paired import outcome  # noqa: E402
from rag.evaluate.table import detectable_gap, fisher_exact  # noqa: E402

OTHER_HALVES = ("dev", "tune")


def answerable_right(records: list[dict]) -> list[bool]:
    """Each answerable question's verdict: a SQuAD set's are all answerable; the seeds' say so."""
    return [bool(outcome(r)) for r in records
            if ("span" in r or "correct" in r) and r.get("answerable", True) is not False]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a bench/regression.py --out file of a full run (not --dev)")
    answers = json.loads(parser.parse_args().run.read_text(encoding="utf-8"))["answers"]
    print("| set | held out | development | gap (points) | p (Fisher) | gap told from chance at 5% |")
    print("|---|---|---|---|---|---|")
    for key, records in answers.items():
        name, half = key.split("/")
        other = next((f"{name}/{h}" for h in OTHER_HALVES if f"{name}/{h}" in answers), None)
        if half != "held-out" or other is None:
            continue
        a, b = answerable_right(records), answerable_right(answers[other])
        if not a or not b:
            continue
        rate_a, rate_b, pooled = sum(a) / len(a), sum(b) / len(b), (sum(a) + sum(b)) / (len(a) + len(b))
        print(f"| {name} | {100 * rate_a:.1f} ({sum(a)}/{len(a)}) | {100 * rate_b:.1f} ({sum(b)}/{len(b)}) "
              f"| {100 * (rate_a - rate_b):+.1f} | {fisher_exact(sum(a), len(a), sum(b), len(b)):.3f} "
              f"| {100 * detectable_gap(pooled, len(a), len(b)):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
