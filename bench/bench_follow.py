"""Users asking while a `rag build` in another process lands a new version (issue 27).

Starts the real chat server over a copy of the seeds, lets `--users` clients ask `--questions`
questions each through the web API, and meanwhile adds a document and runs `rag build` as a
separate process. Prints the errors, when the new version landed (CURRENT replaced), when the
server answered from it, and when the first answer citing the new document came back.

    .venv/bin/python bench/bench_follow.py --users 32 --questions 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ["Qu'est-ce que Kantar prévoit pour le social commerce ?", "Who calls digital an object of domination?",
             "Quelles sont les prédictions de Kantar pour 2019 ?", "Qui voit l'influence en voie d'assainissement ?"]
NEW_DOCUMENT = ("La lettre d'information des médias\n"
                "Les newsletters éditoriales des médias régionaux ont doublé leurs abonnés payants en 2024, "
                "portées par les offres groupées avec la presse papier.\n")
NEW_QUESTION = "Combien d'abonnés payants ont gagné les newsletters éditoriales des médias régionaux ?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()

    from gradio_client import Client

    from rag.config import Settings
    from rag.index.store import read_pointer
    from tests.conftest import SEEDS, free_port
    from ui.app import serve

    work = Path(tempfile.mkdtemp(prefix="bench-follow-"))
    docs, index_dir = work / "docs", work / "index"
    shutil.copytree(SEEDS, docs)
    settings = Settings.resolve(docs_dir=docs, index_dir=index_dir, queue_size=max(64, args.users * 2))
    handle = serve(port=free_port(), settings=settings, block=False)
    assert handle.rag_state.ready.wait(600) and not handle.rag_state.error, handle.rag_state.error
    engine = handle.rag_state.engine
    print(f"load average: {os.getloadavg()[0]:.2f}; serving {engine.index.folder.name}")

    errors: list[str] = []
    answers = [0]
    marks: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def user(number: int) -> None:
        client = Client(handle.url, verbose=False)
        for n in range(args.questions):
            try:
                result = client.predict(QUESTIONS[(number + n) % len(QUESTIONS)], [], api_name="/ask")
                if "error" in result:
                    raise RuntimeError(result["error"])
                with lock:
                    answers[0] += 1
            except Exception as exc:  # counted, not raised: the figure is how many
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])

    def watch() -> None:
        first = read_pointer(index_dir).get("current")
        while not stop.is_set():
            now = time.perf_counter()
            if "landed" not in marks and read_pointer(index_dir).get("current") != first:
                marks["landed"] = now
            if "landed" in marks and "served" not in marks and engine.index.folder.name != first:
                marks["served"] = now
            time.sleep(0.005)

    def probe() -> None:
        client = Client(handle.url, verbose=False)
        while not stop.is_set():
            sent = time.perf_counter()
            result = client.predict(NEW_QUESTION, [], api_name="/ask")
            if any(c.get("document") == "nouveau.txt" for c in result.get("citations", [])):
                marks["cited_sent"], marks["cited"] = sent, time.perf_counter()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    users = [threading.Thread(target=user, args=(n,)) for n in range(args.users)]
    started = time.perf_counter()
    for thread in users:
        thread.start()
    (docs / "nouveau.txt").write_text(NEW_DOCUMENT, encoding="utf-8")
    build = subprocess.Popen([sys.executable, "-m", "rag.cli", "build", "--docs", str(docs), "--index", str(index_dir)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    code = build.wait()
    for thread in users:
        thread.join()
    prober.join(120)
    stop.set()
    elapsed = time.perf_counter() - started
    print(f"rag build exit {code}{': ' + build.stderr.read()[-300:] if code else ''}")
    print(f"{args.users} users x {args.questions} questions: {answers[0]} answered, {len(errors)} errors "
          f"in {elapsed:.1f} s" + (f"; first error: {errors[0]}" if errors else ""))
    if "landed" in marks and "served" in marks:
        print(f"new version served {marks['served'] - marks['landed']:.3f} s after CURRENT was replaced")
    if "cited" in marks and "landed" in marks:
        print(f"first answer citing the new document: asked {marks['cited_sent'] - marks['landed']:+.3f} s "
              f"from landing, answered {marks['cited'] - marks['landed']:.3f} s after it")
    handle.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
