"""The regression table: every development and held-out set, every corpus shape, in one run and one table.

A change that helps one shape of corpus and breaks another is seen here before it lands. Run it
before and after every change to answers, and compare the two runs question by question:

    python bench/regression.py --out build/regression/before.json
    … change …
    python bench/regression.py --out build/regression/after.json --compare build/regression/before.json

Sets (rows), held-out halves first; each SQuAD corpus is indexed once for both of its halves:
- `seeds`: eval/*.jsonl on seeds/ (French and English questions, unanswerable ones included);
- `faq-pages`: the Debian FAQ scraped as `# question` pages with glued paragraphs (bench/faqpages_devset.py);
- `manpages`: French manual pages (bench/manpages_devset.py);
- `debian-faq`: the Debian FAQ's untitled sections, asked in its own words (bench/debianfaq_devset.py);
- `edu-fr`, `edu-en`: the Debian Edu manual's sections, asked in French and in English (bench/edu_devset.py);
- `wiki`, `wiki-across`: train/'s held-out Wikipedia paragraphs, asked as written and machine-translated
  to the other language (bench/wiki_devset.py);
- `wiki-later`, `wiki-later-across`: the same paragraphs' later questions, four times as many; asked only
  when named (`--sets`), to check a choice on questions no earlier choice was made with;
- `service-public`: 105 fiches of ../shared/eval/service-public (measured only; never tuned or trained on);
- `compare`: eval/compare/*.jsonl on seeds/, questions that lay the two articles side by side (bench/compare_eval.py);
  *answer* is both columns right (silent when they should be, else quoting only passages on the topic).
A missing development file is built first by its script (apt-get and dpkg-deb: Debian).

Columns: hit@1 and hit@3 (the right document is the first / among the first three cited), answer
(the quotes overlap the gold span; for `seeds`, the answer is right), false abstentions, wrong (answered,
and not right: a refusal would have been better), faithfulness
(every quote an exact slice inside its citation), characters quoted per answer, headings quoted (answers
quoting a span that overlaps a title or section heading: never), and foreign refused (eval/'s questions
asked of that corpus, about something else, that abstain; for `seeds`: its unanswerable questions).

Environment as usual (RAG_EMBED_MODEL, RAG_EMBED_ADAPTER, RAG_EMBED_BACKEND…). Indexes live in the cache folder.
`--policy selection.second_sentence_gap=0 fusion.title_weight=0` runs with policy fields changed (an
ablation: a rule switched off must lose questions on a held-out set to stay).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

from rag.evaluate.table import answer_columns, rate  # noqa: E402  (pure and light: no model)


@dataclass(frozen=True)
class Corpus:
    name: str
    shape: str
    files: tuple[tuple[str, Path], ...]  # (half, SQuAD file), held-out first
    script: str = ""  # builds the files when missing
    indexed_as: str = ""  # another corpus of the same contexts, whose index this one reads
    by_default: bool = True  # asked by every run; else only when named (--sets)

    @property
    def folder(self) -> str:
        return self.indexed_as or self.name


CORPORA = (
    Corpus("faq-pages", "FAQ pages, titles as questions, glued sentences",
           (("held-out", ROOT / "build/faqpages/faq-pages-fr-heldout.json"),
            ("dev", ROOT / "build/faqpages/faq-pages-fr.json")), "bench/faqpages_devset.py"),
    Corpus("manpages", "manual pages: terms, options, lists",
           (("held-out", ROOT / "build/manpages/manpages-fr-heldout.json"),
            ("dev", ROOT / "build/manpages/manpages-fr.json")), "bench/manpages_devset.py"),
    Corpus("debian-faq", "untitled FAQ sections, asked in the FAQ's words (FR and EN)",
           (("held-out", ROOT / "build/debianfaq/debian-faq-fr-heldout.json"),
            ("dev", ROOT / "build/debianfaq/debian-faq-fr.json")), "bench/debianfaq_devset.py"),
    Corpus("edu-fr", "long manual sections, French questions",
           (("held-out", ROOT / "build/eduset/debian-edu-fr-heldout.json"),
            ("dev", ROOT / "build/eduset/debian-edu-fr.json")), "bench/edu_devset.py"),
    Corpus("edu-en", "English questions of a French manual",
           (("held-out", ROOT / "build/eduset/debian-edu-en-fr-heldout.json"),
            ("dev", ROOT / "build/eduset/debian-edu-en-fr.json")), "bench/edu_devset.py"),
    Corpus("wiki", "Wikipedia paragraphs no training read, questions as written (FR, EN)",
           (("held-out", ROOT / "build/wiki/wiki-heldout.json"),
            ("dev", ROOT / "build/wiki/wiki.json")), "bench/wiki_devset.py"),
    Corpus("wiki-across", "the same, questions machine-translated to the other language",
           (("held-out", ROOT / "build/wiki/wiki-across-heldout.json"),
            ("dev", ROOT / "build/wiki/wiki-across.json")), "bench/wiki_devset.py", indexed_as="wiki"),
    Corpus("wiki-later", "the same paragraphs, their later questions (asked when named)",
           (("held-out", ROOT / "build/wiki/wiki-later-heldout.json"),
            ("dev", ROOT / "build/wiki/wiki-later.json")), "bench/wiki_devset.py", indexed_as="wiki",
           by_default=False),
    Corpus("wiki-later-across", "the later questions, machine-translated (asked when named)",
           (("held-out", ROOT / "build/wiki/wiki-later-across-heldout.json"),
            ("dev", ROOT / "build/wiki/wiki-later-across.json")), "bench/wiki_devset.py", indexed_as="wiki",
           by_default=False),
    Corpus("service-public", "administrative fiches (measure only)",
           (("measure", SHARED / "eval/service-public/spf_qr_test.json"),)),
)
COLUMNS = ("questions", "hit@1", "hit@3", "answer", "false_abstentions", "wrong", "faithfulness", "chars",
           "headings_quoted", "foreign_refused")


def ensure_files(corpus: Corpus) -> None:
    if all(path.is_file() for _, path in corpus.files):
        return
    if not corpus.script:
        raise SystemExit(f"{corpus.files[0][1]} is missing")
    print(f"building {corpus.name} with {corpus.script}", file=sys.stderr)
    subprocess.run([sys.executable, str(ROOT / corpus.script)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def quotes_heading(answer: Any, index: Any) -> bool:
    """Whether a quote overlaps a title or section heading line of its document."""
    by_n = {c.n: c for c in answer.citations}
    for quote in answer.sentences:
        citation = by_n.get(quote.citation)
        if citation is None:
            continue
        document = index.documents.get(citation.doc_id)
        text = index.document_text(citation.doc_id)
        for start, _ in document.headings if document else ():
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            if quote.start < end and start < quote.end:
                return True
    return False


def answer_record(answer: Any) -> dict[str, Any]:
    """What a question-by-question comparison reads of one answer."""
    return {"abstained": answer.abstained, "reason": answer.reason, "support": round(float(answer.support), 5),
            "judged": None if answer.judged is None else round(float(answer.judged), 4),
            "cited": list(dict.fromkeys(c.document for c in answer.citations))[:3],
            "quotes": [[c.document, q.start, q.end] for q in answer.sentences for c in answer.citations
                       if c.n == q.citation]}


def policies_with(changes: list[str]) -> Any:
    """The default policies with `group.field=value` changes (value read as a Python literal; `never` for a
    pattern field: one that matches nothing, which switches its rule off)."""
    import ast
    import re
    from dataclasses import replace

    from rag.policy import DEFAULT

    policies = DEFAULT
    for change in changes:
        path, _, raw = change.partition("=")
        group, _, name = path.partition(".")
        part = getattr(policies, group)
        if not hasattr(part, name):
            raise SystemExit(f"--policy {change}: {type(part).__name__} has no field {name}")
        value = re.compile(r"(?!)") if raw == "never" else ast.literal_eval(raw)
        policies = replace(policies, **{group: replace(part, **{name: value})})
    return policies


POLICIES: Any = None  # set by main()
# Set by main() from --threshold: the engines' margin instead of the model's calibrated one, so that a model
# `rag calibrate` never measured (a new adapter) can be run.
CALIBRATION: Any = None


def index_folder(embedder: Any) -> str:
    """One index per model, so that comparing two models does not re-embed each corpus at every switch."""
    return "index-" + hashlib.sha256(embedder.model_id.encode()).hexdigest()[:10]


def corpus_engine(corpus: Corpus, documents: dict[str, str], embedder: Any, base: Any, policies: Any) -> Any:
    """An engine over a SQuAD corpus's contexts, written as files and indexed in the cache (one index per
    model and per set of contexts)."""
    from rag.engine import Engine
    from rag.evaluate.squad import write_documents

    key = hashlib.sha256(json.dumps(documents, sort_keys=True).encode()).hexdigest()[:12]
    work = base.cache_dir / "regression" / f"{corpus.folder}-{key}"
    write_documents(documents, work / "docs")
    settings = base.replace(docs_dir=work / "docs", index_dir=work / index_folder(embedder), store="faiss")
    return Engine(settings, embedder=embedder, policies=policies, calibration=CALIBRATION)


def squad_rows(corpus: Corpus, embedder: Any, base: Any, foreign: list[str], dev: bool = False
               ) -> tuple[list[dict], dict]:
    from rag.evaluate.squad import judge_squad, load_squad

    ensure_files(corpus)
    loaded = [(half, *load_squad(path)) for half, path in corpus.files]
    documents = loaded[0][1]
    if any(other != documents for _, other, _ in loaded[1:]):
        raise SystemExit(f"{corpus.name}: its halves do not share their contexts")
    engine = corpus_engine(corpus, documents, embedder, base, POLICIES)
    index = engine.open()
    texts = {doc_id: index.document_text(doc_id) for doc_id in index.documents}
    engine.ask("warm-up")
    foreign_answers = [engine.ask(q) for q in foreign]
    foreign_refused = rate([a.abstained for a in foreign_answers])
    rows, records = [], {}
    for half, _, questions in loaded:
        if dev and half != "dev":
            continue
        outcomes = [judge_squad(q, engine.ask(q.question), texts) for q in questions]
        answered = [o for o in outcomes if not o.answer.abstained]
        rows.append({
            "set": corpus.name, "half": half, "shape": corpus.shape, "questions": len(outcomes),
            "hit@1": rate([o.hit1 for o in outcomes]), "hit@3": rate([o.hit3 for o in outcomes]),
            **answer_columns([o.answer for o in outcomes], [o.span_hit for o in outcomes]),
            "faithfulness": rate([o.faithful for o in outcomes]),
            "headings_quoted": rate([quotes_heading(o.answer, index) for o in answered]),
            "foreign_refused": foreign_refused,
            # refused although the document answers: how many show the answer among their closest passages
            "refused_span_shown": [sum(o.span_shown for o in outcomes), sum(o.answer.abstained for o in outcomes)],
        })
        records[f"{corpus.name}/{half}"] = [
            {"question": o.item.question, "document": o.item.source, "hit1": o.hit1, "span": o.span_hit,
             "shown": o.span_shown, **answer_record(o.answer)} for o in outcomes]
    records[f"{corpus.name}/foreign"] = [{"question": q, **answer_record(a)} for q, a in zip(foreign, foreign_answers)]
    return rows, records


def seeds_engine(embedder: Any, base: Any, policies: Any) -> Any:
    """An engine over seeds/, its index in the cache (one per model)."""
    from rag.engine import Engine

    settings = base.replace(docs_dir=ROOT / "seeds", store="faiss",
                            index_dir=base.cache_dir / "regression" / f"seeds-{index_folder(embedder)}")
    return Engine(settings, embedder=embedder, policies=policies, calibration=CALIBRATION)


def seed_rows(embedder: Any, base: Any, items: list[dict], dev: bool = False) -> tuple[list[dict], dict]:
    from rag.evaluate.labelled import judge, split_of

    engine = seeds_engine(embedder, base, POLICIES)
    index = engine.open()
    texts = {doc_id: index.document_text(doc_id) for doc_id in index.documents}
    engine.ask("warm-up")
    items = [item for item in items if not dev or split_of(item) == "tune"]
    outcomes = [judge(item, engine.ask(item["question"], item.get("history")), texts)
                for item in items]
    rows, records = [], {}
    for half, label in (("tune", "tune"),) if dev else (("heldout", "held-out"), ("tune", "tune")):
        for language in ("fr", "en"):
            chosen = [o for o in outcomes if split_of(o.item) == half and o.item.get("lang") == language]
            answerable = [o for o in chosen if o.item.get("answerable", True) is not False]
            unanswerable = [o for o in chosen if o.item.get("answerable", True) is False]
            answered = [o for o in answerable if not o.abstained]
            rows.append({
                "set": f"seeds-{language}", "half": label, "shape": "two web articles (eval/*.jsonl)",
                "questions": len(chosen), "hit@1": rate([o.hit1 for o in answerable]),
                "hit@3": rate([o.hit3 for o in answerable]),
                **answer_columns([o.answer for o in answerable], [o.correct for o in answerable]),
                "faithfulness": rate([o.faithful for o in chosen]),
                "headings_quoted": rate([quotes_heading(o.answer, index) for o in answered]),
                "foreign_refused": rate([o.abstained for o in unanswerable]),
            })
            records[f"seeds-{language}/{label}"] = [
                {"question": o.item["question"], "id": o.item.get("id"), "correct": o.correct,
                 "answerable": o.item.get("answerable", True) is not False,
                 **answer_record(o.answer)} for o in chosen]
    return rows, records


# set name in the table → (compare_eval's collection, its shape)
COMPARISONS = {"compare": ("seeds", "comparisons of the two seed articles (eval/compare/)"),
               "compare-man": ("manpages", "comparisons of two French manual pages (eval/compare-manpages/)")}


def compare_rows(embedder: Any, base: Any, dev: bool = False, name: str = "compare") -> tuple[list[dict], dict]:
    """Labelled comparisons: one is right when each source's column is (compare_eval.py)."""
    import compare_eval

    collection, shape = COMPARISONS[name]
    engine, labelled = compare_eval.comparison_engine(collection, embedder, base, POLICIES)
    index = engine.open()
    texts = {Path(index.documents[d].source).name: index.document_text(d) for d in index.documents}
    items = [i for i in labelled if not dev or compare_eval.half_of(i) == "tune"]
    rows, records = [], {}
    for half, label in (("tune", "tune"),) if dev else (("heldout", "held-out"), ("tune", "tune")):
        chosen = [i for i in items if compare_eval.half_of(i) == half]
        answers = [engine.ask(i["question"]) for i in chosen]
        right = [all(c["right"] for c in compare_eval.grade_columns(a, compare_eval.gold_spans(i, texts)).values())
                 for i, a in zip(chosen, answers)]
        quoted = [a for a in answers if a.sentences]
        rows.append({
            "set": name, "half": label, "shape": shape,
            "questions": len(chosen), "hit@1": None, "hit@3": None, **answer_columns(answers, right),
            "faithfulness": rate([all(q.text == index.document_text(q.doc_id)[q.start:q.end] for q in a.sentences)
                                  for a in answers]),
            "headings_quoted": rate([quotes_heading(a, index) for a in quoted]),
            "foreign_refused": None,
        })
        records[f"{name}/{label}"] = [{"question": i["question"], "id": i["id"], "correct": ok, **answer_record(a)}
                                       for i, a, ok in zip(chosen, answers, right)]
    return rows, records


