"""Load: N simultaneous users through gradio_client, each asking in a loop.

For 1, 4, 16 and 32 users (each for --seconds, default 60), against a server
started here on loopback with an existing index: p50 and p95 latency of the
successful answers, throughput, and errors and rejections counted apart.

Run: python bench/bench_load.py [--users 1,4,16,32] [--seconds 60] [--json build/bench/load.json]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user(url: str, questions: list[str], stop: float, out: dict[str, list]) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    rng = random.Random()
    while time.perf_counter() < stop:
        question = rng.choice(questions)
        started = time.perf_counter()
        try:
            result = client.predict(question=question, history=[], api_name="/ask")
        except Exception as exc:  # the client raises for queue-full and for server errors
            kind = "rejected" if "queue" in str(exc).lower() or "503" in str(exc) else "errors"
            out[kind].append(str(exc)[:200])
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if isinstance(result, dict) and "error" not in result:
            out["latencies"].append(elapsed)
        else:
            out["errors"].append(str(result)[:200])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1,4,16,32")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "load.json"))
    args = parser.parse_args()

    from rag.evaluate import load_questions

    questions = [i["question"] for i in load_questions([ROOT / "eval" / "dev.jsonl", ROOT / "eval" / "own.jsonl"])]
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        index = Path(scratch) / "index"
        subprocess.run([sys.executable, "-m", "rag.cli", "build", "--index", str(index)], check=True, cwd=ROOT,
                       capture_output=True)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--index", str(index)],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
        try:
            while True:
                try:
                    urllib.request.urlopen(url, timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            from gradio_client import Client

            Client(url, verbose=False).predict(question="warm-up", history=[], api_name="/ask")
            for users in (int(u) for u in args.users.split(",")):
                out: dict[str, list] = {"latencies": [], "errors": [], "rejected": []}
                stop = time.perf_counter() + args.seconds
                threads = [threading.Thread(target=user, args=(url, questions, stop, out)) for _ in range(users)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                lat = sorted(out["latencies"])
                row = {"users": users, "answers": len(lat), "errors": len(out["errors"]),
                       "rejected": len(out["rejected"]), "answers_per_s": len(lat) / args.seconds,
                       "p50_ms": statistics.median(lat) if lat else None,
                       "p95_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None,
                       "sample_error": (out["errors"] or out["rejected"] or [""])[0]}
                results.append(row)
                print(f"{users:>3} users: {row['answers']:>5} answers ({row['answers_per_s']:.1f}/s), "
                      f"p50 {row['p50_ms'] or 0:7.1f} ms, p95 {row['p95_ms'] or 0:7.1f} ms, "
                      f"errors {row['errors']}, rejected {row['rejected']}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
