"""`rag eval --squad`: a SQuAD file's contexts become documents, its questions are asked and judged."""

from __future__ import annotations

import json

import pytest

from rag.errors import RagError
from rag.evaluate.squad import judge_squad, load_squad, squad_settings
from rag.records import Answer, Citation, Quote

CARTE = ("La carte de stationnement pour personnes handicapées est délivrée par la maison départementale. "
         "Elle est valable dix ans au plus. Sa délivrance est gratuite.")
CONGE = ("Le congé de naissance dure trois jours ouvrables. Il est rémunéré par l'employeur. "
         "Le salarié doit le prendre dans les quinze jours qui suivent la naissance.")


def _squad(tmp_path, impossible: bool = False):
    def qa(context, question, answer):
        return {"id": question, "question": question,
                "answers": [{"answer_start": context.index(answer), "text": answer}]}

    data = {"version": "test", "data": [
        {"title": "Carte", "paragraphs": [{"context": CARTE, "qas": [
            qa(CARTE, "Combien de temps la carte de stationnement est-elle valable ?", "dix ans au plus")]}]},
        {"title": "Congé", "paragraphs": [
            {"context": CONGE, "qas": [qa(CONGE, "Qui paie le congé de naissance ?", "rémunéré par l'employeur")]
             + ([{"id": "x", "question": "Quel temps fera-t-il ?", "answers": [], "is_impossible": True}]
                if impossible else [])},
            {"context": "Un second paragraphe sans question.", "qas": []}]},
    ]}
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_squad_file_becomes_one_document_per_context_and_its_answerable_questions(tmp_path):
    documents, questions = load_squad(_squad(tmp_path, impossible=True))
    assert documents == {"Carte.txt": CARTE, "Congé-1.txt": CONGE, "Congé-2.txt": "Un second paragraphe sans question."}
    assert [q.question for q in questions] == ["Combien de temps la carte de stationnement est-elle valable ?",
                                               "Qui paie le congé de naissance ?"]  # v2's impossible one has no span
    first = questions[0]
    assert CARTE[first.answer_start : first.answer_end] == "dix ans au plus"
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(RagError, match="not a readable SQuAD file"):
        load_squad(tmp_path / "bad.json")


def test_its_own_folders_and_collection_never_replace_the_main_index(tmp_path):
    from rag.config import Settings

    path = _squad(tmp_path)
    documents, _ = load_squad(path)
    base = Settings.resolve(cache_dir=tmp_path / "cache", index_dir=tmp_path / "main-index")
    settings = squad_settings(path, documents, base)
    assert settings.docs_dir.parent == settings.index_dir.parent and settings.docs_dir.parent.parent == tmp_path / "cache"
    assert settings.index_dir != base.index_dir and settings.milvus_collection.startswith(f"{base.milvus_collection}_squad_")
    assert (settings.docs_dir / "Carte.txt").read_text(encoding="utf-8") == CARTE


def test_a_quote_hits_the_span_only_in_the_gold_document():
    from rag.evaluate.squad import SquadQuestion

    documents = {"a": CARTE, "b": CARTE}  # by doc_id: the same text in two documents

    item = SquadQuestion("a.txt", "q", CARTE.index("dix ans"), CARTE.index("dix ans") + len("dix ans au plus"))
    start = CARTE.index("Elle est valable")
    end = start + len("Elle est valable dix ans au plus.")

    def answer(document):
        citation = Citation(1, document[0], document, "t", None, 0, len(CARTE), CARTE, 1.0, 0)
        return Answer("q", "fr", False, "", (Quote(CARTE[start:end], 1, start, end, document[0]),), (citation,))

    hit = judge_squad(item, answer("a.txt"), documents)
    assert hit.hit1 and hit.span_hit and hit.faithful
    elsewhere = judge_squad(item, answer("b.txt"), documents)
    assert not elsewhere.hit1 and not elsewhere.span_hit and elsewhere.faithful
    assert not hit.span_shown  # answered: nothing to show


def test_a_refusal_shows_the_span_when_one_of_its_closest_passages_holds_it():
    from rag.evaluate.squad import SquadQuestion

    item = SquadQuestion("a.txt", "q", CARTE.index("dix ans"), CARTE.index("dix ans") + len("dix ans au plus"))

    def refusal(document, start, end):
        closest = Citation(1, document[0], document, "t", None, start, end, CARTE[start:end], 0.5, 0)
        return Answer("q", "fr", True, "", (), (closest,))

    around = CARTE.index("Elle est valable")
    assert judge_squad(item, refusal("a.txt", around, around + 60), {"a": CARTE}).span_shown
    assert not judge_squad(item, refusal("b.txt", around, around + 60), {"b": CARTE}).span_shown
    assert not judge_squad(item, refusal("a.txt", 0, around - 1), {"a": CARTE}).span_shown


@pytest.mark.slow
def test_rag_eval_squad_with_the_real_model(embedder, tmp_path):
    """Both questions find their paragraph and quote the sentence with the answer, faithfully."""
    from rag.config import Settings
    from rag.engine import Engine
    from rag.evaluate.squad import evaluate_squad

    path = _squad(tmp_path)
    documents, questions = load_squad(path)
    engine = Engine(squad_settings(path, documents, Settings.resolve(cache_dir=tmp_path / "cache")), embedder=embedder)
    outcomes, report = evaluate_squad(engine, questions, ["Quel est le meilleur restaurant de Paris ?"])
    assert report["questions"] == 2 and report["document_hit@1"] == 1.0
    assert report["answer_span_hit"] == 1.0 and report["faithfulness"] == 1.0
    assert report["foreign_questions"] == 1 and report["foreign_abstained"] == 1.0
    assert all(o.answer.sentences for o in outcomes)


def test_foreign_refusals_are_also_reported_per_question_language():
    from rag.evaluate.squad import summarize_squad

    def asked(language, abstained):
        return Answer("q", language, abstained, "", (), ())

    foreign = [asked("fr", True), asked("fr", True), asked("fr", False), asked("en", True), asked("en", False)]
    report = summarize_squad([], foreign)
    assert report["foreign_questions"] == 5 and report["foreign_abstained"] == 0.6
    assert report["foreign_abstained_fr"] == pytest.approx(2 / 3, abs=1e-4) and report["foreign_abstained_en"] == 0.5
    assert "foreign_abstained_en" not in summarize_squad([], foreign[:3])