def every_set(embedder: Any, base: Any, items: list[dict], foreign: list[str], dev: bool = False,
              wanted: set[str] | frozenset[str] = frozenset()) -> tuple[list[dict], dict[str, Any]]:
    """The table's rows and every question's record, for each set (those `wanted`, or all): the seeds, the
    comparisons, then each corpus (service-public not while choosing, `dev`). `bench/ablate.py` asks the
    same sets through it."""
    started = time.perf_counter()
    rows: list[dict] = []
    records: dict[str, Any] = {}
    if not wanted or "seeds" in wanted:
        got, answers = seed_rows(embedder, base, items, dev)
        rows += got
        records.update(answers)
    for name in COMPARISONS:
        if wanted and name not in wanted:
            continue
        got, answers = compare_rows(embedder, base, dev, name)
        rows += got
        records.update(answers)
    for corpus in CORPORA:
        if not (corpus.name in wanted if wanted else corpus.by_default) or (dev and corpus.name == "service-public"):
            continue
        got, answers = squad_rows(corpus, embedder, base, foreign, dev)
        rows += got
        records.update(answers)
        print(f"{corpus.name}: done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows, records


def cell(column: str, value: Any) -> str:
    if value is None:
        return "—"
    if column in ("questions",):
        return str(value)
    if column == "chars":
        return f"{value:.0f}"
    return f"{100 * value:.1f}"


def table(rows: list[dict], before: list[dict] | None = None) -> str:
    """Markdown: one row per set and half; with `before`, each cell reads 'before → after' where it moved."""
    previous = {(r["set"], r["half"]): r for r in before or []}
    header = ["set", "half", *COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        old = previous.get((row["set"], row["half"]))
        cells = [row["set"], row["half"]]
        for column in COLUMNS:
            now = cell(column, row[column])
            was = cell(column, old.get(column)) if old else None
            cells.append(now if was is None or was == now else f"{was} → {now}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def changed_questions(before: dict, after: dict) -> list[str]:
    """The questions whose answer moved between two runs (cited documents, quotes or abstention)."""
    out = []
    for key, records in after.items():
        old = {r["question"]: r for r in before.get(key, [])}
        for record in records:
            was = old.get(record["question"])
            if was is None:
                continue
            if (was["abstained"], was["cited"], was["quotes"]) != (record["abstained"], record["cited"], record["quotes"]):
                verdict = []
                for field in ("hit1", "span", "correct"):
                    if field in record and was.get(field) != record[field]:
                        verdict.append(f"{field} {was.get(field)}→{record[field]}")
                if record["abstained"] != was["abstained"]:
                    verdict.append("abstains" if record["abstained"] else "answers")
                out.append(f"{key}: {record['question']}  [{', '.join(verdict) or 'other quotes'}]")
    return out


def paired_table(before: dict, after: dict) -> str:
    """Each set's answers gained and lost, question by question, with the sign test's p-value; and the
    held-out halves (with service-public and the foreign questions) pooled, then the development ones.
    Twice: right against not right, then ranked (`ranked_outcome`), where a wrong quote turned into a
    refusal is a gain and a refusal turned into a wrong quote a loss."""
    from rag.evaluate.paired import paired_changes, pooled, ranked_outcome

    # A corpus read through another's index is asked the same foreign questions of the same documents:
    # listed, but pooled once.
    asked_again = {f"{c.name}/foreign" for c in CORPORA if c.indexed_as}
    right, ranked = paired_changes(before, after), paired_changes(before, after, rank=ranked_outcome)

    def with_pools(changes: list) -> list:
        held = [c for c in changes if not c.name.endswith(("/dev", "/tune")) and c.name not in asked_again]
        dev = [c for c in changes if c.name.endswith(("/dev", "/tune"))]
        return changes + [pooled(held, "held out, pooled"), pooled(dev, "development, pooled")]

    lines = ["| set | questions | right: gained | lost | p (sign test) | ranked: gained | lost | p |",
             "|---|---|---|---|---|---|---|---|"]
    for plain, graded in zip(with_pools(right), with_pools(ranked)):
        moved = plain.gained or plain.lost or graded.gained or graded.lost or plain.name.endswith("pooled")
        if moved and plain.questions:
            lines.append(f"| {plain.name} | {plain.questions} | +{plain.gained} | −{plain.lost} | "
                         f"{plain.p_value:.3f} | +{graded.gained} | −{graded.lost} | {graded.p_value:.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the rows and every answer as JSON here")
    parser.add_argument("--compare", type=Path, help="an earlier --out file: show before → after, and what moved")
    parser.add_argument("--sets", nargs="*", help="only these sets (seeds, faq-pages, manpages, …)")
    parser.add_argument("--dev", action="store_true",
                        help="ask and show the development and tuning halves only (while choosing; service-public "
                             "and the held-out halves are read once the choice is made)")
    parser.add_argument("--policy", nargs="*", default=[], help="group.field=value changes to the default policies")
    parser.add_argument("--threshold", type=float,
                        help="ask with this abstention margin instead of the model's calibrated one (-1: the margin "
                             "refuses nothing, and bench/margin_sweep.py reads every cut from the supports recorded)")
    args = parser.parse_args()
    global POLICIES, CALIBRATION
    POLICIES = policies_with(args.policy)

    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.evaluate.labelled import load_questions

    base = Settings.resolve()
    embedder = Embedder(model=base.model, cache_dir=base.cache_dir)
    if args.threshold is not None:
        from rag.answer.calibration import Calibration

        CALIBRATION = Calibration(args.threshold, embedder.model_id, "bench/regression.py --threshold")
    items = load_questions(sorted((ROOT / "eval").glob("*.jsonl")))
    from rag.evaluate.labelled import split_of

    # eval/'s questions asked of the other corpora (about something else); only its tuning half while choosing.
    foreign = [item["question"] for item in items if not args.dev or split_of(item) == "tune"]
    started = time.perf_counter()
    rows, records = every_set(embedder, base, items, foreign, args.dev, set(args.sets or []))
    order = {"held-out": 0, "measure": 1, "dev": 2, "tune": 2}
    rows.sort(key=lambda r: order[r["half"]])
    before = json.loads(args.compare.read_text(encoding="utf-8")) if args.compare else None
    print(f"model: {embedder.model_id}" + (f"; policies: {' '.join(args.policy)}" if args.policy else ""))
    print(table(rows, before["rows"] if before else None))
    shown = [f"{r['set']}/{r['half']} {r['refused_span_shown'][0]} of {r['refused_span_shown'][1]}"
             for r in rows if r.get("refused_span_shown") and r["refused_span_shown"][1]]
    if shown:
        print("\nRefused though the document answers, the answer among the closest passages shown: " + ", ".join(shown))
    if before:
        moved = changed_questions(before["answers"], records)
        print(f"\n{len(moved)} answers moved:")
        print("\n".join(moved))
        print("\nRight answers (refusals, for foreign questions) gained and lost:")
        print(paired_table(before["answers"], records))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"model": embedder.model_id, "policy": args.policy, "threshold": args.threshold,
                                        "rows": rows, "answers": records},
                                       ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\n{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
