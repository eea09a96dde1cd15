"""Policies on inline French and English strings, their false positives included (fast tier)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rag.policy import DEFAULT, FusionPolicy, Policies, QuestionPolicy, SelectionPolicy
from rag.query.understand import is_broad, is_follow_up, parse_question
from rag.ingest.clean import clean, is_heading


@pytest.mark.parametrize("question", [
    "Quelles sont les prédictions de Kantar pour 2019 ?",
    "What are Digimind's experts' predictions for 2020?",
    "Que disent les deux articles sur l'influence ?",
    "What do the two sources say about influencer marketing?",
    "Résume les tendances 2020.",
    "Give me an overview of both reports.",
])
def test_overview_questions_are_broad(question):
    assert is_broad(question)


@pytest.mark.parametrize("question", [
    "What does Kantar say about partnerships?",  # one source, one topic: a specific question
    "Que dit Kantar sur les partenariats ?",
    "Quelle tendance Kantar voit-il pour le social commerce ?",
    "Who says digital is becoming political?",
])
def test_specific_questions_are_not_broad(question):
    assert not is_broad(question)


@pytest.mark.parametrize("question", [
    "Quelle option Twitter a-t-il mise en place ?",  # the inverted "il" is Twitter
    "Que prévoit Kantar Media pour les acquisitions en 2019 ?",
    "Pourquoi Kantar pense-t-il que les partenariats vont s'accélérer ?",
    "Which company communicated about ads without personalisation?",
])
def test_questions_that_stand_alone_are_not_follow_ups(question):
    assert not is_follow_up(question)


@pytest.mark.parametrize("question", [
    "Qu'a-t-elle dit des partenariats ?",  # an inverted pronoun with nothing named: it points back
    "Et pour 2020 ?",
    "What about TikTok?",
    "Who are they for?",
    "And who links it to narcissism?",
])
def test_questions_that_lean_on_the_last_one_are_follow_ups(question):
    assert is_follow_up(question)


def test_a_follow_up_joins_the_earlier_question_only_when_it_is_one():
    alone = parse_question("Quelle option Twitter a-t-il mise en place ?", ["Que prévoit Kantar ?"])
    assert alone.context == "" and alone.query == alone.text
    joined = parse_question("Qu'a-t-elle dit des partenariats ?", ["Que prévoit Kantar ?"])
    assert joined.context == "Que prévoit Kantar ?"


def test_a_policy_can_be_replaced_without_touching_code():
    never = QuestionPolicy(follow_up_words=frozenset(), follow_up_start=re.compile(r"(?!)"))
    assert is_follow_up("Et pour 2020 ?") and not is_follow_up("Et pour 2020 ?", never)
    assert not parse_question("Et pour 2020 ?", ["Que prévoit Kantar ?"], policy=never).context
    assert Policies(question=never).question is never and DEFAULT.question is not never


@pytest.mark.parametrize("field, value", [("dense_passage", -0.1), ("max_candidates", 0)])
def test_a_policy_refuses_values_that_cannot_work(field, value):
    with pytest.raises(ValueError, match=field):
        FusionPolicy(**{field: value})


@pytest.mark.parametrize("sentence, anaphoric", [
    ("C’est le dernier mot qui compte.", True),
    ("This is what the experts expect.", True),
    ("Kantar prévoit un essor du social commerce.", False),
    ("Cettefois-ci rien.", False),
])
def test_sentences_that_need_the_one_before(sentence, anaphoric):
    assert bool(SelectionPolicy().anaphoric_start.match(sentence)) is anaphoric


@pytest.mark.parametrize("line, heading", [
    ("# Twitter : comment adresser une demande RGPD ?", True),
    ("## Qui est concerné ?", True),
    ("Médias sociaux 2020 : l’influence en quête de sens ou de raison", True),
    ("Kantar prévoit un essor du social commerce en 2019.", False),
    ("#hashtag est un mot-dièse utilisé sur les réseaux sociaux depuis 2007, et partout ailleurs depuis.", False),
    # A question alone on its line is a FAQ's entry or a section's name, not an answer.
    ("Qui peut en bénéficier ?", True),
    ("Pourquoi cette situation ?", True),
    (("Vous êtes-vous déjà demandé pourquoi les réseaux sociaux captent autant notre attention, même quand nous"
      " savons que ce temps ne nous apporte presque rien ?"), False),  # a long one is a paragraph
    # Numbered sections, however long; a number without its closing dot opens a sentence.
    (("3.2.1. Je sais que Knoppix est basée sur Debian. Donc après l'avoir installée sur disque dur, puis-je"
      " utiliser l'outil apt de gestion des paquets ?"), True),
    ("12.2.1.1. Quel est le code de conduite sur les listes de diffusion ?", True),
    ("1.5 million d'abonnés suivent la marque sur Instagram depuis la campagne de l'été dernier.", False),
    ("2. Ouvrez le fichier et remplacez la ligne du miroir par celle du miroir le plus proche.", False),
])
def test_headings(line, heading):
    assert is_heading(line) is heading


def test_a_markdown_heading_is_never_body_text():
    text = "# Twitter : comment adresser une demande RGPD ?\n\nVous pouvez écrire au délégué à la protection des données.\n"
    cleaned = clean(text)
    assert all("#" not in text[b.start : b.end] for b in cleaned.blocks)
    assert cleaned.title == "Twitter : comment adresser une demande RGPD ?"


def test_a_faq_entry_names_its_section_and_its_answer_is_body_text():
    text = ("Carte d'identité\n\nQui peut en bénéficier ?\nToute personne de nationalité française peut en obtenir une.\n"
            "2.1. Combien coûte-t-elle ?\nElle est gratuite, sauf en cas de perte.\n")
    cleaned = clean(text)
    body = [text[b.start : b.end] for b in cleaned.blocks]
    assert body == ["Toute personne de nationalité française peut en obtenir une.", "Elle est gratuite, sauf en cas de perte."]
    assert [text[h.start : h.end] for h in cleaned.headings][1:] == ["Qui peut en bénéficier ?", "2.1. Combien coûte-t-elle ?"]


def test_a_sentence_is_found_through_the_sentence_that_names_its_subject(tmp_path):
    """With context scoring on, "La filiale du groupe WPP…" is found for a question naming Kantar."""
    import dataclasses

    from rag.policy import DEFAULT
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(
        "Titre\nKantar Media publie ses prévisions annuelles. La filiale du groupe WPP perçoit plusieurs paradoxes. "
        "Les plates-formes investiront la santé.\n", encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    on = dataclasses.replace(DEFAULT, fusion=dataclasses.replace(DEFAULT.fusion, context_weight=1.0, context_discount=0.0))
    question = "Quels paradoxes Kantar Media perçoit-il ?"
    with_context = Engine(settings, embedder=FakeEmbedder(), policies=on).retrieve(question).candidates
    alone = Engine(settings, embedder=FakeEmbedder()).retrieve(question).candidates
    assert with_context[0].sentence.text.startswith("La filiale du groupe WPP")

    def score(candidates):
        return next(c.fused for c in candidates if c.sentence.text.startswith("La filiale"))

    assert score(with_context) > score(alone)


@pytest.mark.parametrize("question, compare", [
    ("Comparer les sources sur les enceintes connectées", True),
    ("Compare what the sources say about TikTok.", True),
    ("Quelle est la différence entre les deux rapports ?", True),
    ("Quelles tendances pour 2020 ?", False),
    ("Who compared notes?", True),  # a false positive the words cannot avoid: the policy says so
    ("Quelles différences entre Kantar et Digimind ?", True),
    ("Que prévoit Kantar pour le social commerce ?", False),
])
def test_comparison_words(question, compare):
    assert bool(QuestionPolicy().compare.search(question)) is compare


@pytest.mark.parametrize("question, words, compare", [
    ("Que prévoient Kantar et Digimind sur TikTok ?", ("Kantar", "Digimind"), True),
    ("What do Kantar and Digimind expect?", ("Kantar", "Digimind"), True),
    ("Que disent Kantar et les experts de Digimind ?", ("Kantar", "Digimind"), True),
    # Two names that choose documents, and an "et"/"ou" elsewhere: not a comparison.
    ("Peut-on changer son nom et son prénom en arrivant en France ?", ("Peut", "France"), False),
    ("Garder un parent ou un enfant : quels droits à la CAF ?", ("Garder", "CAF"), False),
    ("Kantar, Digimind : qui parle de TikTok ?", ("Kantar", "Digimind"), False),
])
def test_two_names_compare_only_when_the_conjunction_joins_them(question, words, compare):
    from rag.query.understand import Names, is_comparison

    names = Names(chosen_by=tuple((word, frozenset({document})) for word, document in zip(words, ("a", "b"))))
    assert is_comparison(question, names) is compare


def _candidate(sentence_id: int, text: str, fused: float, doc_id: str = "a") -> "object":
    from rag.retrieve.hybrid import Candidate
    from rag.records import Sentence

    return Candidate(Sentence(sentence_id, doc_id, 0, 0, len(text), text), None, 0.8, 0.8, 0.0, fused)


@pytest.mark.parametrize("runner_up, follows", [
    (_candidate(41, "Il est la preuve de votre expertise.", 1.10), True),
    (_candidate(41, "It proves your expertise.", 1.10), True),
    (_candidate(42, "Il est la preuve de votre expertise.", 1.10), False),  # not the next sentence
    (_candidate(41, "Il est la preuve de votre expertise.", 1.10, doc_id="b"), False),  # another document
    (_candidate(41, "Les experts citent TikTok.", 1.10), False),  # stands alone
])
def test_the_sentence_that_goes_on_with_the_best_one_is_quoted_with_it(runner_up, follows):
    from rag.answer.select import _continuations

    best = _candidate(40, "Le livre blanc est un des piliers d’une stratégie de content marketing B2B.", 1.2)
    assert (_continuations(best, [runner_up], DEFAULT.selection) == [runner_up]) is follows


def test_a_comparison_never_lays_out_more_sources_than_the_policy_allows():
    """A name found in hundreds of documents of a large collection chooses them all: the
    comparison keeps the closest few of them, in the collection's order."""
    from types import SimpleNamespace

    from rag.answer.select import compared_documents

    doc_ids = tuple(f"d{n:03d}" for n in range(300))
    index = SimpleNamespace(doc_ids=doc_ids)
    closest = [_candidate(n, "Snap s’allie à Twitch.", 1.0, doc_id=d) for n, d in enumerate(["d250", "d007", "d250", "d120"])]
    query = SimpleNamespace(documents=frozenset(doc_ids[::2]), compared=frozenset())  # the even ones are named
    chosen = compared_documents(index, query, SimpleNamespace(candidates=closest), DEFAULT.selection)
    assert len(chosen) == DEFAULT.selection.max_compared
    assert chosen[:2] == ["d000", "d002"] and "d250" in chosen and "d120" in chosen and "d007" not in chosen
    two = SimpleNamespace(documents=frozenset({"d005", "d001"}), compared=frozenset())
    assert compared_documents(index, two, SimpleNamespace(candidates=closest), DEFAULT.selection) == ["d001", "d005"]


