"""`rag` command line: build, ask, remove, replace, eval, calibrate, feedback, train, train-judge, serve. A thin edge over the library.

Heavy libraries are imported inside the commands, so `rag --help` is instant.
Errors the library raises on purpose become one sentence on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import RagError


def _settings(args: argparse.Namespace) -> Any:
    from .config import Settings

    collection = getattr(args, "collection", None)
    if collection and getattr(args, "index", None):
        raise RagError("give --collection or --index, not both: a collection's index is in its own folder")
    docs = getattr(args, "docs", None)
    settings = Settings.resolve(docs_dir=None if collection else docs, index_dir=getattr(args, "index", None),
                                model=getattr(args, "model", None), host=getattr(args, "host", None),
                                port=getattr(args, "port", None), root_path=getattr(args, "root_path", None),
                                store=getattr(args, "store", None))
    return settings.in_collection(collection, Path(docs) if docs else None) if collection else settings


def configure_logging(level: str) -> None:
    """The library logs through `logging`; the CLI shows warnings (and info with RAG_LOG_LEVEL=info) on stderr."""
    import logging

    number = getattr(logging, level.upper(), logging.WARNING)
    logging.basicConfig(level=number, format="rag: %(message)s")
    # On the handler too: libraries that set their own logger's level (bm25s does, on import)
    # would otherwise print their debug lines through it.
    for handler in logging.getLogger().handlers:
        handler.setLevel(number)
    for noisy in ("httpx", "urllib3", "sentence_transformers", "transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ProgressBars:
    """One tqdm bar per build stage, with the rate and the time left."""

    NAMES = {"waiting": "waiting for another build", "reading": "reading files", "splitting": "splitting", "embedding": "embedding texts",
             "writing": "writing index"}

    def __init__(self) -> None:
        self._bar: Any = None
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=self.NAMES.get(stage, stage), unit="", file=sys.stderr,
                             leave=stage == "embedding", dynamic_ncols=True, disable=None)
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def cmd_build(args: argparse.Namespace) -> int:
    from .embedding.embedder import Embedder
    from .index.build import build, documents_folder

    settings = _settings(args)
    docs_dir = documents_folder(settings, rebuild=args.rebuild)
    embedder = Embedder(model=settings.model, cache_dir=settings.cache_dir, adapter=settings.embed_adapter)
    bars = ProgressBars()
    try:
        report = build(docs_dir, settings.index_dir, embedder, progress=bars, settings=settings, rebuild=args.rebuild)
    finally:
        bars.close()
    print(f"Indexed {report.documents} documents: {report.passages} passages, {report.sentences} sentences "
          f"({report.embedded_documents} embedded, {report.reused_documents} unchanged"
          + (f", {report.resumed_documents} resumed from an interrupted build" if report.resumed_documents else "")
          + f") in {report.seconds:.1f} s")
    print(f"Index: {report.index.folder}")
    for skipped in report.skipped:
        print(f"Skipped {skipped.source}: {skipped.reason}")
    return 0


def _engine(args: argparse.Namespace) -> Any:
    from .engine import Engine

    engine = Engine(_settings(args))
    bars = ProgressBars()
    try:
        engine.open(progress=bars)
    finally:
        bars.close()
    return engine


def format_answer(answer: Any) -> str:
    lines = [answer.answer, ""]
    if answer.citations:
        head = ("Passages les plus proches" if answer.language == "fr" else "Closest passages") if answer.abstained \
            else "Sources"
        lines.append(f"{head} :" if answer.language == "fr" else f"{head}:")
        for c in answer.citations:
            where = f"{c.document}" + (f", p. {c.pages}" if c.pages else "") + f", chars {c.start}–{c.end}" \
                + (f", § {c.section}" if c.section else "")
            lines.append(f"[{c.n}] {c.title} ({c.year or '—'}) — {where}")
            lines.append(f"    {c.passage}")
    return "\n".join(lines).rstrip()


def cmd_ask(args: argparse.Namespace) -> int:
    if args.jsonl:
        engine = _engine(args)
        for line in sys.stdin:  # one object per line, blank lines included: line n answers line n
            try:
                item = json.loads(line)
                question, history = (item.get("question", ""), item.get("history")) if isinstance(item, dict) else (item, None)
                if not isinstance(item, (dict, str)):
                    question, history = line.rstrip("\n"), None
            except ValueError:
                question, history = line.rstrip("\n"), None
            sys.stdout.write(json.dumps(engine.ask(question, history).to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        return 0
    if args.question is None:
        raise RagError('Give a question: rag ask "Qu\'est-ce que Kantar prévoit ?" (or --jsonl to read stdin)')
    answer = _engine(args).ask(args.question)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer))
    return 1 if answer.message else 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.squad:
        return _eval_squad(args)
    if not args.files:
        raise RagError("Give eval files (rag eval eval/dev.jsonl) or a SQuAD file (rag eval --squad FILE).")
    from .evaluate import evaluate, format_report, load_questions

    items = load_questions([Path(f) for f in args.files])
    outcomes, report = evaluate(_engine(args), items)
    if args.json:
        report["failures"] = [
            {"id": o.item.get("id"), "question": o.item["question"], "abstained": o.abstained, "answer": o.answer.answer}
            for o in outcomes if not o.correct or not o.faithful
        ]
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return 0


def _eval_squad(args: argparse.Namespace) -> int:
    """Index the SQuAD file's contexts (in the cache folder unless --docs/--index say where), ask its questions."""
    from .engine import Engine
    from .evaluate import load_questions
    from .evaluate.squad import evaluate_squad, format_squad, load_squad, squad_settings

    path = Path(args.squad)
    documents, questions = load_squad(path)
    settings = squad_settings(path, documents, _settings(args), Path(args.docs) if args.docs else None,
                              Path(args.index) if args.index else None)
    engine = Engine(settings)
    bars = ProgressBars()
    try:
        engine.open(progress=bars)
    finally:
        bars.close()
    foreign = [item["question"] for item in load_questions([Path(f) for f in args.files])] if args.files else []
    outcomes, report = evaluate_squad(engine, questions, foreign)
    if args.json:
        report["misses"] = [{"question": o.item.question, "document": o.item.source,
                             "cited": [c.document for c in o.answer.citations][:3], "answer": o.answer.answer}
                            for o in outcomes if not o.span_hit]
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_squad(report))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Ask the tuning half of the labelled questions about their documents (seeds/ and eval/ unless
    told otherwise) with abstention off; keep the threshold for this model in the cache folder."""
    from .answer.calibration import BEING_MEASURED, write_calibration
    from .config import PROJECT_ROOT
    from .engine import Engine
    from .evaluate.calibrate import calibrate_engine

    base = _settings(args)
    files = [Path(f) for f in args.files] or sorted((PROJECT_ROOT / "eval").glob("*.jsonl"))
    if not files:
        raise RagError(f"no labelled questions: give eval files (rag calibrate eval/*.jsonl); {PROJECT_ROOT / 'eval'} "
                       "has none")
    # The questions are about seeds/: their own local index, so the main index (or Milvus) is left alone.
    docs = Path(args.docs or PROJECT_ROOT / "seeds").resolve()
    # One private index per documents folder: calibrating on another folder never meets the first's.
    private = base.cache_dir / f"calibration-index-{hashlib.sha256(str(docs).encode()).hexdigest()[:12]}"
    settings = base.replace(docs_dir=docs, store="faiss", index_dir=args.index or private)
    # The margin is measured alone, as the shipped one was: the judge's cut was chosen beside it, not under it.
    engine = Engine(settings, calibration=BEING_MEASURED, judge=None)
    bars = ProgressBars()
    try:
        engine.open(progress=bars)
    finally:
        bars.close()
    entry, rows = calibrate_engine(engine, files)
    path = write_calibration(entry, settings.cache_dir)
    answerable = sum(r.answerable for r in rows)
    print(f"{entry.model}: abstain below a margin of {entry.margin_threshold:+.4f} over unrelated text "
          f"({len(rows)} tuning questions, {answerable} answerable; leave-one-out decisions right "
          f"{entry.leave_one_out_decision_accuracy:.1%}). Kept in {path}.")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from .evaluate.feedback import export

    settings = _settings(args)
    target = Path(args.out)
    labelled, unlabelled = export(settings.feedback_path, target)
    print(f"{labelled} rated questions written to {target} (rag eval {target}); "
          f"{unlabelled} to label by hand in {target.with_name(target.stem + '-to-label.jsonl')}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .config import PROJECT_ROOT
    from .learn.run import feedback_examples, run
    from .learn.trainer import TrainSettings

    settings = _settings(args)
    if args.feedback_repeat != 1 and not args.feedback:
        raise RagError("--feedback-repeat repeats the ratings of --feedback: give the ratings file "
                          "(--feedback index/feedback.jsonl), or leave --feedback-repeat out")
    train_settings = TrainSettings(method=args.method, rank=args.rank, alpha=args.alpha, targets=args.targets,
                                   learning_rate=args.learning_rate or (3e-4 if args.method == "lora" else 3e-5),
                                   epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                   max_steps=args.max_steps, temperature=args.temperature,
                                   paragraph_negatives=args.paragraph_negatives, mined_negatives=args.mined_negatives,
                                   translated_questions=args.translated, feedback_repeat=args.feedback_repeat,
                                   beside=args.beside)
    extra = feedback_examples(Path(args.feedback)) if args.feedback else None
    out = None if args.dry_run else Path(args.out) if args.out else PROJECT_ROOT / "rag" / "data" / "adapter"
    record = run(train_settings, Path(args.data) if args.data else PROJECT_ROOT / "train", out, settings.cache_dir,
                 extra=extra, log=lambda line: print(line, file=sys.stderr))
    print(json.dumps({k: record[k] for k in ("steps", "seconds", "heldout")}, indent=1))
    return 0


def cmd_train_judge(args: argparse.Namespace) -> int:
    from .config import PROJECT_ROOT
    from .learn.judge import JudgeSettings, run_judge

    settings = _settings(args)
    judge_settings = JudgeSettings(steps=args.steps, batch=args.batch, negatives=args.negatives,
                                   null_share=args.null_share, seed=args.seed)
    out = None if args.dry_run else Path(args.out) if args.out else PROJECT_ROOT / "rag" / "data" / "judge"
    record = run_judge(judge_settings, Path(args.data) if args.data else PROJECT_ROOT / "train", out,
                       settings.cache_dir, measure=args.measure, log=lambda line: print(line, file=sys.stderr))
    print(json.dumps({k: record[k] for k in ("seconds", "heldout_sentence_first")}, indent=1))
    if out is not None:
        print(f"Choose its cut before using it: python bench/cross_encoder.py abstain --judge {out} --write-cut",
              file=sys.stderr)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    engine = _engine(args)
    report = engine.remove(args.file)
    print(f"Removed {args.file}: the index now holds {report.documents} documents ({report.index.folder})")
    return 0


def cmd_replace(args: argparse.Namespace) -> int:
    engine = _engine(args)
    report = engine.replace(args.file, Path(args.new))
    print(f"Replaced {args.file} by {args.new}: {report.embedded_documents} document(s) embedded "
          f"({report.index.folder})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.app import serve

    serve(settings=_settings(args))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rag", description="Bilingual (French/English) extractive answers with exact citations.")
    sub = top.add_subparsers(dest="command", required=True)
    _question_commands(sub)
    _document_commands(sub)
    _train_command(sub)
    _serve_command(sub)
    return top


def _common(p: argparse.ArgumentParser) -> None:
    """The options every command over one collection takes."""
    p.add_argument("--docs", help="documents folder (default: the one the index was built from, else seeds/; or RAG_DOCS_DIR)")
    p.add_argument("--index", help="index folder (default: index/, or RAG_INDEX_DIR)")
    p.add_argument("--collection", help="a named collection (its documents and index under RAG_COLLECTIONS_DIR, "
                   "collections/ by default); name its documents folder with --docs on its first build")
    p.add_argument("--model", help="sentence-transformers model name or folder (default: RAG_EMBED_MODEL or multilingual-e5-small)")
    p.add_argument("--store", choices=("faiss", "milvus"), default=None,
                   help="where the index lives (default: faiss, or RAG_STORE); milvus reads RAG_MILVUS_URI")


def _question_commands(sub: Any) -> None:
    """build, ask, eval, calibrate."""
    build = sub.add_parser("build", help="build or update the index from the documents folder")
    _common(build)
    build.add_argument("--rebuild", action="store_true",
                       help="replace the index's documents by those of --docs (an index built from another folder "
                       "is otherwise refused)")
    build.set_defaults(run=cmd_build)

    ask = sub.add_parser("ask", help="answer a question (built index first if missing)")
    _common(ask)
    ask.add_argument("question", nargs="?", help="the question, in French or English")
    ask.add_argument("--json", action="store_true", help="print the JSON answer object")
    ask.add_argument("--jsonl", action="store_true", help="read one question per line on stdin, write one JSON object per line")
    ask.set_defaults(run=cmd_ask)

    ev = sub.add_parser("eval", help="measure retrieval, answers, abstention and latency on labelled questions")
    _common(ev)
    ev.add_argument("files", nargs="*", help="JSONL files in the format of eval/dev.jsonl (with --squad: "
                    "questions about something else, asked of the SQuAD corpus; they should abstain)")
    ev.add_argument("--squad", help="a SQuAD-format JSON file: its contexts are indexed as documents, its questions asked")
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    ev.set_defaults(run=cmd_eval)

    cal = sub.add_parser("calibrate", help="measure the abstention threshold of the model in use (RAG_EMBED_MODEL, "
                         "RAG_EMBED_BACKEND) on the tuning half of eval/")
    # Calibration always indexes the labelled questions' documents in its own local FAISS folder.
    cal.add_argument("--docs", help="the documents the questions are about (default: seeds/)")
    cal.add_argument("--index", help="where to index them (default: a calibration-index-… folder in the cache "
                     "folder, one per documents folder)")
    cal.add_argument("--model", help="sentence-transformers model name or folder (default: RAG_EMBED_MODEL)")
    cal.add_argument("files", nargs="*", help="labelled questions (default: eval/*.jsonl, about seeds/)")
    cal.set_defaults(run=cmd_calibrate)


def _document_commands(sub: Any) -> None:
    """feedback, remove, replace."""
    feedback = sub.add_parser("feedback", help="readers' ratings of answers")
    _common(feedback)
    feedback.add_argument("action", choices=["export"], help="export: write the ratings as eval questions")
    feedback.add_argument("--out", default="build/feedback-eval.jsonl",
                          help="the eval JSONL to write (default build/feedback-eval.jsonl)")
    feedback.set_defaults(run=cmd_feedback)

    remove = sub.add_parser("remove", help="take a document out of the index and delete its file")
    _common(remove)
    remove.add_argument("file", help="the document as citations name it (path inside the documents folder)")
    remove.set_defaults(run=cmd_remove)

    swap = sub.add_parser("replace", help="put a new file in place of a document and re-index it")
    _common(swap)
    swap.add_argument("file", help="the document as citations name it (path inside the documents folder)")
    swap.add_argument("new", help="the file whose content replaces it")
    swap.set_defaults(run=cmd_replace)


def _train_command(sub: Any) -> None:
    tr = sub.add_parser("train", help="fine-tune the embedding model on train/ (LoRA) and write the adapter")
    tr.add_argument("--method", choices=("lora", "full"), default="lora",
                    help="lora (the adapter), or full: every transformer layer, embeddings frozen (a reference, not saved)")
    tr.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    tr.add_argument("--alpha", type=int, default=16, help="LoRA alpha (default 16)")
    tr.add_argument("--targets", choices=("all-linear", "attention"), default="all-linear",
                    help="the layers LoRA adapts (default: every linear layer of every block)")
    tr.add_argument("--learning-rate", type=float, default=None, help="default 3e-4 for lora, 3e-5 for full")
    tr.add_argument("--epochs", type=float, default=1.0, help="passes over the training half (default 1, as the shipped adapter)")
    tr.add_argument("--batch-size", type=int, default=16, help="questions per step (default 16)")
    tr.add_argument("--paragraph-negatives", type=int, default=1,
                    help="other sentences of the answer's paragraph per question (default 1)")
    tr.add_argument("--mined-negatives", type=int, default=1,
                    help="sentences of other paragraphs the base model ranks highest, per question (default 1)")
    tr.add_argument("--temperature", type=float, default=0.01,
                    help="of the contrastive loss (default 0.01, the base model's own: its cosines keep their scale)")
    tr.add_argument("--seed", type=int, default=0, help="the seed of the order, the negatives and torch (default 0)")
    tr.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (default: the epochs')")
    tr.add_argument("--translated", action=argparse.BooleanOptionalAction, default=True,
                    help="also ask every training question in the other language (train/questions-translated.json; "
                         "default: yes, as the shipped adapter)")
    tr.add_argument("--beside", action="store_true",
                    help="the loss reads the adapter's vectors beside the base model's, as RAG_EMBED_ADAPTER=beside:OUT "
                         "answers (not the shipped run: it lost on the development halves, BENCHMARKS)")
    tr.add_argument("--data", help="folder of the SQuAD files (default: train/)")
    tr.add_argument("--out", help="where to write the adapter (default: rag/data/adapter, the shipped one)")
    tr.add_argument("--feedback", help="a ratings file (index/feedback.jsonl): liked answers and readers' corrections join the training pairs")
    tr.add_argument("--feedback-repeat", type=int, default=1,
                    help="take each rating of --feedback this many times among the pairs (default 1)")
    tr.add_argument("--dry-run", action="store_true", help="train and measure, write nothing")
    tr.set_defaults(run=cmd_train)
    tj = sub.add_parser("train-judge", help="train the judge (a cross-encoder that says when no sentence answers) "
                                            "on train/ and write it")
    tj.add_argument("--steps", type=int, default=700, help="steps (default 700, as the shipped judge)")
    tj.add_argument("--batch", type=int, default=8, help="questions per step (default 8)")
    tj.add_argument("--negatives", type=int, default=3, help="other sentences per question (default 3)")
    tj.add_argument("--null-share", type=float, default=0.5,
                    help="share of questions asked against other articles' sentences only (default 0.5)")
    tj.add_argument("--seed", type=int, default=0, help="default 0")
    tj.add_argument("--measure", type=int, default=600, help="held-out questions measured after training (default 600)")
    tj.add_argument("--data", help="folder of the SQuAD files and their translations (default: train/)")
    tj.add_argument("--out", help="where to write the judge (default: rag/data/judge, the shipped one)")
    tj.add_argument("--dry-run", action="store_true", help="train and measure, write nothing")
    tj.set_defaults(run=cmd_train_judge)


def _serve_command(sub: Any) -> None:
    serve = sub.add_parser("serve", help="start the chat in the browser")
    _common(serve)
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1, or RAG_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default 7860, or RAG_PORT)")
    serve.add_argument("--root-path", default=None, help="URL prefix behind a reverse proxy (or RAG_ROOT_PATH)")
    serve.set_defaults(run=cmd_serve)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from .config import Settings

        configure_logging(Settings.resolve().log_level)
        return int(args.run(args))
    except RagError as exc:
        print(f"rag: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
