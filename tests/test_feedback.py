"""Readers' ratings: durable, safe with concurrent writers, exported as eval questions `rag eval` reads."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest

from rag.errors import RagError
from rag.evaluate import load_questions
from rag.evaluate.feedback import (CORRECTED, DISLIKE, LIKE, SHOULD_ABSTAIN, WRONG_QUOTE, Rating, ShownPassage,
                                   answering_choices, correction_of, export, rating_of, read, record, shown_passages)

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


SHOWN_DOCUMENT = "# Kantar\n\nKantar publie ses prédictions. Le social commerce va croître.Les marques suivront."
SHOWN_AT = SHOWN_DOCUMENT.index("Kantar publie")
SHOWN_SENTENCES = ("Kantar publie ses prédictions.", "Le social commerce va croître.", "Les marques suivront.")
SHOWN = [ShownPassage(1, SHOWN_AT, SHOWN_DOCUMENT[SHOWN_AT:],
                      tuple((SHOWN_DOCUMENT.index(t), SHOWN_DOCUMENT.index(t) + len(t)) for t in SHOWN_SENTENCES))]


def test_a_reader_points_at_a_sentence_of_a_shown_passage_and_it_becomes_the_evidence(tmp_path):
    choices = answering_choices(SHOWN)
    assert [label for label, _ in choices] == [f"[1] {t}" for t in SHOWN_SENTENCES]
    for label, value in choices:
        pointed = correction_of(SHOWN, value)
        assert SHOWN_DOCUMENT[pointed["start"]:pointed["end"]] == pointed["text"] == label[4:]
        assert pointed["passage"] == SHOWN_DOCUMENT[pointed["passage_start"]:]
    path = tmp_path / "feedback.jsonl"
    record(path, Rating("Que va devenir le social commerce ?", (), WRONG_QUOTE, ABSTAINED))
    record(path, Rating("Que va devenir le social commerce ?", (), CORRECTED, ABSTAINED,
                        answering=correction_of(SHOWN, choices[1][1])))
    target = tmp_path / "feedback-eval.jsonl"
    assert export(path, target) == (1, 0)  # the correction supersedes the complaint
    assert load_questions([target])[0]["evidence"] == "Le social commerce va croître."


@pytest.mark.parametrize("forged", ["", "1:2", "a:b:c", "2:0:5", f"1:{SHOWN_AT}:{SHOWN_AT + 5}",
                                    f"1:0:{SHOWN_AT + 30}", f"1:{SHOWN_AT}:{len(SHOWN_DOCUMENT) + 1}",
                                    "1:" + "9" * 5000 + ":1"])
def test_a_pointed_sentence_that_is_not_a_shown_sentence_is_refused(forged):
    with pytest.raises(RagError, match="not a sentence of this answer"):
        correction_of(SHOWN, forged)


def test_a_correction_for_a_document_removed_since_says_so(embedder, tmp_path):
    """The reader points after the cited document was removed: the version now served no longer holds it,
    and nothing is recorded."""
    import shutil

    from rag.config import Settings
    from rag.engine import Engine
    from tests.conftest import SEEDS

    shutil.copytree(SEEDS, tmp_path / "docs")
    engine = Engine(Settings.resolve(docs_dir=tmp_path / "docs", index_dir=tmp_path / "index"), embedder=embedder)
    engine.open()
    answer = engine.ask("Qu'est-ce que Kantar prévoit pour le social commerce ?")
    quoted = answer.sentences[0]
    choice = f"{quoted.citation}:{quoted.start}:{quoted.end}"
    assert correction_of(shown_passages(answer, engine.index), choice)["text"] == quoted.text
    engine.remove(engine.index.documents[quoted.doc_id].source)
    with pytest.raises(RagError, match="no longer in the collection"):
        correction_of(shown_passages(answer, engine.index), choice)


def test_a_long_sentence_is_shown_cut_in_the_list_but_recorded_whole():
    sentence = "Le social commerce " + "va croître encore " * 20 + "demain."
    [(label, value)] = answering_choices([ShownPassage(2, 0, sentence, ((0, len(sentence)),))])
    assert len(label) <= 4 + 160 and label.endswith("…")
    assert correction_of([ShownPassage(2, 0, sentence, ((0, len(sentence)),))], value)["text"] == sentence


def test_the_shown_sentences_are_the_cited_documents_rows_in_reading_order(seed_engine):
    """Real index: a refusal's closest passages and an answer's quotes each open their whole document, with
    its own citation number; every choice is an exact slice of its document, and the quoted sentence is one."""
    index = seed_engine.index
    answer = seed_engine.ask("Qu'est-ce que Kantar prévoit pour le social commerce ?")
    passages = shown_passages(answer, index)
    documents = {c.n: c.doc_id for c in answer.citations}
    assert {p.citation for p in passages} == {min(c.n for c in answer.citations if c.doc_id == d)
                                              for d in set(documents.values())}
    for passage in passages:
        text = index.document_text(documents[passage.citation])
        assert text[passage.start:passage.start + len(passage.text)] == passage.text
        assert all(text[a:b] == passage.text[a - passage.start:b - passage.start] for a, b in passage.sentences)
    kantar = [p for p in passages if documents[p.citation] == answer.sentences[0].doc_id]
    assert [p.start for p in kantar] == sorted(p.start for p in kantar)
    assert len(kantar) == len(index.passage_ids_of(answer.sentences[0].doc_id))
    quoted = answer.sentences[0]
    assert correction_of(passages, f"{kantar[0].citation}:{quoted.start}:{quoted.end}")["text"] == quoted.text
    few = shown_passages(answer, index, max_passages=1)
    assert len([p for p in few if documents[p.citation] == quoted.doc_id]) == 1
    assert any(a <= quoted.start and quoted.end <= b for p in few for a, b in [(p.start, p.start + len(p.text))])
