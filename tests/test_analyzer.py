"""The French/English analyzer: what BM25 and the word checks read (fast tier)."""

from __future__ import annotations

import re

import pytest

from rag.text.analyzer import Analyzer, analyze, fold_accents, word_tokens


@pytest.mark.parametrize("text, language, terms", [
    # Elisions go, accents fold, stop words of both languages go, stems meet.
    ("L’influence des marques s’accroît", "fr", ["influenc", "marqu", "accroit"]),
    ("l'influenceur et les influenceuses", "fr", ["influenceur", "influenc"]),
    ("Qu’est-ce que Kantar prévoit ?", "fr", ["kantar", "prevoit"]),
    ("Which brands bypass the platforms?", "en", ["brand", "bypass", "platform"]),
    ("Brands are bypassing the main platforms", "en", ["brand", "bypass", "main", "platform"]),
    ("the and le la", "en", []),
    ("En 2019, 3 sur 4", "fr", ["2019", "3", "4"]),  # digits stay, even alone
    ("a b c", "fr", []),  # lone letters go
])
def test_terms_in_french_and_english(text, language, terms):
    assert analyze(text, language) == terms


def test_the_same_word_stems_by_its_language():
    assert analyze("publications", "fr") == ["publiqu"] and analyze("publications", "en") == ["public"]
    assert analyze("running", "en") == ["run"] and analyze("running", "fr") == ["running"]


def test_tokens_keep_accents_and_drop_elisions():
    assert word_tokens("L’État s’est prononcé") == ["état", "est", "prononcé"]
    assert fold_accents("prononcé État") == "prononce Etat"


def test_stop_words_elisions_and_stemming_are_constructor_arguments():
    plain = Analyzer("fr", stop_words=frozenset(), stem=False)
    assert plain.terms("Les marques d’abord") == ["les", "marques", "abord"]
    no_elision = Analyzer("fr", stem=False, elision=re.compile(r"(?!)"))
    assert no_elision.terms("l’abord") == ["abord"]  # "l" alone is a lone letter, dropped anyway
    assert Analyzer("en", stop_words=frozenset({"brands"})).terms("brands bypass") == ["bypass"]
