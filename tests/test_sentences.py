"""Sentence splitting: glued sentences are cut apart, dotted names are not, and offsets stay exact."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rag.records import Span
from rag.text.sentences import ABBREVIATIONS, split_sentences


def sentences_of(text: str, language: str = "fr") -> list[str]:
    spans = split_sentences(text, Span(0, len(text)), language)
    for span in spans:
        assert text[span.start : span.end] == text[span.start : span.end].strip()
    return [text[s.start : s.end] for s in spans]


LOWER = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèàçô", min_size=2, max_size=9)
CAPITAL = st.sampled_from(["Si", "Vous", "Le", "Pour", "Une", "Elle", "Il", "Les", "Dans", "Cette", "Your", "The",
                           "After", "Éric", "Ensuite", "Avant", "L'exécution", "D’abord", "Qu'il"])
END = st.sampled_from([".", ".", ".", "!", "?"])


@st.composite
def sentence(draw: st.DrawFn) -> str:
    words = draw(st.lists(LOWER, min_size=3, max_size=10))
    words[-1] = words[-1] + "qz" if words[-1] in ABBREVIATIONS else words[-1]  # "mr.Si" is ambiguous by design
    closing = draw(st.sampled_from(["", "", "", ")", " »", "”", "»", "’"]))
    opening = {")": "(", " »": "« ", "”": "“", "»": "«", "’": "‘"}.get(closing, "")
    end = draw(END)
    if closing and draw(st.booleans()):  # the end mark inside what it closes: "(… conservatrice.)"
        return f"{draw(CAPITAL)} {' '.join(words[:-1])} {opening}{words[-1]}{end}{closing}"
    body = " ".join(words[:-1]) + (f" {opening}{words[-1]}{closing}" if closing else f" {words[-1]}")
    return f"{draw(CAPITAL)} {body}{end}"


@settings(max_examples=200, deadline=None)
@given(st.lists(sentence(), min_size=2, max_size=6), st.sampled_from(["fr", "en"]))
# Found by CI: the end mark after a French closing quote that keeps its space ("« aa ».D’abord").
@example(["Si aa aa ‘aa.’", "Si aa aa « aa ».", "D’abord aa aa aa."], "fr")
def test_sentences_glued_with_no_space_are_cut_apart_at_exact_offsets(parts, language):
    text = "".join(parts)
    assert sentences_of(text, language) == parts


@settings(max_examples=100, deadline=None)
@given(st.lists(sentence(), min_size=2, max_size=4), st.sampled_from(["fr", "en"]))
def test_sentences_glued_inside_a_longer_block_keep_their_offsets(parts, language):
    prefix = "Titre\n\n"
    text = prefix + "".join(parts) + "\n\nAutre paragraphe."
    block = Span(len(prefix), len(prefix) + len("".join(parts)))
    spans = split_sentences(text, block, language)
    assert [text[s.start : s.end] for s in spans] == parts


PROTECTED = ["e.Leclerc", "service-public.fr", "3.5", "config.yaml", "java.util.List", "README.TXT", "cf.Section 7",
             "String.Format(x)", "obj.Field.value", "www.Example.com", "M.Dupont", "ASP.NET", "photo.JPG",
             "user@mail.Example", "a/b.Conf"]


@settings(max_examples=200, deadline=None)
@given(st.lists(LOWER, min_size=4, max_size=10), st.sampled_from(PROTECTED), st.integers(0, 9))
def test_abbreviations_decimals_domains_and_file_names_never_end_a_sentence(words, token, where):
    words.insert(where % len(words), token)
    text = "Le texte " + " ".join(words) + " continue ici."
    assert sentences_of(text) == [text]


@pytest.mark.parametrize("text, expected", [
    ("Vous devez déclarer ces opérations.Si vous êtes inscrit, rien à faire.",
     ["Vous devez déclarer ces opérations.", "Si vous êtes inscrit, rien à faire."]),
    ("Voir la fiche (en ligne).Ensuite, signez.", ["Voir la fiche (en ligne).", "Ensuite, signez."]),
    ("Il l'a dit « hier ».Puis il est parti.", ["Il l'a dit « hier ».", "Puis il est parti."]),
    ("La commande upgrade est prudente (full-upgrade l'est moins.)Notez que vous devez être root.",
     ["La commande upgrade est prudente (full-upgrade l'est moins.)", "Notez que vous devez être root."]),
    ("Il a dit « c'est fini.»Puis il est parti.", ["Il a dit « c'est fini.»", "Puis il est parti."]),
    ("Allez chez e.Leclerc ou sur service-public.fr.", ["Allez chez e.Leclerc ou sur service-public.fr."]),
    ("Version 3.5 de config.yaml.Le reste suit.", ["Version 3.5 de config.yaml.", "Le reste suit."]),
    ("Vous pouvez lancer des programmes Java sous Debian.L'exécution d'applets demande un navigateur.",
     ["Vous pouvez lancer des programmes Java sous Debian.", "L'exécution d'applets demande un navigateur."]),
])
def test_glued_sentence_ends(text, expected):
    assert sentences_of(text) == expected
