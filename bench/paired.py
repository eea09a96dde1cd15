"""Two saved runs of the regression table compared question by question, without asking again.

    python bench/paired.py build/regression/BEFORE.json build/regression/AFTER.json

Prints, per set, the right answers gained and lost (for questions about something else asked of a
corpus: the refusals) and the exact sign test's p-value, then the held-out and development halves
pooled (`rag.evaluate.paired`); beside them, the same counted with outcomes ranked (right, refused, answered
wrong), where a wrong quote turned into a refusal is a gain. `bench/regression.py --compare` prints the same
table after a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="a bench/regression.py --out file")
    parser.add_argument("after", type=Path, help="another, over the same sets")
    args = parser.parse_args()
    from regression import paired_table

    runs = [json.loads(path.read_text(encoding="utf-8")) for path in (args.before, args.after)]
    print(f"{runs[0]['model']} {' '.join(runs[0]['policy'] or [])} → {runs[1]['model']} {' '.join(runs[1]['policy'] or [])}")
    print(paired_table(runs[0]["answers"], runs[1]["answers"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
