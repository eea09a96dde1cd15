"""Understanding a question, once, into a `Query` (fast tier: fake embedder, small inline index)."""

from __future__ import annotations

import pytest

from rag.answer.query import find_names, is_follow_up, parse_question, understand
from rag.errors import QuestionError
from rag.index.build import build
from tests.fakes import FakeEmbedder

DOCS = {
    "kantar.txt": "Kantar Media 2019\nKantar prévoit un essor du social commerce en 2019. Les marques suivront.\n",
    "digimind.txt": "Digimind 2020\nLes experts de Digimind voient TikTok progresser en 2020. Instagram reste fort.\n",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    base = tmp_path_factory.mktemp("query")
    docs = base / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return build(docs, base / "index", FakeEmbedder()).index


def _doc(index, source):
    return next(d for d, doc in index.documents.items() if doc.source == source)


def test_a_name_only_one_document_contains_chooses_it(index):
    names = find_names(index, "Que prévoit Kantar pour les marques ?", "fr")
    assert names.documents == {_doc(index, "kantar.txt")} and names.words == ("Kantar",)
    assert names.unknown == ()


def test_a_year_chooses_the_documents_about_it(index):
    names = find_names(index, "Quelles tendances pour 2020 ?", "fr")
    assert names.documents == {_doc(index, "digimind.txt")}


def test_a_name_no_document_mentions_is_unknown(index):
    names = find_names(index, "Que prévoit Netflix pour les marques ?", "fr")
    assert names.unknown == ("Netflix",) and not names.documents


def test_the_first_word_is_never_an_unknown_name(index):
    assert find_names(index, "Combien de marques suivront ?", "fr").unknown == ()
    # ...but a name that stands first and again later is looked up.
    assert find_names(index, "Netflix ou Netflix ?", "fr").unknown == ("Netflix",)


def test_a_name_every_document_contains_chooses_nothing(index):
    assert find_names(index, "Que disent les marques ?", "fr").documents == frozenset()


@pytest.mark.parametrize("question, expected", [
    ("Et pour 2020 ?", True),
    ("And TikTok?", True),
    ("Qu'en pensent-ils vraiment ?", True),
    ("Mais que disent les experts sur TikTok ?", True),
    ("Que prévoit Kantar pour le social commerce ?", False),
    ("What does Kantar predict for social commerce?", False),
])
def test_follow_up_detection(question, expected):
    assert is_follow_up(question) is expected


def test_a_follow_up_carries_the_earlier_question_and_its_names(index):
    query = understand(parse_question("Et les marques ?", ["Que prévoit Kantar ?"]), index)
    assert query.context == "Que prévoit Kantar ?"
    assert query.query == "Que prévoit Kantar ? Et les marques ?"
    assert query.documents == {_doc(index, "kantar.txt")}  # chosen by the earlier turn's name
    assert query.views[:2] == (query.query, "Et les marques ?")
    assert query.lexical.startswith("Et les marques ?")  # this turn's words count twice


def test_names_of_this_turn_outrank_the_earlier_turn(index):
    query = understand(parse_question("Et Digimind ?", ["Que prévoit Kantar ?"]), index)
    assert query.documents == {_doc(index, "digimind.txt")}


def test_the_question_without_its_selecting_names_is_a_view(index):
    query = understand(parse_question("Que prévoit Kantar pour les marques ?"), index)
    assert "Que prévoit pour les marques ?" in query.views


@pytest.mark.parametrize("raw", ["", "  ", "?!", None, 3, "x" * 9000])
def test_refused_questions_raise_before_any_lookup(raw):
    with pytest.raises(QuestionError):
        parse_question(raw)


def test_language_of_a_short_follow_up_is_the_conversation_s():
    assert parse_question("Et 2020 ?", ["What does Kantar predict for social commerce?"]).language == "en"
