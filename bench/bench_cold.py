"""Cold start: process start to first answer, for the CLI and for the UI, with and without an index.

Each scenario runs three times in fresh processes (the model cache exists: the
one-time materialization is measured by bench_embed.py). Figures: median [min–max]; peak
resident memory of the `rag ask` process and of the chat's after its first answer.

Run: python bench/bench_cold.py [--json build/bench/cold.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAG = [sys.executable, "-m", "rag.cli"]
QUESTION = "Qu'est-ce que Kantar prévoit pour le social commerce ?"
RUNS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_first_answer(index_dir: Path) -> tuple[float, float]:
    """Seconds to the answer, and the process's peak resident memory in MB (its own rusage)."""
    started = time.perf_counter()
    child = subprocess.Popen([*RAG, "ask", QUESTION, "--json", "--index", str(index_dir)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"rag ask failed ({child.returncode})")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def peak_mb(pid: int) -> float:
    """A running process's peak resident memory (Linux's VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ui_times(index_dir: Path) -> tuple[float, float, float]:
    from gradio_client import Client

    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([*RAG, "serve", "--port", str(port), "--index", str(index_dir)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        page_ready = time.perf_counter() - started
        Client(url, verbose=False).predict(question=QUESTION, history=[], api_name="/ask")
        return page_ready, time.perf_counter() - started, peak_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "cold.json"))
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / "built"
        subprocess.run([*RAG, "build", "--index", str(built)], check=True, cwd=ROOT, capture_output=True)
        for run in range(RUNS):
            fresh = Path(scratch) / f"fresh-{run}"
            seconds, peak = cli_first_answer(built)
            results.setdefault("cli_first_answer_with_index_s", []).append(seconds)
            results.setdefault("cli_peak_with_index_mb", []).append(peak)
            seconds, peak = cli_first_answer(fresh)
            results.setdefault("cli_first_answer_without_index_s", []).append(seconds)
            results.setdefault("cli_peak_without_index_mb", []).append(peak)
            shutil.rmtree(fresh, ignore_errors=True)
            page, answer, peak = ui_times(built)
            results.setdefault("ui_page_ready_with_index_s", []).append(page)
            results.setdefault("ui_first_answer_with_index_s", []).append(answer)
            results.setdefault("ui_peak_after_answer_mb", []).append(peak)
            page, answer, _ = ui_times(fresh)
            results.setdefault("ui_page_ready_without_index_s", []).append(page)
            results.setdefault("ui_first_answer_without_index_s", []).append(answer)
            shutil.rmtree(fresh, ignore_errors=True)
    figures = {key: spread(values) for key, values in results.items()}
    for key, value in figures.items():
        if key.endswith("_mb"):
            print(f"{key:<36} {value['median']:6.0f} MB [{value['min']:.0f}–{value['max']:.0f}]")
        else:
            print(f"{key:<36} {value['median']:6.2f} s  [{value['min']:.2f}–{value['max']:.2f}]")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
