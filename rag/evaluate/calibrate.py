"""`rag calibrate`: measure the abstention threshold of the model in use.

The labelled questions' tuning half is asked with abstention off; the threshold that
decides the most of them right (answered, or rightly refused) with at most 2% wrong
refusals is kept for this model id (`answer/calibration.py`). The held-out half is
never read here: it stays a measurement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..answer.calibration import BEING_MEASURED, Calibration, Measured, calibrate
from .labelled import load_questions, tuning_half

ABSTENTION_OFF = BEING_MEASURED.margin_threshold


def measure(engine: Any, items: list[dict[str, Any]]) -> list[Measured]:
    """Each question's support with abstention off (`engine` must not need a calibration)."""
    rows = []
    for item in items:
        answer = engine.ask(item["question"], item.get("history"), threshold=ABSTENTION_OFF)
        rows.append(Measured(float(answer.support), item.get("answerable", True) is not False, answer.abstained))
    return rows


def calibrate_engine(engine: Any, files: list[Path]) -> tuple[Calibration, list[Measured]]:
    items = tuning_half(load_questions(files))
    rows = measure(engine, items)
    source = f"rag calibrate on the tuning half of {', '.join(f.name for f in files)} ({len(rows)} questions)"
    return calibrate(rows, engine.embedder.model_id, source), rows