PAGE = ("Médias sociaux : une diversification\nDigital\nmedias-sociaux-diversification\n"
        "Le Social SellingLe social selling consiste à vendre sur les réseaux., et il progresse vite.\n"
        "Partager sur Facebook\nLes marques vendent davantage en ligne.\n")


def test_each_scraped_page_cleaning_rule_is_an_option():
    from rag.config import CLEANING_RULES

    def dropped(rules):
        cleaned = clean(PAGE, rules=rules)
        return {reason for reason, _, _ in cleaned.dropped}, cleaned

    reasons, cleaned = dropped(CLEANING_RULES)
    assert reasons == {"category", "slug", "boilerplate", "tooltip"} and cleaned.definitions  # one page: nothing repeats
    assert not any("SellingLe" in PAGE[b.start : b.end] for b in cleaned.blocks)
    reasons, cleaned = dropped(())
    assert reasons == set() and not cleaned.definitions
    assert any("SellingLe social selling" in PAGE[b.start : b.end] for b in cleaned.blocks)
    # Titles and headings are recognized on any site: a short line is never quoted as an answer.
    assert cleaned.title == "Médias sociaux : une diversification"
    assert "Digital" in [PAGE[h.start : h.end] for h in cleaned.headings]
    assert dropped(("boilerplate",))[0] == {"boilerplate"}
    assert dropped(("header", "tooltips"))[0] == {"category", "slug", "tooltip"}


