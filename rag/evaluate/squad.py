"""SQuAD-format benchmarks, used as they come: each context becomes a document, each question is asked.

Reported: document hit@1/hit@3 (the gold context is the first / among the first
three cited documents), answer-span hit (a quoted sentence overlaps the gold
answer span in the gold document), false abstentions, faithfulness, characters
quoted per answer, and, with foreign questions (asked of this corpus but about
something else), how many abstain.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import RagError
from ..records import Answer
from .labelled import is_faithful
from .table import rate


@dataclass(frozen=True)
class SquadQuestion:
    source: str  # the document file the context was written to
    question: str
    answer_start: int
    answer_end: int


def _file_name(title: str, number: int, count: int) -> str:
    stem = re.sub(r"[^\w.-]+", "_", title).strip("._") or "context"
    return f"{stem}.txt" if count == 1 else f"{stem}-{number}.txt"


def load_squad(path: Path) -> tuple[dict[str, str], list[SquadQuestion]]:
    """(documents by file name, questions) from a SQuAD v1/v2 JSON file. Raises RagError if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path} is not a readable SQuAD file (a JSON object with 'data'): {exc}") from exc
    documents: dict[str, str] = {}
    questions: list[SquadQuestion] = []
    for article in data:
        paragraphs = article.get("paragraphs", [])
        for number, paragraph in enumerate(paragraphs, 1):
            name = _file_name(str(article.get("title", "")), number, len(paragraphs))
            context = paragraph["context"]
            documents[name] = context
            for qa in paragraph.get("qas", []):
                answers = qa.get("answers") or []
                if not answers:
                    continue  # SQuAD v2's impossible questions carry no span to check
                start = int(answers[0]["answer_start"])
                questions.append(SquadQuestion(name, qa["question"], start, start + len(answers[0]["text"])))
    return documents, questions


def squad_folder(path: Path, cache_dir: Path) -> tuple[Path, str]:
    """Where a SQuAD file's contexts and index live (in the cache, one folder per file's bytes), and its key."""
    import hashlib

    key = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return cache_dir / f"squad-{path.stem}-{key}", key


def squad_settings(path: Path, documents: dict[str, str], base: Any, docs: Path | None = None,
                   index: Path | None = None) -> Any:
    """`base` settings pointed at a SQuAD file's own folders (written first) and Milvus collection:
    the SQuAD corpus never replaces the main one. `docs`/`index` override the cache folders."""
    work, key = squad_folder(path, base.cache_dir)
    docs = docs or work / "docs"
    write_documents(documents, docs)
    return base.replace(docs_dir=docs, index_dir=index or work / "index",
                        milvus_collection=f"{base.milvus_collection}_squad_{key}")


def write_documents(documents: dict[str, str], folder: Path) -> None:
    """One UTF-8 file per context, byte for byte (LF newlines), so offsets in the file are the context's."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        target = folder / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            with open(target, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)


@dataclass(frozen=True)
class SquadOutcome:
    item: SquadQuestion
    answer: Answer
    hit1: bool
    hit3: bool
    span_hit: bool
    faithful: bool
    # Refused, and one of the closest passages the refusal shows holds the gold span: the reader who
    # opens them finds the answer the bot would not give.
    span_shown: bool = False


def judge_squad(item: SquadQuestion, answer: Answer, texts: dict[str, str]) -> SquadOutcome:
    documents = [] if answer.abstained else list(dict.fromkeys(c.document for c in answer.citations))
    span_hit = any(
        c.document == item.source and q.start < item.answer_end and item.answer_start < q.end
        for q in answer.sentences for c in answer.citations if c.n == q.citation)
    span_shown = answer.abstained and any(
        c.document == item.source and c.start < item.answer_end and item.answer_start < c.end for c in answer.citations)
    return SquadOutcome(item, answer, documents[:1] == [item.source], item.source in documents[:3], span_hit,
                        is_faithful(answer, texts), span_shown)


def summarize_squad(outcomes: list[SquadOutcome], foreign: Iterable[Answer] = ()) -> dict[str, Any]:
    answered = [o for o in outcomes if not o.answer.abstained]
    foreign = list(foreign)
    latencies = sorted(o.answer.timings_ms.get("total", 0.0) for o in outcomes)
    report: dict[str, Any] = {
        "questions": len(outcomes),
        "document_hit@1": rate([o.hit1 for o in outcomes]),
        "document_hit@3": rate([o.hit3 for o in outcomes]),
        "answer_span_hit": rate([o.span_hit for o in outcomes]),
        "false_abstentions": rate([o.answer.abstained for o in outcomes]),
        "faithfulness": rate([o.faithful for o in outcomes]),
        "quoted_chars_per_answer": round(statistics.mean(sum(len(q.text) for q in o.answer.sentences)
                                                         for o in answered), 1) if answered else None,
        "latency_ms_p50": round(statistics.median(latencies), 2) if latencies else None,
    }
    if foreign:
        report["foreign_questions"] = len(foreign)
        report["foreign_abstained"] = rate([a.abstained for a in foreign])
        # A question in another language than the corpus shares no words with it: only the
        # background margin can refuse it, so its refusals are worth reading apart.
        for language in sorted({a.language for a in foreign}):
            report[f"foreign_abstained_{language}"] = rate([a.abstained for a in foreign if a.language == language])
    return report


def evaluate_squad(engine: Any, questions: list[SquadQuestion], foreign: list[str] = ()
                   ) -> tuple[list[SquadOutcome], dict[str, Any]]:
    index = engine.index
    by_doc_id = {doc_id: index.document_text(doc_id) for doc_id in index.documents}
    texts = {doc.source: by_doc_id[doc_id] for doc_id, doc in index.documents.items()}
    engine.ask("warm-up")
    outcomes = [judge_squad(q, engine.ask(q.question), by_doc_id) for q in questions]
    missing = {q.source for q in questions} - set(texts)
    if missing:
        raise RagError(f"{len(missing)} contexts were not indexed (e.g. {sorted(missing)[0]}); see `rag build`")
    foreign_answers = [engine.ask(question) for question in foreign]
    return outcomes, summarize_squad(outcomes, foreign_answers)


def format_squad(report: dict[str, Any]) -> str:
    lines = []
    for key, value in report.items():
        shown = f"{value:.1%}" if isinstance(value, float) and key not in ("quoted_chars_per_answer", "latency_ms_p50") \
            else str(value)
        lines.append(f"{key:<26}{shown:>10}")
    return "\n".join(lines)
