"""End-to-end growth: synthetic corpora of 10k, 100k and 1M passages answered by the real pipeline.

Passages recombine the seeds' real sentences (1 to 3 each, 100 passages a document),
so BM25, the candidate pool and the sentence selection see real text. Embedding a
million passages would take this CPU hours, so their vectors are the real
sentence (and clause) vectors plus small noise, and a passage's vector is the
normalized mean of its sentences': the vector index is measured on realistic
shapes without re-running the model. Questions (the eval set) are embedded for real.

Reports, per size: time to assemble each part, the passage index kind chosen
automatically, RSS, disk (written with the real store, `--write`), warm answer
latency p50/p95 per stage.

Run: python bench/bench_growth.py [--sizes 10000,100000,1000000] [--write] [--json build/bench/growth.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PER_DOC = 100


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic_index(real, n_passages: int, seed: int = 0):
    from rag.index.lexical import LexicalIndex
    from rag.text.analyzer import analyze
    from rag.records import Document, Passage, Sentence
    from rag.index.reader import Index
    from rag.index.dense import build_faiss, choose_kind

    rng = np.random.default_rng(seed)
    base = real.sentences
    base_vectors = np.asarray(real.sentence_vectors)
    base_clauses = {i: np.asarray(real.clause_vectors[np.flatnonzero(real.clause_sentence == i)]) for i in range(len(base))}
    tokens = [analyze(s.text, "fr") for s in base]
    timings = {}

    started = time.perf_counter()
    picks_per_passage = rng.integers(1, 4, n_passages)
    picks = rng.integers(0, len(base), int(picks_per_passage.sum()))
    documents, passages, sentences = {}, [], []
    cursor = 0
    for doc_number in range(0, n_passages, PER_DOC):
        doc_id = f"syn{doc_number // PER_DOC:07d}"
        title = f"Synthèse {doc_number // PER_DOC}"
        parts, offset = [title], len(title) + 1
        for position, pid in enumerate(range(doc_number, min(n_passages, doc_number + PER_DOC))):
            ids, start = [], offset
            for k in range(picks_per_passage[pid]):
                source = base[picks[cursor]]
                cursor += 1
                if k:
                    offset += 1
                sentences.append(Sentence(len(sentences), doc_id, pid, offset, offset + len(source.text), source.text))
                ids.append(len(sentences) - 1)
                offset += len(source.text)
            text = " ".join(sentences[i].text for i in ids)
            passages.append(Passage(pid, doc_id, f"{doc_id}.txt", title, 2019 + doc_number // PER_DOC % 3, start,
                                    offset, text, tuple(ids), position))
            parts.append(text)
            offset += 1
        body = "\n".join(parts) + "\n"
        documents[doc_id] = Document(doc_id, f"{doc_id}.txt", title, body, "text", "fr",
                                     2019 + doc_number // PER_DOC % 3, "", ())
    timings["records_s"] = time.perf_counter() - started

    started = time.perf_counter()
    noise = lambda shape: rng.normal(0, 0.02, shape).astype(np.float32)  # noqa: E731
    sentence_vectors = unit(base_vectors[picks] + noise((len(picks), base_vectors.shape[1])))
    owners = np.repeat(np.arange(n_passages), picks_per_passage)
    sums = np.zeros((n_passages, base_vectors.shape[1]), dtype=np.float32)
    np.add.at(sums, owners, sentence_vectors)
    passage_vectors = unit(sums + noise(sums.shape))
    clause_blocks, clause_owner = [], []
    for sentence_id, pick in enumerate(picks):
        block = base_clauses[int(pick)]
        if len(block):
            clause_blocks.append(block)
            clause_owner.append(np.full(len(block), sentence_id))
    clause_vectors = unit(np.vstack(clause_blocks) + noise((sum(len(b) for b in clause_blocks), base_vectors.shape[1])))
    clause_sentence = np.concatenate(clause_owner).astype(np.int64)
    timings["vectors_s"] = time.perf_counter() - started

    started = time.perf_counter()
    sentence_bm25 = LexicalIndex.build([tokens[int(p)] for p in picks])
    passage_tokens, at = [], 0
    for count in picks_per_passage:
        passage_tokens.append([t for p in picks[at : at + count] for t in tokens[int(p)]])
        at += count
    passage_bm25 = LexicalIndex.build(passage_tokens)
    timings["bm25_s"] = time.perf_counter() - started

    started = time.perf_counter()
    kind = choose_kind(n_passages)
    passage_faiss = build_faiss(passage_vectors, passage_vectors.shape[1], kind)
    timings["faiss_s"] = time.perf_counter() - started

    doc_passages: dict[str, list[int]] = {}
    for passage in passages:
        doc_passages.setdefault(passage.doc_id, []).append(passage.passage_id)
    manifest = {"model": real.manifest["model"], "counts": {"documents": len(documents), "passages": n_passages,
                                                            "sentences": len(sentences), "clauses": len(clause_sentence)},
                "faiss": {"passages": kind}, "documents": []}
    index = Index(Path("."), manifest, documents, tuple(passages), tuple(sentences), passage_vectors,
                  sentence_vectors, passage_faiss, passage_bm25, sentence_bm25, clause_vectors, clause_sentence,
                  {k: tuple(v) for k, v in doc_passages.items()})
    return index, timings, kind


def write_index(index, folder: Path, manifest: dict) -> Path:
    """`index` written as a FAISS index version with the real store; returns its folder."""
    from dataclasses import asdict

    from rag.index.dense import write_faiss
    from rag.index.store import document_to_json, write_jsonl, write_version

    return write_version(folder, {**manifest, "format_version": 1}, {
        "documents.jsonl": lambda p: write_jsonl(p, [document_to_json(d) for d in index.documents.values()]),
        "passages.jsonl": lambda p: write_jsonl(p, [asdict(x) for x in index.passages]),
        "sentences.jsonl": lambda p: write_jsonl(p, [asdict(x) for x in index.sentences]),
        "passages.npy": lambda p: np.save(p, index.passage_vectors, allow_pickle=False),
        "sentences.npy": lambda p: np.save(p, index.sentence_vectors, allow_pickle=False),
        "clauses.npy": lambda p: np.save(p, index.clause_vectors, allow_pickle=False),
        "clause_sentence.npy": lambda p: np.save(p, index.clause_sentence, allow_pickle=False),
        "passages.faiss": lambda p: write_faiss(index.passage_faiss, p),
        "bm25-passages": lambda p: index.passage_bm25.save(p),
        "bm25-sentences": lambda p: index.sentence_bm25.save(p),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--write", action="store_true", help="also write each index with the real store and measure disk")
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "growth.json"))
    args = parser.parse_args()

    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate import load_questions

    engine = Engine(Settings.resolve())
    engine.warm_up()
    real = engine.index
    questions = [(i["question"], i.get("history")) for i in load_questions([ROOT / "eval" / "dev.jsonl", ROOT / "eval" / "own.jsonl"])]
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        before = rss_mb()
        index, timings, kind = synthetic_index(real, n)
        row = {"passages": n, "sentences": len(index.sentences), "clauses": len(index.clause_sentence), "faiss_kind": kind,
               **timings, "rss_mb_added": rss_mb() - before}
        engine._index = index
        index.sentence_doc  # derived lookups are built once, like at load time
        engine.ask(*questions[0])
        per_stage: dict[str, list[float]] = {}
        for question, history in questions * 2:
            for stage, ms in engine.ask(question, history).timings_ms.items():
                per_stage.setdefault(stage, []).append(ms)
        for stage, values in per_stage.items():
            ordered = sorted(values)
            row[f"{stage}_p50_ms"] = statistics.median(values)
            row[f"{stage}_p95_ms"] = ordered[int(0.95 * len(ordered)) - 1]
        if args.write:
            with tempfile.TemporaryDirectory() as scratch:
                started = time.perf_counter()
                folder = write_index(index, Path(scratch), index.manifest)
                row["write_s"] = time.perf_counter() - started
                row["disk_mb"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
                started = time.perf_counter()
                from rag.index.store import load

                load(Path(scratch))
                row["load_s"] = time.perf_counter() - started
        results.append(row)
        print(f"{n:>9} passages ({row['sentences']} sentences, {row['clauses']} clauses), index {kind}: "
              f"records {timings['records_s']:.1f} s, vectors {timings['vectors_s']:.1f} s, "
              f"bm25 {timings['bm25_s']:.1f} s, faiss {timings['faiss_s']:.1f} s, +{row['rss_mb_added']:.0f} MB RSS"
              + (f", disk {row['disk_mb']:.0f} MB, write {row['write_s']:.1f} s, load {row['load_s']:.1f} s"
                 if args.write else ""), flush=True)
        print("          answer p50/p95 ms: " + ", ".join(
            f"{stage} {row[f'{stage}_p50_ms']:.1f}/{row[f'{stage}_p95_ms']:.1f}"
            for stage in ("embed", "dense_search", "lexical_search", "fusion", "selection", "total")), flush=True)
        engine._index = real
        index = None  # release this corpus before building the next one
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
