"""Readers' ratings: durable, safe with concurrent writers, exported as eval questions `rag eval` reads."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest

from rag.errors import RagError
from rag.evaluate import load_questions
from rag.evaluate.feedback import (DISLIKE, LIKE, SHOULD_ABSTAIN, WRONG_QUOTE, Rating, export, rating_of, read,
                                   record)

ANSWERED = {"language": "fr", "abstained": False, "answer": "« Un développement du social commerce. » [1]",
            "sentences": [{"text": "Un développement du social commerce.", "citation": 1, "start": 10, "end": 46}],
            "citations": [{"n": 1, "document": "kantar.txt"}]}
ABSTAINED = {"language": "en", "abstained": True, "answer": "The documents don't answer this.", "sentences": []}


def test_ratings_are_appended_and_read_back(tmp_path):
    path = tmp_path / "feedback.jsonl"
    record(path, Rating("Q1 ?", (), LIKE, ANSWERED))
    record(path, Rating("Q2 ?", ("Q1 ?",), WRONG_QUOTE, ANSWERED))
    rows = read(path)
    assert [(r["question"], r["rating"], r["history"]) for r in rows] == [("Q1 ?", LIKE, []),
                                                                          ("Q2 ?", WRONG_QUOTE, ["Q1 ?"])]
    assert rows[0]["at"].endswith("Z")


def test_a_line_cut_by_a_crash_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "feedback.jsonl"
    record(path, Rating("Q1 ?", (), LIKE, ANSWERED))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"question": "cut in the mid')
    record(path, Rating("Q2 ?", (), DISLIKE, ANSWERED))
    assert [r["question"] for r in read(path)] == ["Q1 ?", "Q2 ?"]  # the cut line is ended, the next kept whole


def _write_many(path: str, worker: int) -> None:
    for n in range(50):
        record(__import__("pathlib").Path(path), Rating(f"w{worker} q{n} " + "x" * 3000, (), LIKE, ANSWERED))


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "feedback.jsonl"
    processes = [multiprocessing.get_context("fork").Process(target=_write_many, args=(str(path), w)) for w in range(3)]
    threads = [threading.Thread(target=_write_many, args=(str(path), 10 + w)) for w in range(3)]
    for worker in processes + threads:
        worker.start()
    for worker in processes + threads:
        worker.join()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300 and all(json.loads(line)["rating"] == LIKE for line in lines)


def test_gradio_like_values_map_to_ratings():
    assert rating_of(True) == LIKE and rating_of(False) == DISLIKE and rating_of(SHOULD_ABSTAIN) == SHOULD_ABSTAIN
    with pytest.raises(RagError, match="unknown feedback"):
        rating_of("<script>")


def test_export_writes_what_rag_eval_reads_and_the_rest_to_label(tmp_path):
    path = tmp_path / "feedback.jsonl"
    record(path, Rating("Que prévoit Kantar ?", (), DISLIKE, ANSWERED))
    record(path, Rating("Que prévoit Kantar ?", (), LIKE, ANSWERED))  # the last rating of a question wins
    record(path, Rating("What is the speed of light?", (), LIKE, ABSTAINED))
    record(path, Rating("Quel temps fait-il ?", (), SHOULD_ABSTAIN, ANSWERED))
    record(path, Rating("Et pour 2020 ?", ("Que prévoit Kantar ?",), WRONG_QUOTE, ANSWERED))
    target = tmp_path / "out" / "feedback-eval.jsonl"
    assert export(path, target) == (3, 1)
    items = load_questions([target])
    by_question = {i["question"]: i for i in items}
    assert by_question["Que prévoit Kantar ?"]["evidence"] == "Un développement du social commerce."
    assert by_question["What is the speed of light?"]["answerable"] is False
    assert by_question["Quel temps fait-il ?"]["answerable"] is False
    to_label = [json.loads(line) for line in (tmp_path / "out" / "feedback-eval-to-label.jsonl").read_text().splitlines()]
    assert to_label == [{"question": "Et pour 2020 ?", "history": ["Que prévoit Kantar ?"], "rating": WRONG_QUOTE,
                         "answer": ANSWERED["answer"]}]
