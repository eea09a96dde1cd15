"""Comparisons, measured: eval/compare/*.jsonl asks the seeds to lay their sources side by side on a topic;
eval/compare-manpages/ asks the same of two French manual pages at a time (`--corpus manpages`).

Each question names both seed articles and a topic; its labels give, for each source, the passages that
speak of the topic (substrings of the document), or none: that source must then be shown as silent
("rien sur ce sujet"). Written from the two articles before the system was run on them, French and English
for each topic; the halves are split by topic (`split_of` on the topic id), so that a topic's two
languages fall in the same half.

Per half, printed:
- *columns right*: the source is silent when it should be, and otherwise quotes only passages on the topic;
- *silent when it speaks*: a source that speaks of the topic shown as silent (the influencer case);
- *speaks when silent*: a silent source given a quote anyway;
- *quotes off topic*: quotes, among those shown, that are not on the topic;
- *questions right*: both columns right;
and the median answer time (each question asked once, after a warm-up).

Run: python bench/compare_eval.py [--corpus seeds|manpages] [--dev] [--policy group.field=value ...] [--out RUN.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def load(folder: Path) -> list[dict[str, Any]]:
    items = []
    for path in sorted(folder.glob("*.jsonl")):
        items += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return items


def half_of(item: dict[str, Any]) -> str:
    from rag.evaluate.labelled import split_of

    return split_of({"id": item["topic"]})


# name → (the labelled questions, the regression corpus whose documents they compare; None: the seeds)
COLLECTIONS = {"seeds": ("compare", None), "manpages": ("compare-manpages", "manpages")}


def comparison_engine(collection: str, embedder: Any, base: Any, policies: Any) -> tuple[Any, list[dict[str, Any]]]:
    """The engine over a comparison collection's documents, and its labelled questions."""
    from regression import CORPORA, corpus_engine, ensure_files, seeds_engine

    from rag.evaluate.squad import load_squad

    folder, corpus_name = COLLECTIONS[collection]
    if corpus_name is None:
        engine = seeds_engine(embedder, base, policies)
    else:
        corpus = next(c for c in CORPORA if c.name == corpus_name)
        ensure_files(corpus)
        engine = corpus_engine(corpus, load_squad(corpus.files[0][1])[0], embedder, base, policies)
    return engine, load(ROOT / "eval" / folder)


def gold_spans(item: dict[str, Any], texts: dict[str, str]) -> dict[str, list[tuple[int, int]]]:
    """Per source file, where its on-topic evidence lies in the document."""
    spans = {}
    for source, evidence in item["sources"].items():
        text = texts[source]
        found = []
        for words in evidence:
            at = text.find(words)
            if at < 0:
                raise SystemExit(f"{item['id']}: {words!r} is not in {source}")
            found.append((at, at + len(words)))
        spans[source] = found
    return spans


def grade_columns(answer: Any, gold: dict[str, list[tuple[int, int]]]) -> dict[str, dict[str, Any]]:
    """Per source: what its column shows against its labels (a source with no column shows nothing)."""
    shown = {Path(c.document).name: [answer.sentences[i] for i in c.quotes] for c in answer.comparison}
    out = {}
    for source, spans in gold.items():
        quotes = shown.get(source, [])
        on_topic = [any(q.start < end and start < q.end for start, end in spans) for q in quotes]
        silent_expected = not spans
        right = (not quotes) if silent_expected else (bool(quotes) and all(on_topic))
        out[source] = {"right": right, "silent_expected": silent_expected, "silent": not quotes,
                       "quotes": len(quotes), "off_topic": on_topic.count(False),
                       "texts": [q.text[:80] for q in quotes]}
    return out


def rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part}/{whole})" if whole else "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=sorted(COLLECTIONS), default="seeds", help="whose comparisons")
    parser.add_argument("--dev", action="store_true", help="the tuning half only (while choosing)")
    parser.add_argument("--policy", nargs="*", default=[], help="group.field=value changes to the default policies")
    parser.add_argument("--out", type=Path, help="write every question's columns here (JSON)")
    parser.add_argument("--verbose", action="store_true", help="print each wrong column")
    args = parser.parse_args()

    from regression import policies_with

    from rag.config import Settings
    from rag.embedding.embedder import Embedder

    base = Settings.resolve()
    embedder = Embedder(model=base.model, cache_dir=base.cache_dir)
    engine, labelled = comparison_engine(args.corpus, embedder, base, policies_with(args.policy))
    index = engine.open()
    texts = {Path(index.documents[d].source).name: index.document_text(d) for d in index.documents}
    items = [item for item in labelled if not args.dev or half_of(item) == "tune"]
    records: dict[str, list[dict[str, Any]]] = {}
    engine.ask(items[0]["question"])  # warm-up
    times = []
    for item in items:
        answer = engine.ask(item["question"])
        times.append(answer.timings_ms["total"])
        columns = grade_columns(answer, gold_spans(item, texts))
        records.setdefault(half_of(item), []).append(
            {"id": item["id"], "question": item["question"], "compared": bool(answer.comparison),
             "abstained": answer.abstained, "columns": columns})
    print(f"model: {embedder.model_id}; policies: {' '.join(args.policy) or 'default'}")
    print("| half | questions | columns right | silent when it speaks | speaks when silent | quotes off topic "
          "| questions right |")
    print("|---|---|---|---|---|---|---|")
    for half in ("tune", "heldout"):
        rows = records.get(half, [])
        if not rows:
            continue
        columns = [c for r in rows for c in r["columns"].values()]
        speaking = [c for c in columns if not c["silent_expected"]]
        silent = [c for c in columns if c["silent_expected"]]
        print(f"| {half} | {len(rows)} | {rate(sum(c['right'] for c in columns), len(columns))} "
              f"| {rate(sum(c['silent'] for c in speaking), len(speaking))} "
              f"| {rate(sum(not c['silent'] for c in silent), len(silent))} "
              f"| {rate(sum(c['off_topic'] for c in columns), sum(c['quotes'] for c in columns))} "
              f"| {rate(sum(all(c['right'] for c in r['columns'].values()) for r in rows), len(rows))} |")
    print(f"answer p50 {statistics.median(times):.1f} ms, {len(times)} comparisons")
    if args.verbose:
        for half, rows in records.items():
            for r in rows:
                for source, c in r["columns"].items():
                    if not c["right"]:
                        print(f"{half} {r['id']} {source[:3]}: expected {'silent' if c['silent_expected'] else 'quotes'}"
                              f", got {c['texts'] or 'silent'} ({r['question']})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"policy": args.policy, "records": records}, ensure_ascii=False, indent=1),
                            encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