def test_cleaning_rules_are_read_from_the_settings_and_refused_when_unknown():
    from rag.config import Settings
    from rag.errors import ConfigError

    assert Settings.resolve(cleaning="none").cleaning == ()
    assert Settings.resolve(cleaning="tooltips, header").cleaning == ("header", "tooltips")
    with pytest.raises(ConfigError, match="tooltip is not a cleaning rule"):
        Settings.resolve(cleaning="tooltip")


def test_changing_the_cleaning_rules_rebuilds_the_index(tmp_path):
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.txt").write_text(PAGE, encoding="utf-8")
    quoted = {}
    for rules in ("boilerplate,header,tooltips", "none"):
        settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                                    cleaning=rules)
        index = Engine(settings, embedder=FakeEmbedder()).open()
        quoted[rules] = {s.text for s in index.sentences_by_id(range(index.sentence_count))}
        assert index.manifest["chunking"]["cleaning"] == list(settings.cleaning)
    assert any("SellingLe" in t for t in quoted["none"])
    assert not any("SellingLe" in t for t in quoted["boilerplate,header,tooltips"])


class _Index:
    """The little of an index the shared-word check reads (a class: the per-index memo keeps a weak reference)."""

    def __init__(self, documents):
        self.documents = documents


@pytest.mark.parametrize("question, language, passage, doc_language, shares", [
    ("Quel est le meilleur smartphone de 2020 ?", "fr", "Les marques contournent les plates-formes sociales.", "fr", False),
    ("Quelles plateformes les marques contournent-elles ?", "fr", "Les marques contournent les plates-formes.", "fr", True),
    ("Who speaks of paradoxes?", "en", "La filiale du groupe WPP perçoit plusieurs paradoxes.", "fr", True),  # across languages: not asked
    # An English line in a French document is English: it must share a word with an English question.
    ("Are fake news often mentioned by the experts?", "en",
     "Copyright 1998-2000, 2002, 2005-2022 Free Software Foundation, Inc.", "fr", False),
    ("Which foundation holds the copyright?", "en", "Copyright 1998-2022 Free Software Foundation, Inc.", "fr", True),
    ("What is the best phone of 2020?", "en", "Brands bypass the main platforms.", "en", False),
    ("Which brands bypass platforms?", "en", "Brands are bypassing the main platforms.", "en", True),  # stems meet
])
def test_an_answer_in_the_questions_language_shares_one_of_its_words(question, language, passage, doc_language,
                                                                     shares):
    from types import SimpleNamespace

    from rag.retrieve.hybrid import Candidate
    from rag.answer.select import _shares_a_word
    from rag.records import Sentence

    from rag.text.analyzer import analyze

    index = _Index({"a": SimpleNamespace(language=doc_language, title="")})
    query = SimpleNamespace(language=language, terms=tuple(analyze(question, language)), documents=frozenset(), by_title=())
    chosen = [Candidate(Sentence(0, "a", 0, 0, len(passage), passage), SimpleNamespace(text=passage), 0.8, 0.8, 0.0, 1.0)]
    assert _shares_a_word(index, query, chosen) is shares


