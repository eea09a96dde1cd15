"""The abstention threshold of each embedding model.

Cosines differ from one model to another (and from one backend to another: an int8
model moves them by thousandths, the size of the threshold itself), so a threshold
belongs to the model id that measured it. The package ships the thresholds of the
default model (`data/calibration.json`, written by `bench/calibrate.py`); `rag
calibrate` measures another model on the tuning half of eval/ and keeps its
threshold in the cache folder. A model with neither is refused with one sentence:
answering with another model's threshold would refuse or invent at random.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import ConfigError

# A wrong refusal hides an answer the documents hold; at most one in fifty on the tuning half.
MAX_WRONG_ABSTENTION = 0.02


@dataclass(frozen=True)
class Calibration:
    margin_threshold: float
    model: str
    source: str
    leave_one_out_decision_accuracy: float | None = None


# What an engine that is being calibrated runs with: it asks with abstention on support off, so
# an uncalibrated model is not refused before it can be measured.
BEING_MEASURED = Calibration(-1.0, "", "being measured: abstention on support off")


@dataclass(frozen=True)
class Measured:
    """One labelled question, asked with abstention off."""

    support: float  # best evidence minus the closest background sentence
    answerable: bool
    forced: bool  # abstains whatever the threshold (names or words the documents never use, empty index)


@lru_cache(maxsize=1)
def packaged() -> tuple[Calibration, ...]:
    data = json.loads(resources.files("rag.data").joinpath("calibration.json").read_text(encoding="utf-8"))
    return tuple(Calibration(**entry) for entry in data["calibrations"])


def calibration_path(cache_dir: Path, model_id: str) -> Path:
    return cache_dir / "calibrations" / f"{hashlib.sha256(model_id.encode()).hexdigest()[:16]}.json"


def find_calibration(model_id: str, cache_dir: Path) -> Calibration:
    """The threshold measured for this exact model id: kept by `rag calibrate` (which says what
    this machine measured, so it wins), else shipped with the package."""
    path = calibration_path(cache_dir, model_id)
    try:
        entry: Calibration | None = Calibration(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        entry = None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"the calibration {path} cannot be read ({exc}); run `rag calibrate` again") from exc
    if entry is not None and entry.model == model_id:
        return entry
    entry = next((e for e in packaged() if e.model == model_id), None)
    if entry is None:
        shipped = "; ".join(sorted(e.model for e in packaged()))
        raise ConfigError(
            f"the abstention threshold has not been measured for the model {model_id}: run `rag calibrate` "
            f"(about a minute: it asks the tuning half of eval/ about seeds/ and keeps the threshold in "
            f"{path.parent}), or set RAG_EMBED_MODEL and RAG_EMBED_BACKEND back to a calibrated model ({shipped})")
    return entry


def write_calibration(entry: Calibration, cache_dir: Path) -> Path:
    path = calibration_path(cache_dir, entry.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(entry), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def choose_threshold(rows: Sequence[Measured], max_wrong_abstention: float = MAX_WRONG_ABSTENTION) -> float:
    """The threshold with the most right decisions (answered, or rightly refused) that wrongly
    refuses at most `max_wrong_abstention` of the answerable questions; among ties, the lowest:
    abstain only when needed. Pure."""
    answerable = sum(1 for r in rows if r.answerable)
    best_key, best = None, -1.0
    for threshold in sorted({round(r.support + 1e-4, 4) for r in rows} | {-1.0}):
        right = wrong = 0
        for row in rows:
            abstains = row.forced or row.support < threshold
            right += abstains != row.answerable
            wrong += abstains and row.answerable
        if answerable and wrong / answerable > max_wrong_abstention:
            continue
        key = (right, -threshold)
        if best_key is None or key > best_key:
            best_key, best = key, threshold
    return best


def leave_one_out(rows: Sequence[Measured]) -> float:
    """How often the rule, chosen without a question, decides that question right."""
    right = 0
    for i, row in enumerate(rows):
        threshold = choose_threshold([*rows[:i], *rows[i + 1 :]])
        right += (row.forced or row.support < threshold) != row.answerable
    return right / len(rows) if rows else 0.0


def calibrate(rows: Sequence[Measured], model_id: str, source: str) -> Calibration:
    if not any(r.answerable for r in rows) or all(r.answerable for r in rows):
        raise ConfigError("calibration needs answerable and unanswerable questions (eval/*.jsonl has both)")
    return Calibration(choose_threshold(rows), model_id, source, round(leave_one_out(rows), 4))
