"""Calibrate the shipped abstention threshold of a model (maintainers; users run `rag calibrate`).

Asks the tuning half of eval/ about seeds/ with abstention off (rag.evaluate.calibrate),
chooses the threshold, and writes it into rag/data/calibration.json under the model id
in use, beside the other models' entries. Run once per backend of the default model:

    python bench/calibrate.py                          # onnx (the default)
    RAG_EMBED_BACKEND=onnx-int8 python bench/calibrate.py
    RAG_EMBED_BACKEND=torch python bench/calibrate.py

Only the tuning half is read: the held-out half measures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from rag.answer.calibration import BEING_MEASURED, Calibration
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.calibrate import calibrate_engine

    files = [Path(a) for a in sys.argv[1:]] or sorted((ROOT / "eval").glob("*.jsonl"))
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings.resolve(docs_dir=ROOT / "seeds", index_dir=Path(scratch) / "index", store="faiss")
        engine = Engine(settings, calibration=BEING_MEASURED, judge=None)  # the margin alone, as rag calibrate
        entry, rows = calibrate_engine(engine, files)
    entry = Calibration(**{**asdict(entry), "source": entry.source.replace("rag calibrate", "bench/calibrate.py")})
    path = ROOT / "rag" / "data" / "calibration.json"
    shipped = [e for e in json.loads(path.read_text(encoding="utf-8"))["calibrations"] if e["model"] != entry.model]
    path.write_text(json.dumps({"calibrations": [*shipped, asdict(entry)]}, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(asdict(entry), indent=2))
    for row in sorted(rows, key=lambda r: r.support):
        print(f"{row.support:+.4f} {'answerable' if row.answerable else 'UNANSWERABLE':<12} {'forced' if row.forced else ''}")


if __name__ == "__main__":
    main()