@pytest.mark.parametrize("question, title, chosen_by_name, shares", [
    # The page the question names by its title's name is about that name, though its lines rarely repeat it.
    ("Que signifie « now » pour shutdown ?", "shutdown - Arrêter, éteindre ou redémarrer la machine", True, True),
    ("Que signifie « now » pour shutdown ?", "shutdown - Arrêter, éteindre ou redémarrer la machine", False, False),
    # A year in a title, or its other words, are not what the page is about.
    ("Quel est le meilleur smartphone de 2020 ?", "Tendances 2020 et le smartphone en débat", True, False),
    ("Quel est le meilleur smartphone de 2020 ?", "2020 - Tendances", True, False),
])
def test_a_document_chosen_by_its_title_name_shares_that_name(question, title, chosen_by_name, shares):
    from types import SimpleNamespace

    from rag.retrieve.hybrid import Candidate
    from rag.answer.select import _shares_a_word
    from rag.records import Sentence

    from rag.query.understand import title_name_keys

    passage = "« now » est un alias pour +0, c'est-à-dire un arrêt immédiat."
    from rag.text.analyzer import analyze

    index = _Index({"a": SimpleNamespace(language="fr", title=title)})
    # What find_names hands over: the question's words that are the page's title name.
    by_title = tuple((name, frozenset({"a"})) for name in title_name_keys(title) if name in question.lower()) \
        if chosen_by_name else ()
    query = SimpleNamespace(language="fr", terms=tuple(analyze(question, "fr")),
                            documents=frozenset({"a"} if chosen_by_name else ()), by_title=by_title)
    chosen = [Candidate(Sentence(0, "a", 0, 0, len(passage), passage), SimpleNamespace(text=passage), 0.8, 0.8, 0.0, 1.0)]
    assert _shares_a_word(index, query, chosen) is shares


def test_a_follow_up_shares_words_through_the_question_it_follows():
    from types import SimpleNamespace

    from rag.text.analyzer import analyze
    from rag.retrieve.hybrid import Candidate
    from rag.answer.select import _shares_a_word
    from rag.records import Sentence

    passage = "Camille Jourdain (p22) nous parle de l’influence B2B."
    index = _Index({"a": SimpleNamespace(language="fr", title="")})
    chosen = [Candidate(Sentence(0, "a", 0, 0, len(passage), passage), SimpleNamespace(text=passage), 0.8, 0.8, 0.0, 1.0)]
    alone = SimpleNamespace(language="fr", terms=tuple(analyze("À quelle page ?", "fr")), documents=frozenset(), by_title=())
    followed = SimpleNamespace(language="fr", terms=tuple(analyze("Qui parle d'influence B2B ? À quelle page ?", "fr")),
                               documents=frozenset(), by_title=())
    assert not _shares_a_word(index, alone, chosen) and _shares_a_word(index, followed, chosen)


@pytest.mark.parametrize("question, kind", [
    ("Combien coûte le rapport de Digimind ?", "quantity"),
    ("Quel est le chiffre d'affaires de Kantar en 2019 ?", "quantity"),
    ("Quel montant faut-il verser ?", "quantity"),
    ("How many experts contributed?", "quantity"),
    ("What is the price of a subscription?", "quantity"),
    ("Quand Instagram Shopping a-t-il été lancé ?", "time"),
    ("Et quand ?", "time"),
    ("Combien de temps dure la période ?", "time"),  # a duration, not a count
    ("In which year did Snap partner with Twitch?", "time"),
    ("When was Facebook founded?", "time"),
    # False positives to avoid: a clause, a qualitative "part", a price talked about.
    ("When brands bypass the platforms, what do they build?", ""),
    ("Quand les marques contournent les plateformes, que construisent-elles ?", ""),
    ("Quelle est la part de l'influence dans ces tendances ?", ""),
    ("What does Kantar say about subscription prices?", ""),
    ("How can uniq count how many times each line occurs?", ""),  # asks for a way
    ("Comment savoir combien de fichiers sont supprimés ?", ""),
    ("After how many unchanged iterations does tail reopen the file?", "quantity"),
    ("À partir de combien de fichiers rm demande-t-il ?", "quantity"),
    ("Qu'est-ce que Kantar prévoit pour le social commerce ?", ""),
])
def test_what_kind_of_answer_a_question_asks_for(question, kind):
    from rag.query.understand import asked_kinds
    from rag.answer.select import missing_kind

    # Quotes with nothing countable nor dated: the kind asked, if any, is missing.
    assert missing_kind(asked_kinds(question), ["Les marques contournent les plates-formes sociales."]) \
        == (kind and f"a {kind}")


