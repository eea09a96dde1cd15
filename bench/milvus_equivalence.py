"""The same questions on both stores: does Milvus cite what FAISS cites?

Builds the seeds (eval/*.jsonl) and the service-public corpus (SQuAD format) twice,
in FAISS and in Milvus through a real `milvus-lite server` on a loopback port,
with the real model, and reports per corpus: the share of questions whose first
cited sentence (and abstention) is the same, and the `rag eval` figures of each
store side by side.

Run: python bench/milvus_equivalence.py [--squad ../shared/eval/service-public/squad.json] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir", str(folder),
                                "--host", "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    raise RuntimeError("milvus-lite server did not start")


def first_sentence(answer) -> tuple[bool, str | None]:
    return answer.abstained, answer.sentences[0].text if answer.sentences else None


def heldout_figures(report: dict) -> dict:
    """The held-out half, all languages, with its latency: the figures the README reports first."""
    half = report["splits"]["heldout"]
    return {**half["all"], "latency_ms_p50": half.get("latency_ms", {}).get("p50")}


def compare(name: str, engines: dict, asks: list[tuple[str, list[str] | None]], report_of) -> dict:
    answers = {store: [engine.ask(q, h) for q, h in asks] for store, engine in engines.items()}
    same = sum(first_sentence(a) == first_sentence(b) for a, b in zip(answers["faiss"], answers["milvus"]))
    row = {"corpus": name, "questions": len(asks), "same_first_sentence": same / len(asks)}
    for store, engine in engines.items():
        row[store] = report_of(engine)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", default=str(ROOT.parent / "shared" / "eval" / "service-public" / "spf_qr_test.json"))
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "milvus_equivalence.json"))
    args = parser.parse_args()

    from rag.config import Settings
    from rag.embedding.embedder import Embedder
    from rag.engine import Engine
    from rag.evaluate import load_questions
    from rag.evaluate.labelled import evaluate
    from rag.evaluate.squad import evaluate_squad, load_squad, write_documents

    embedder = Embedder()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        server, uri = start_server(scratch / "milvus")
        try:
            def engines_for(docs: Path, name: str) -> dict:
                out = {}
                for store in ("faiss", "milvus"):
                    settings = Settings.resolve(docs_dir=docs, index_dir=scratch / f"{name}-{store}", store=store,
                                                milvus_uri=uri, milvus_collection=f"eq_{name}")
                    started = time.perf_counter()
                    out[store] = Engine(settings, embedder=embedder)
                    out[store].open()
                    print(f"{name}: {store} index ready in {time.perf_counter() - started:.1f} s", flush=True)
                return out

            items = load_questions(sorted((ROOT / "eval").glob("*.jsonl")))
            engines = engines_for(ROOT / "seeds", "seeds")
            rows.append(compare("eval/ (seeds)", engines, [(i["question"], i.get("history")) for i in items],
                                lambda engine: heldout_figures(evaluate(engine, items)[1])))
            squad = Path(args.squad)
            if squad.exists():
                documents, questions = load_squad(squad)
                docs = scratch / "squad-docs"
                write_documents(documents, docs)
                engines = engines_for(docs, "squad")
                foreign = [i["question"] for i in items]
                rows.append(compare("service-public", engines, [(q.question, None) for q in questions],
                                    lambda engine: evaluate_squad(engine, questions, foreign)[1]))
        finally:
            server.terminate()
            server.wait(30)
    for row in rows:
        print(f"\n{row['corpus']}: {row['questions']} questions, same first cited sentence and abstention "
              f"{row['same_first_sentence']:.1%}")
        keys = [k for k, v in row["faiss"].items() if isinstance(v, (int, float)) and not k.startswith("latency")]
        print(f"{'metric':<28}{'faiss':>10}{'milvus':>10}")
        for key in keys:
            print(f"{key:<28}{row['faiss'][key]:>10}{row['milvus'].get(key, ''):>10}")
        for key in ("latency_ms_p50",):
            if key in row["faiss"]:
                print(f"{key:<28}{row['faiss'][key]:>10}{row['milvus'][key]:>10}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
