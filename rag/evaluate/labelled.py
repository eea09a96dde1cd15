"""Evaluation on labelled questions (the format of `shared/eval/dev.jsonl`).

Each line: `question`, `lang`, and either `evidence` (text a cited passage must
contain) with `answer` (strings of which one must appear in the answer), or
`"answerable": false`. Optional: `history` (earlier questions, for follow-ups),
`broad` with `sources` (documents that must all be cited).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..records import Answer
from ..errors import RagError
from .table import rate


@dataclass(frozen=True)
class Outcome:
    item: dict[str, Any]
    answer: Answer
    hit1: bool
    hit3: bool
    correct: bool
    faithful: bool
    abstained: bool


def load_questions(paths: Iterable[Path]) -> list[dict[str, Any]]:
    items = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RagError(f"Cannot read the eval file {path}: {exc.strerror}") from exc
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise RagError(f"{path}:{number} is not valid JSON") from None
            if "question" not in item:
                raise RagError(f"{path}:{number} has no 'question'")
            items.append(item)
    return items


def is_faithful(answer: Answer, documents: dict[str, str]) -> bool:
    """Every quoted sentence is the exact slice of its document and lies inside the passage it cites."""
    by_n = {c.n: c for c in answer.citations}
    for quote in answer.sentences:
        citation = by_n.get(quote.citation)
        text = documents.get(citation.doc_id, "") if citation else ""
        if citation is None or text[quote.start : quote.end] != quote.text:
            return False
        if not (citation.start <= quote.start and quote.end <= citation.end):
            return False
        if text[citation.start : citation.end] != citation.passage:
            return False
    return True


def judge(item: dict[str, Any], answer: Answer, documents: dict[str, str]) -> Outcome:
    faithful = is_faithful(answer, documents)
    if item.get("answerable", True) is False:
        return Outcome(item, answer, False, False, answer.abstained, faithful, answer.abstained)
    passages = [c.passage for c in answer.citations] if not answer.abstained else []
    evidence = item.get("evidence")
    hit1 = bool(passages) and (evidence is None or evidence in passages[0])
    hit3 = any(evidence is None or evidence in p for p in passages[:3])
    text = answer.answer if not answer.abstained else ""
    correct = any(a in text for a in item.get("answer", [])) and not answer.abstained
    if item.get("sources"):
        cited = {c.document for c in answer.citations}
        correct = correct and set(item["sources"]) <= cited
        hit1 = hit3 = correct
    return Outcome(item, answer, hit1, hit3, correct, faithful, answer.abstained)


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for language in ("fr", "en", "all"):
        chosen = [o for o in outcomes if language == "all" or o.item.get("lang") == language]
        answerable = [o for o in chosen if o.item.get("answerable", True) is not False]
        unanswerable = [o for o in chosen if o.item.get("answerable", True) is False]
        abstentions = [o for o in chosen if o.abstained]
        report[language] = {
            "questions": len(chosen),
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "hit@1": rate([o.hit1 for o in answerable]),
            "hit@3": rate([o.hit3 for o in answerable]),
            "answer_accuracy": rate([o.correct for o in answerable]),
            "abstention_precision": rate([o.item.get("answerable", True) is False for o in abstentions]),
            "abstention_recall": rate([o.abstained for o in unanswerable]),
            "wrong_abstention_rate": rate([o.abstained for o in answerable]),
            "faithfulness": rate([o.faithful for o in chosen]),
        }
    latencies = sorted(o.answer.timings_ms.get("total", 0.0) for o in outcomes)
    if latencies:
        report["latency_ms"] = {
            "p50": round(statistics.median(latencies), 2),
            "p95": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2),
        }
    return report


def split_of(item: dict[str, Any]) -> str:
    """"tune" or "heldout", fixed by a hash of the question's id (or text): grid searches,
    calibration and word lists may read the tuning half only; the held-out half measures."""
    key = str(item.get("id") or item["question"])
    return "tune" if hashlib.sha256(key.encode("utf-8")).digest()[0] % 2 == 0 else "heldout"


def tuning_half(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if split_of(item) == "tune"]


def evaluate(engine: Any, items: list[dict[str, Any]]) -> tuple[list[Outcome], dict[str, Any]]:
    """Ask every item; the report has the figures for all items and for each half (`splits`)."""
    index = engine.index
    documents = {doc_id: index.document_text(doc_id) for doc_id in index.documents}
    engine.ask("warm-up")  # measure warm latency only
    outcomes = [judge(item, engine.ask(item["question"], item.get("history")), documents) for item in items]
    report = summarize(outcomes)
    report["splits"] = {half: summarize([o for o in outcomes if split_of(o.item) == half])
                        for half in ("heldout", "tune")}
    return outcomes, report


def format_report(report: dict[str, Any]) -> str:
    """Held-out half first (what measures), then the tuning half, then all."""
    parts = []
    for half in ("heldout", "tune"):
        if half in report.get("splits", {}) and report["splits"][half]["all"]["questions"]:
            parts.append(f"{'held-out half' if half == 'heldout' else 'tuning half'}\n"
                         + _table(report["splits"][half]))
    parts.append("all questions\n" + _table(report))
    return "\n\n".join(parts)


def _table(report: dict[str, Any]) -> str:
    rows = ["hit@1", "hit@3", "answer_accuracy", "abstention_precision", "abstention_recall",
            "wrong_abstention_rate", "faithfulness"]
    lines = [f"{'metric':<24}{'fr':>8}{'en':>8}{'all':>8}"]
    lines.append(f"{'questions':<24}" + "".join(f"{report[lang]['questions']:>8}" for lang in ("fr", "en", "all")))
    for row in rows:
        cells = []
        for language in ("fr", "en", "all"):
            value = report[language][row]
            cells.append(f"{'—' if value is None else f'{value:.1%}':>8}")
        lines.append(f"{row:<24}" + "".join(cells))
    if "latency_ms" in report:
        lines.append(f"latency p50 / p95: {report['latency_ms']['p50']:.1f} / {report['latency_ms']['p95']:.1f} ms")
    return "\n".join(lines)