@pytest.mark.parametrize("question, quote, answers", [
    ("Combien d'experts ont contribué ?", "30 experts y dévoilent leurs tendances.", True),
    ("How many experts contributed?", "Thirty experts share their views.", True),
    ("Combien coûte le rapport ?", "Le livre blanc est gratuit.", True),
    ("Quel est le chiffre d'affaires de Kantar en 2019 ?", "L’année 2019 marquera un développement du social commerce.",
     False),  # a year is not an amount
    ("Quand Instagram Shopping a-t-il été lancé ?", "Instagram Shopping a été lancé en mars.", True),
    ("When was the alliance announced?", "The alliance was announced last year.", True),
    ("Quand l'alliance a-t-elle été annoncée ?", "Snap est cité pour son alliance avec Twitch.", False),
])
def test_a_quote_answers_a_kind_only_when_it_holds_one(question, quote, answers):
    from rag.query.understand import asked_kinds
    from rag.answer.select import missing_kind

    assert (missing_kind(asked_kinds(question), [quote]) == "") is answers


def test_a_question_for_a_quantity_abstains_on_quotes_without_one(tmp_path):
    """With the fake embedder: the same passage answers "Qui…" and is refused to "Combien…",
    and the policy can be turned off."""
    import dataclasses

    from rag.policy import DEFAULT
    from rag.config import Settings
    from rag.engine import Engine
    from tests.fakes import FakeEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Titre\nKantar Media est la filiale du groupe WPP qui publie des prévisions.\n",
                                encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    engine = Engine(settings, embedder=FakeEmbedder())
    assert not engine.ask("Qui publie des prévisions Kantar Media ?", threshold=-1.0).abstained
    refused = engine.ask("Combien de prévisions publie Kantar Media ?", threshold=-1.0)
    assert refused.abstained and refused.reason == "the question asks for a quantity; no quote holds one"
    off = dataclasses.replace(DEFAULT, selection=dataclasses.replace(DEFAULT.selection, answer_kind_required=False))
    engine = Engine(settings, embedder=FakeEmbedder(), policies=off)
    assert not engine.ask("Combien de prévisions publie Kantar Media ?", threshold=-1.0).abstained


def test_a_term_or_a_reference_is_never_quoted_as_an_answer():
    from types import SimpleNamespace

    from rag.answer.select import statements

    def candidate(text):
        return SimpleNamespace(sentence=SimpleNamespace(text=text))

    kept = statements(tuple(candidate(t) for t in ("sleep(3)", "--overwrite", "/etc/skel", "ping seulement.",
                                                   "Le courriel est envoyé par sendmail.", "It is free.")),
                      SelectionPolicy())
    assert [c.sentence.text for c in kept] == ["Le courriel est envoyé par sendmail.", "It is free."]


@pytest.mark.parametrize("line, statement", [
    ("wc [OPTION] ... [FICHIER] ...", False),  # a usage line: placeholders around a name
    ("timeout [OPTION] DURÉE COMMANDE [PARAM]...", False),
    ("La CNIL exige le RGPD.", True),  # acronyms inside a sentence written in words
    ("Kantar Media perçoit des paradoxes.", True),
    ("THE SOFTWARE IS PROVIDED AS IS, WITHOUT WARRANTY OF ANY KIND.", True),  # shouted, but a sentence
    ("NASA ESA JAXA", False),
    ("/etc/cron.deny", False),  # a path is one word
    ("Lire /etc/cron.allow puis /etc/cron.deny.", True),
    # A question does not answer one; a sentence that cites one points elsewhere.
    ("Faut-il installer stable, testing ou unstable ?", False),
    ("Voir Section 7.7, « Qu'est-ce qu'un paquet virtuel ? ».", False),
    ("Why does the CD contain symlinks for frozen?", False),
    ("Le formulaire est en ligne sur https://www.service-public.fr/particuliers/recherche?keyword=passeport.", True),
])
def test_a_statement_is_written_in_words(line, statement):
    from rag.answer.select import is_statement

    assert is_statement(line) is statement


FOOTER = "Partagez cette fiche avec vos proches sur les réseaux sociaux."
SHARED_CLAUSE = "Le délai de recours est de deux mois à compter de la décision."


def _fiche(topic: str, with_clause: bool) -> str:
    clause = f"{SHARED_CLAUSE}\n" if with_clause else ""
    return (f"{topic.capitalize()}\nLa demande de {topic} se fait en mairie, sur rendez-vous.\nConditions\n"
            f"Il faut être majeur pour demander : {topic}.\n{clause}{FOOTER}\n")


