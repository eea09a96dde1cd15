"""Understanding a question, once, into a `Query` (fast tier: fake embedder, small inline index)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.policy import QuestionPolicy
from rag.query.understand import content_words, find_names, is_follow_up, parse_question, understand, unfamiliar_words
from rag.errors import QuestionError
from rag.index.build import build
from tests.fakes import FakeEmbedder

DOCS = {
    "kantar.txt": "Kantar Media 2019\nKantar prévoit un essor du social commerce en 2019. Les marques suivront.\n",
    "digimind.txt": "Digimind 2020\nLes experts de Digimind voient TikTok progresser en 2020. Instagram reste fort.\n",
}


def _index_of(base, texts):
    """An index (fake embedder) of `texts`, file name → text."""
    docs = base / "docs"
    docs.mkdir()
    for name, text in texts.items():
        (docs / name).write_text(text, encoding="utf-8")
    return build(docs, base / "index", FakeEmbedder()).index


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return _index_of(tmp_path_factory.mktemp("query"), DOCS)


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


BILINGUAL = {
    "bibliotheque.txt": "Horaires\nLe samedi, la bibliothèque ouvre de 10 h à 18 h. Un atelier de lecture a lieu en Grèce. "
                        "Le club a fait le pari de la lecture à voix haute.\n",
    "library.txt": "Opening hours\nThe library lends French novels. Its reading club travels to Greece in September. "
                   "Its founder, Jamukha, lived in Paris.\n",
}


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory):
    return _index_of(tmp_path_factory.mktemp("bilingual"), BILINGUAL)


@pytest.mark.parametrize("question, language", [
    ("What will the library do on Saturdays?", "en"),  # the page says "samedi"
    ("Is there a workshop in Greece?", "en"),
    ("Que fait le club en septembre ?", "fr"),  # lower case: not a name at all
    ("Le club va-t-il en Grèce ?", "fr"),
    ("La bibliothèque prête-t-elle des romans en Français ?", "fr"),  # the page says "French"
])
def test_a_day_country_or_language_named_in_the_other_language_is_known(bilingual, question, language):
    assert find_names(bilingual, question, language).unknown == ()


def test_a_name_the_documents_give_in_neither_language_stays_unknown(bilingual):
    assert find_names(bilingual, "Is the library open in Brazil on Mondays?", "en").unknown == ("Brazil", "Mondays")
    assert find_names(bilingual, "Does the library stream Netflix?", "en").unknown == ("Netflix",)


def test_a_name_is_looked_up_as_each_language_stems_it_in_that_languages_documents(bilingual):
    # "Jamukha" is "jamukh" to the French stemmer and "jamukha" to the English one, which stemmed the page.
    names = find_names(bilingual, "Qui a fondé le club, d'après Jamukha ?", "fr")
    assert names.unknown == () and names.documents == {_doc(bilingual, "library.txt")}
    # "Paris" is "pari" to the English stemmer: the French page's bet is not the city.
    assert find_names(bilingual, "Who lived in Paris?", "en").documents == {_doc(bilingual, "library.txt")}


def test_the_counterparts_can_be_switched_off_for_an_ablation(bilingual):
    policy = QuestionPolicy(name_counterparts=False)
    assert find_names(bilingual, "What will the library do on Saturdays?", "en", policy).unknown == ("Saturdays",)


def test_counterparts_are_the_cldr_names_however_inflected():
    from rag.text.counterparts import counterparts

    assert counterparts("Saturdays") == (("samedi", "fr"),)
    assert counterparts("Brésil") == (("Brazil", "en"),)
    assert counterparts("Moscow") == (("Moscou", "fr"),)  # a city that names a time zone
    assert ("Greece", "en") in counterparts("Grèce")
    assert counterparts("Netflix") == () and counterparts("") == ()


def test_the_first_word_is_never_an_unknown_name(index):
    assert find_names(index, "Combien de marques suivront ?", "fr").unknown == ()
    # ...but a name that stands first and again later is looked up.
    assert find_names(index, "Netflix ou Netflix ?", "fr").unknown == ("Netflix",)


@pytest.mark.parametrize("title, names", [
    ("cp - Copier des fichiers et des répertoires", ["cp"]),
    ("at, batch, atq, atrm - Mettre en file d'attente des travaux", ["at", "batch", "atq", "atrm"]),
    ("nsswitch.conf – Fichier de configuration", ["nsswitch.conf"]),
    ("Kantar Media : une diversification", []),  # a name of two words is capitalized: the rule for names
    ("Médias sociaux : un bilan", []),  # what the page is about, not what it is called
    ("Guide", ["guide"]),
    ("Tendances médias sociaux 2020 et marketing digital avec Digimind", []),  # a title that says, not names
    ("Le salarié peut demander à son employeur un congé…", []),
    ("2019 - Bilan", []),
])
def test_the_name_a_title_gives_its_document(title, names):
    from rag.query.understand import title_name_keys

    assert title_name_keys(title) == names


PAGES = {
    "sort.txt": "NOM\nsort - Trier les lignes de fichiers texte\n\nDESCRIPTION\nÉcrire la concaténation triée.\n"
                "-f, --ignore-case\nconvertir les caractères minuscules en majuscules.\n",
    "uniq.txt": "NOM\nuniq - Signaler les lignes répétées\n\nDESCRIPTION\nFiltrer les lignes adjacentes. Voir sort(1).\n",
    "du.txt": "NOM\ndu - Évaluer l'espace disque\n\nDESCRIPTION\nTotaliser l'espace utilisé par les fichiers.\n",
    "medias.txt": "Médias sociaux : un bilan\nLes médias sociaux changent. Les marques suivent sort et uniq.\n",
    "autre.txt": "Médias sociaux et marques\nLes médias sociaux restent forts. Les fichiers aussi.\n",
    "texte.txt": "texte\nUn texte court sur les fichiers texte.\n",
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    return _index_of(tmp_path_factory.mktemp("pages"), PAGES)


@pytest.mark.parametrize("question, language, chosen, words", [
    # Written in lower case, the name a page gives itself in its title still chooses it.
    ("Quelle option de sort ignore la casse ?", "fr", {"sort.txt"}, ("sort",)),
    ("Which du option prints a total?", "en", {"du.txt"}, ("du",)),
    # ...but not a word of the question's own language that happens to be a name ("du" in French).
    # (while "texte", the name of the page "texte", chooses it).
    ("Que fait du texte trié ?", "fr", {"texte.txt"}, ("texte",)),
    # A title's phrase is a topic, not a name: it chooses nothing.
    ("Que disent les médias sociaux des marques ?", "fr", set(), ()),
])
def test_a_title_name_chooses_its_document_however_it_is_written(pages, question, language, chosen, words):
    names = find_names(pages, question, language)
    assert {pages.documents[d].source for d in names.documents} == chosen and names.words == words
    # Handed to selection, which counts the name as a word the chosen page's quotes share.
    assert [(word, {pages.documents[d].source for d in documents}) for word, documents in names.by_title] == \
        [(word, chosen) for word in words]


def test_a_title_name_every_document_holds_chooses_nothing(tmp_path):
    index = _index_of(tmp_path, {"a.txt": "texte - Un guide\nUn texte sur les fichiers.\n",
                                 "b.txt": "Autre guide\nUn autre texte sur les fichiers.\n"})
    assert find_names(index, "Que dit le texte des fichiers ?", "fr").documents == frozenset()
    assert find_names(index, "Que dit le texte des fichiers ?", "fr").words == ()


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


@pytest.mark.parametrize("question, topic_words, gone", [
    ("Que disent Kantar et Digimind sur le social commerce ?", {"social", "commerce"}, {"Kantar", "Digimind"}),
    ("Comparez Kantar et Digimind sur Instagram.", {"Instagram"}, {"Kantar", "Digimind"}),
    ("Kantar et Digimind : que disent-ils de TikTok ?", {"TikTok"}, {"Kantar", "Digimind"}),
    ("Compare the sources on TikTok.", {"TikTok"}, set()),
])
def test_a_comparison_s_topic_unnames_the_compared_sources_only(index, question, topic_words, gone):
    """The sources a comparison joins ("Kantar et Digimind") are not its topic; a name that chose a
    document by its text but is what they are asked about ("… sur Instagram") is."""
    query = understand(parse_question(question), index)
    assert query.compare
    assert all(word in query.topic for word in topic_words), query.topic
    assert not any(word in query.topic for word in gone), query.topic


def test_two_names_one_document_holds_together_are_its_subject_not_two_sources(tmp_path):
    """"Quand la Syrie et l'Égypte ont-elles attaqué ?" over a page naming both asks that page, not for
    the two laid side by side; two names each held by other documents still compare them."""
    index = _index_of(tmp_path, {
        "guerre.txt": "Guerre de 1973\nLa Syrie et l'Égypte attaquent Israël en octobre 1973.\n",
        "paix.txt": "Accords de paix\nL'Égypte signe un traité avec Israël en 1979.\n",
        "kantar.txt": "Kantar Media 2019\nKantar prévoit un essor du social commerce.\n",
        "digimind.txt": "Digimind 2020\nDigimind voit TikTok progresser.\n",
    })
    together = understand(parse_question("Quand la Syrie et l'Égypte ont-elles attaqué Israël ?"), index)
    assert not together.compare and together.documents
    apart = understand(parse_question("Que prévoient Kantar et Digimind sur le commerce ?"), index)
    assert apart.compare
    asked = understand(parse_question("Comparez les sources sur la Syrie et l'Égypte."), index)
    assert asked.compare, "asking to compare still compares"


@pytest.mark.parametrize("raw", ["", "  ", "?!", None, 3, "x" * 9000])
def test_refused_questions_raise_before_any_lookup(raw):
    with pytest.raises(QuestionError):
        parse_question(raw)


def test_language_of_a_short_follow_up_is_the_conversation_s():
    assert parse_question("Et 2020 ?", ["What does Kantar predict for social commerce?"]).language == "en"


# A question about something else uses words a large collection never does; a paraphrase of what it
# says uses one at most. The collection's size is lowered so that two small pages count as large.
SMALL_VOCABULARY = QuestionPolicy(vocabulary_min_sentences=1)


def test_content_words_leave_out_stop_words_numbers_and_elisions():
    assert content_words("Qu'est-ce que l'auteur associe au narcissisme en 2020 ?") == [
        "auteur", "associe", "narcissisme"]
    assert content_words("What does the author link to narcissism, and why?") == ["author", "link", "narcissism"]


def test_a_question_whose_words_the_collection_never_uses_is_unfamiliar(index):
    question = "Qui associe le digital au narcissisme ?"
    assert unfamiliar_words(index, question, "fr", SMALL_VOCABULARY) == ("associe", "digital", "narcissisme")
    query = understand(parse_question(question), index, SMALL_VOCABULARY)
    assert query.unfamiliar_words == ("associe", "digital", "narcissisme")


def test_a_paraphrase_with_one_new_word_is_not_unfamiliar(index):
    # "attend" is in no document; "marques" and "social" are (whatever their inflection).
    assert unfamiliar_words(index, "Qu'attend Kantar des marques sur le social ?", "fr", SMALL_VOCABULARY) == ()


def test_unfamiliar_needs_both_the_share_and_the_count_of_new_words(index):
    question = "Les experts imaginent-ils des marques virtuelles ?"  # 2 new words of 4
    assert unfamiliar_words(index, question, "fr", SMALL_VOCABULARY) == ("imaginent", "virtuelles")
    assert unfamiliar_words(index, question, "fr", replace(SMALL_VOCABULARY, unfamiliar_share=0.6)) == ()
    assert unfamiliar_words(index, question, "fr", replace(SMALL_VOCABULARY, unfamiliar_min_words=3)) == ()


def test_absence_says_nothing_in_a_small_collection_or_in_another_language(index):
    question = "Qui associe le digital au narcissisme ?"
    assert unfamiliar_words(index, question, "fr") == ()  # the default: two pages are a small collection
    # An English question of a French collection shares few words with it, whatever it asks.
    assert unfamiliar_words(index, "Who links digital life to narcissism?", "en", SMALL_VOCABULARY) == ()


def test_the_engine_refuses_an_unfamiliar_question_and_names_the_words(tmp_path):
    from rag.policy import Policies
    from tests.fakes import fake_engine

    engine = fake_engine(tmp_path, DOCS, policies=Policies(question=SMALL_VOCABULARY))
    refused = engine.ask("Qui associe le digital au narcissisme ?", threshold=-1.0)
    assert refused.abstained and refused.reason.endswith("associe, digital, narcissisme")
    answered = engine.ask("Que prévoit Kantar pour le social commerce ?", threshold=-1.0)
    assert not answered.abstained and "social commerce" in answered.answer


def test_an_empty_collection_has_no_unfamiliar_words_and_the_policy_refuses_nonsense(tmp_path):
    empty = _index_of(tmp_path, {})
    assert unfamiliar_words(empty, "Qui associe le digital au narcissisme ?", "fr",
                            QuestionPolicy(vocabulary_min_sentences=0)) == ()
    with pytest.raises(ValueError, match="unfamiliar_share"):
        QuestionPolicy(unfamiliar_share=0)
    with pytest.raises(ValueError, match="unfamiliar_min_words"):
        QuestionPolicy(unfamiliar_min_words=0)