def test_a_line_most_documents_repeat_is_furniture_a_line_a_few_share_is_not():
    from rag.ingest.clean import repeated_lines

    topics = ["carte d'identité", "passeport", "permis", "carte grise", "acte de naissance", "livret",
              "casier judiciaire", "carte vitale"]
    texts = [_fiche(t, with_clause=i < 2) for i, t in enumerate(topics)]
    repeated = repeated_lines(texts)
    assert FOOTER in repeated and "Conditions" in repeated
    assert SHARED_CLAUSE not in repeated  # two pages of eight share it: what those pages say
    assert repeated_lines(texts[:2]) == frozenset()  # two documents never make furniture
    cleaned = clean(texts[0], repeated=repeated)
    body = [texts[0][b.start : b.end] for b in cleaned.blocks]
    assert FOOTER not in body and SHARED_CLAUSE in body
    assert "Conditions" in [texts[0][h.start : h.end] for h in cleaned.headings]  # a heading stays a heading
    assert ("repeated", texts[0].index(FOOTER), texts[0].index(FOOTER) + len(FOOTER)) in cleaned.dropped
    assert FOOTER in [texts[0][b.start : b.end] for b in clean(texts[0], rules=("boilerplate",),
                                                               repeated=repeated).blocks]


def test_the_collections_furniture_is_never_indexed_and_the_rule_is_an_option(tmp_path):
    from tests.fakes import fake_engine

    fiches = {f"fiche{i}.txt": _fiche(topic, with_clause=False)
              for i, topic in enumerate(["passeport", "permis", "carte grise", "casier judiciaire"])}
    for rules, indexed in (("boilerplate,header,tooltips,repeated", False), ("boilerplate,header,tooltips", True)):
        index = fake_engine(tmp_path, fiches, cleaning=rules).open()
        texts = {s.text for s in index.sentences_by_id(range(index.sentence_count))}
        assert (FOOTER in texts) is indexed
        assert "La demande de passeport se fait en mairie, sur rendez-vous." in texts


def test_words_that_open_alike_bridge_the_two_languages():
    from types import SimpleNamespace

    from rag.query.understand import cognate_words
    from rag.retrieve.hybrid import cognate_keys, cognate_scores
    from rag.records import Sentence

    assert cognate_keys("Which network wins the applause meter?", 4) == {"netw", "wins", "appl", "mete"}  # no stop words
    texts = ["L’inévitable TikTok gagne haut la main à l’applaudimètre.",  # applause/applaudimètre
             "Les experts parlent de transformation digitale.",
             "The applause meter is English here."]  # same language as the question: not scored
    sentences = [Sentence(i, "a", 0, 0, len(t), t) for i, t in enumerate(texts)]
    cross = np.array([True, True, False])
    asked = SimpleNamespace(cognate_words=cognate_words("Which network wins the applause meter?"))
    scores = cognate_scores(asked, sentences, cross, FusionPolicy())
    assert scores[0] > scores[1] == 0.0 and scores[2] == 0.0
    assert not cognate_scores(SimpleNamespace(cognate_words=cognate_words("?")), sentences, cross, FusionPolicy()).any()


def test_the_kind_asked_for_must_be_in_the_best_quote_or_next_to_it():
    from types import SimpleNamespace

    from rag.query.understand import asked_kinds
    from rag.answer.select import answering, missing_kind

    def quote(doc, number, text):
        return SimpleNamespace(sentence=SimpleNamespace(doc_id=doc, sentence_id=number, text=text))

    best = quote("a", 10, "Le rapport de Digimind est gratuit pour les lecteurs du blog.")
    lead_in = quote("a", 9, "Voici ce qu'il coûte :")
    elsewhere = quote("a", 40, "30 experts de Digimind y participent.")
    other_document = quote("b", 11, "Il coûte 20 euros.")
    quotes = answering([lead_in, best, elsewhere, other_document], best)
    assert quotes == [lead_in, best]
    question = asked_kinds("Combien coûte le rapport de Digimind ?")
    assert missing_kind(question, [q.sentence.text for q in quotes]) == ""  # "gratuit" is an amount
    assert missing_kind(question, [elsewhere.sentence.text]) == ""
    silent = quote("a", 10, "Le rapport de Digimind est publié sur le blog.")
    assert missing_kind(question, [q.sentence.text for q in answering([silent, elsewhere], silent)]) == "a quantity"


def test_a_sentence_in_another_language_than_the_questions_loses_the_questions_lean(tmp_path):
    """A French sentence is owed part of its cosine with an English question to its language alone
    (and an English line to a French question): that part (the lean) is given back to it, and only
    to sentences written unlike the question. The ranking before the correction is kept for selection."""
    from rag.query.understand import parse_question, understand
    from rag.retrieve.hybrid import language_shift, retrieve, sentence_languages
    from tests.fakes import fake_engine

    engine = fake_engine(tmp_path, {"faq.txt": (
        "Mettre à jour le système\nLes paquets peuvent être mis à jour pendant que le système fonctionne. "
        "Le programme redémarre les services concernés.\nOne could simply visit a Debian archive site and fetch "
        "the packages by hand.\n")})
    index = engine.index
    sentences = index.sentences_by_id(list(range(index.sentence_count)))
    assert sentence_languages(index, sentences) == ["fr", "fr", "en"]
    lean = {"fr": 0.30, "en": 0.50}
    # Three sentences place no centroid, so only the question's lean counts here.
    assert np.allclose(language_shift(index, sentences, lean, "en"), [-0.20, -0.20, 0.0])
    assert np.allclose(language_shift(index, sentences, lean, "fr"), [0.0, 0.0, 0.20])
    assert not language_shift(index, sentences, {}, "en").any()  # no lean known: no correction
    off = FusionPolicy(language_lean_weight=0.0, sentence_lean_weight=0.0)
    assert not language_shift(index, sentences, lean, "en", off).any()

    question = "How can I update packages while the system runs?"
    query_vector = engine.embedder.encode_queries([question])[0]
    query = understand(parse_question(question), index)
    plain = retrieve(index, query_vector, query)
    corrected = retrieve(index, query_vector, query, language_lean=lean)
    assert plain.uncorrected is None  # nothing moved: nothing to check twice
    english = next(c.sentence.text for c in plain.candidates if c.sentence.text.startswith("One could"))
    before = {c.sentence.text: c.fused for c in plain.candidates}
    after = {c.sentence.text: c.fused for c in corrected.candidates}
    assert after[english] == pytest.approx(before[english])
    assert all(after[text] == pytest.approx(before[text] + 0.20, abs=1e-5) for text in before if text != english)
    assert {c.sentence.text: c.fused for c in corrected.uncorrected} == pytest.approx(before)


def test_a_sentence_lean_is_its_cosine_with_the_questions_language_over_its_own(tmp_path):
    """With centroids placed, the second part of the correction is the sentence's own lean: its cosine
    with the question's language's centroid less that with its own language's, weighted."""
    from rag.retrieve.hybrid import MIN_LANGUAGE_SENTENCES, language_centroids, language_shift, sentence_languages
    from tests.fakes import fake_engine

    french = " ".join(f"Le paquet numéro {i} est installé avec la commande habituelle du système." for i in range(30))
    english = "\n".join(f"Package number {i} is installed with the usual system command."
                        for i in range(MIN_LANGUAGE_SENTENCES))
    index = fake_engine(tmp_path, {"page.txt": f"Paquets\n{french}\n{english}\n"}).index
    centroids = language_centroids(index)
    ids = list(range(index.sentence_count))
    sentences = index.sentences_by_id(ids)
    written = sentence_languages(index, sentences)
    vectors = index.sentence_vectors_of(ids)
    lean = {"fr": 0.30, "en": 0.50}
    policy = FusionPolicy(language_lean_weight=1.0, sentence_lean_weight=0.5)
    shift = language_shift(index, sentences, lean, "en", policy)
    for i, language in enumerate(written):
        if language == "en":
            assert shift[i] == 0.0
        else:
            own_lean = vectors[i] @ centroids["en"] - vectors[i] @ centroids["fr"]
            assert own_lean < 0  # a French sentence is closer to the French centroid
            assert shift[i] == pytest.approx(-0.20 + 0.5 * own_lean, abs=1e-5)
    without = language_shift(index, sentences, lean, "en", FusionPolicy(sentence_lean_weight=0.0))
    assert np.allclose(without, np.where(np.array(written) == "fr", -0.20, 0.0))


def _dhcp_question(tmp_path, *more_lines: str):
    """A school guide and "Que fournit le serveur principal au réseau ?": (index, query, retrieval)."""
    from rag.query.understand import parse_question, understand
    from rag.retrieve.hybrid import retrieve
    from tests.fakes import fake_engine

    lines = ["Guide", "Le serveur principal fournit le DHCP à tout le réseau de l'école.",
             "Les imprimantes se gèrent depuis une page web.", *more_lines]
    engine = fake_engine(tmp_path, {"guide.txt": "\n".join(lines) + "\n"})
    index = engine.index
    question = "Que fournit le serveur principal au réseau ?"
    query = understand(parse_question(question), index)
    return index, query, retrieve(index, engine.embedder.encode_queries([question])[0], query)


def test_an_answer_needs_the_ranking_before_the_language_correction_to_answer_too(tmp_path):
    """The corrected ranking chooses the quotes; the uncorrected one, for which the checks were made,
    must answer too. When it does not, the answer abstains with its reason, and shows the closest
    passages of the corrected ranking."""
    from dataclasses import replace

    from rag.answer.select import select

    index, query, retrieval = _dhcp_question(tmp_path)
    best = retrieval.candidates[0]
    assert "DHCP" in best.sentence.text
    answered = select(index, retrieval, query, background_max=0.0, threshold=-1.0)
    assert not answered.abstained and answered.sentences[0] == best

    off_topic = tuple(c for c in retrieval.candidates if "imprimantes" in c.sentence.text)
    # The uncorrected ranking answers too: the corrected quotes are kept.
    both = select(index, replace(retrieval, uncorrected=retrieval.candidates[::-1]), query, 0.0, -1.0)
    assert not both.abstained and both.sentences[0] == best
    # The uncorrected ranking shares no word with the question: no answer, whatever the corrected one says.
    refused = select(index, replace(retrieval, uncorrected=off_topic), query, 0.0, -1.0)
    assert refused.abstained and "share none of its words" in refused.reason
    assert refused.closest == answered.closest


def test_an_answer_across_the_language_correction_records_the_support_the_margin_decided_on(tmp_path):
    """Both rankings must beat unrelated text by the margin, so the support an answer records is the
    lower of the two: a calibration or a sweep of margins over recorded supports then refuses exactly
    what the margin would have refused."""
    from dataclasses import replace

    from rag.answer.select import select

    index, query, retrieval = _dhcp_question(tmp_path, "Les postes clients démarrent depuis le réseau.",
                                             "Le serveur principal garde les comptes des élèves.")
    corrected = select(index, retrieval, query, background_max=0.0, threshold=-1.0)
    # The uncorrected ranking: the same sentences with the best one last, so its best three are weaker.
    weaker = retrieval.candidates[1:] + retrieval.candidates[:1]
    assert len(weaker) >= 4
    plain_support = max(c.dense for c in weaker[:3])
    assert plain_support < corrected.support
    both = select(index, replace(retrieval, uncorrected=weaker), query, 0.0, -1.0)
    assert not both.abstained and both.support == pytest.approx(plain_support)
    assert both.sentences == corrected.sentences  # the corrected ranking still chooses the quotes
    # A margin between the two supports refuses, as the recorded support says it would.
    between = (plain_support + corrected.support) / 2
    refused = select(index, replace(retrieval, uncorrected=weaker), query, 0.0, between)
    assert refused.abstained and refused.reason.startswith("no passage is closer")


def test_each_language_has_its_centroid_when_the_collection_holds_enough_of_it(tmp_path):
    from rag.retrieve.hybrid import MIN_LANGUAGE_SENTENCES, language_centroids, language_lean, sentence_languages
    from tests.fakes import fake_engine

    def index_of(english_lines: int):
        french = " ".join(f"Le paquet numéro {i} est installé avec la commande habituelle du système." for i in range(30))
        english = "\n".join(f"Package number {i} is installed with the usual system command." for i in range(english_lines))
        return fake_engine(tmp_path / f"{english_lines}", {"page.txt": f"Paquets\n{french}\n{english}\n"}).index

    index = index_of(MIN_LANGUAGE_SENTENCES)
    centroids = language_centroids(index)
    assert set(centroids) == {"fr", "en"} and language_centroids(index) is centroids  # once per open index
    # A sentence of each language leans towards its own language's centroid (not the other's: a swap fails here).
    ids = list(range(index.sentence_count))
    written = sentence_languages(index, index.sentences_by_id(ids))
    for language, other in (("en", "fr"), ("fr", "en")):
        vector = index.sentence_vectors_of([ids[written.index(language)]])[0]
        lean = language_lean(index, vector)
        assert lean[language] > lean[other], language
    assert language_centroids(index_of(MIN_LANGUAGE_SENTENCES - 1)) == {}  # too few to place: no correction


def test_the_collection_facts_are_derived_when_the_index_opens_not_at_the_first_question(tmp_path):
    from rag.index.reader import _PER_INDEX
    from tests.fakes import fake_engine

    engine = fake_engine(tmp_path, {"a.txt": "sort - Trier les lignes\nLe tri se fait ligne par ligne.\n",
                                    "b.txt": "Guide\nLe serveur fournit le DHCP.\n"})
    index = engine.index
    kept = {key for key, slot in _PER_INDEX if slot == id(index)}
    assert {"language centroids", "document languages"} <= kept
    assert any(isinstance(key, tuple) and key[0] == "title names" for key in kept)


def test_the_closest_passages_of_a_silent_comparison_come_in_turn_from_each_source():
    """Each source's own ranking gives its passages, first of each before second of each; at least one
    per source however many are compared; a source with none gives none."""
    from rag.answer.select import closest_in_each

    class Ranked:
        def __init__(self, *passages: str):
            self.passages = passages

        def top_passages(self, n: int):
            return [(p, 1.0) for p in self.passages[:n]]

    two = closest_in_each({"a": Ranked("a1", "a2", "a3"), "b": Ranked("b1", "b2")}, 3)
    assert [p for p, _ in two] == ["a1", "b1", "a2", "b2"]
    four = closest_in_each({k: Ranked(f"{k}1", f"{k}2") for k in "abcd"}, 3)
    assert [p for p, _ in four] == ["a1", "b1", "c1", "d1"]
    assert [p for p, _ in closest_in_each({"a": Ranked(), "b": Ranked("b1")}, 3)] == ["b1"]
    assert closest_in_each({}, 3) == ()
