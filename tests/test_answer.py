"""Answers: verbatim quotes, exact citations, abstention, languages, follow-ups, bad questions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.evaluate import is_faithful, load_questions
from tests.conftest import DIGIMIND, KANTAR, ROOT

QUESTIONS = [
    "Qu'est-ce que Kantar prévoit pour le social commerce ?",
    "Does Kantar expect more acquisitions in 2019?",
    "Quelles sont les prédictions de Kantar pour 2019 ?",
    "What do the two sources say about influencer marketing?",
    "Who calls digital an object of domination?",
    "Quel mot compte le plus à la fin ?",
    "Quel est le meilleur restaurant de Paris ?",
]


def documents(engine):
    return {doc_id: doc.text for doc_id, doc in engine.index.documents.items()}


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_quote_is_verbatim_and_inside_its_cited_passage(seed_engine, question):
    answer = seed_engine.ask(question)
    texts = documents(seed_engine)
    assert is_faithful(answer, texts)
    by_n = {c.n: c for c in answer.citations}
    for quote in answer.sentences:
        citation = by_n[quote.citation]
        assert texts[citation.doc_id][quote.start : quote.end] == quote.text
        assert citation.start <= quote.start and quote.end <= citation.end
        assert f"[{quote.citation}]" in answer.answer
        assert quote.text in answer.answer
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_french_question_gets_the_kantar_social_commerce_sentence(seed_engine):
    answer = seed_engine.ask("Qu'est-ce que Kantar prévoit pour le social commerce ?")
    assert answer.language == "fr" and not answer.abstained
    assert "un développement du social commerce" in answer.sentences[0].text
    assert answer.citations[0].document == KANTAR and answer.citations[0].year == 2019
    assert answer.answer.startswith("D'après les documents")


def test_english_question_on_french_documents(seed_engine):
    answer = seed_engine.ask("Which Amazon initiatives are given as examples?")
    assert answer.language == "en" and not answer.abstained
    assert any("Spark pour les clients Prime" in q.text for q in answer.sentences)
    assert "Quotes are in French" in answer.answer


def test_a_citation_points_at_the_passage_that_holds_the_quote(seed_engine):
    answer = seed_engine.ask("Who did Snap form an alliance with?")
    quote = answer.sentences[0]
    citation = next(c for c in answer.citations if c.n == quote.citation)
    assert "alliance avec Twitch" in quote.text and quote.text in citation.passage


@pytest.mark.parametrize("question, message", [
    ("What is the speed of light?", "The documents don't answer this."),
    ("Quel est le meilleur restaurant de Paris ?", "Je n'ai pas trouvé de réponse dans les documents."),
    ("Comment installer Python sur Windows ?", "Je n'ai pas trouvé de réponse dans les documents."),
])
def test_unanswerable_questions_abstain_and_show_closest_passages(seed_engine, question, message):
    answer = seed_engine.ask(question)
    assert answer.abstained and answer.sentences == ()
    assert answer.answer.startswith(message)
    assert 1 <= len(answer.citations) <= 3
    texts = documents(seed_engine)
    for citation in answer.citations:
        assert texts[citation.doc_id][citation.start : citation.end] == citation.passage


def test_broad_question_groups_several_sources_by_document(seed_engine):
    answer = seed_engine.ask("What do the two sources say about influencer marketing?")
    assert not answer.abstained
    assert {c.document for c in answer.citations} == {KANTAR, DIGIMIND}
    assert len(answer.sentences) >= 3
    assert "(2019)" in answer.answer and "(2020)" in answer.answer
    assert len({q.text for q in answer.sentences}) == len(answer.sentences)


def test_broad_question_about_one_source_stays_with_it(seed_engine):
    answer = seed_engine.ask("Quelles sont les prédictions de Kantar pour 2019 ?")
    assert len(answer.sentences) >= 3
    assert {c.document for c in answer.citations} == {KANTAR}


def test_follow_up_uses_the_previous_question(seed_engine):
    first = "Qu'est-ce que Kantar prévoit pour le social commerce ?"
    answer = seed_engine.ask("Et pour 2020 ?", history=[first])
    assert not answer.abstained
    assert all(c.document == DIGIMIND for c in answer.citations)
    assert "Social Commerce" in answer.answer
    alone = seed_engine.ask("Et pour 2020 ?")
    assert alone.answer != answer.answer


def test_follow_up_in_english(seed_engine):
    answer = seed_engine.ask("Who are they for?", history=["Which Amazon initiatives are given as examples?"])
    assert answer.language == "en" and "clients Prime" in answer.answer


def test_pronoun_sentence_brings_its_antecedent(seed_engine):
    answer = seed_engine.ask("Quel mot compte le plus à la fin ?")
    texts = [q.text for q in answer.sentences]
    assert "C’est le dernier mot qui compte, comme souvent." in texts
    assert "et…de bonheur" in texts


class ExplodingEmbedder:
    """Stands in for the model: any call fails the test."""

    model_id = "never"

    def encode_queries(self, texts):
        raise AssertionError("the model must not be called for this question")

    encode_passages = encode_queries


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "?!…", None, 42])
def test_empty_or_non_text_question_gets_a_prompt_without_calling_the_model(seed_dirs, question):
    from rag.config import Settings
    from rag.engine import Engine

    docs, index = seed_dirs
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=index), embedder=ExplodingEmbedder())
    answer = engine.ask(question)
    # No words to tell the language by: the refusal is in French, the page's first language.
    assert answer.message in ("Posez une question.", "La question doit être du texte.")
    assert answer.language == "fr" and answer.to_json()["error"] == answer.message


def test_too_long_question_is_refused_with_the_limit_named_in_its_language(seed_engine):
    english = seed_engine.ask("What does Kantar predict for social commerce? " * 60)
    assert "the limit is 2000" in english.message
    french = seed_engine.ask("Que prévoit Kantar pour le social commerce ? " * 60)
    assert "la limite est de 2000" in french.message
    huge = seed_engine.ask("x" * 1_000_000)
    assert "2000" in huge.message and huge.language == "fr"


@pytest.mark.parametrize("question", [
    "Qu'est-ce que\x00 Kantar\u202e prévoit\u200b pour le social commerce ?",
    "Kantar \ud800 social commerce ?",
    "Ｋａｎｔａｒ　social commerce\x1b[31m ?",
])
def test_control_and_odd_unicode_are_normalized(seed_engine, question):
    answer = seed_engine.ask(question)
    assert not answer.message
    json.dumps(answer.to_json())  # serializable: no lone surrogate left


def test_json_contract(seed_engine):
    data = seed_engine.ask("Qu'est-ce que Kantar prévoit pour le social commerce ?").to_json()
    assert set(data) >= {"question", "language", "abstained", "answer", "sentences", "citations", "timings_ms"}
    assert isinstance(data["abstained"], bool) and data["language"] in ("fr", "en")
    for sentence in data["sentences"]:
        assert set(sentence) >= {"text", "citation", "start", "end"}
    for citation in data["citations"]:
        assert set(citation) >= {"n", "document", "title", "year", "start", "end", "passage", "score"}
    assert data["timings_ms"]["total"] > 0
    assert {"embed", "dense_search", "lexical_search", "fusion", "selection", "formatting"} <= set(data["timings_ms"])


def _rag(args, seed_dirs, stdin=None):
    docs, index = seed_dirs
    env = {**os.environ, "RAG_DOCS_DIR": str(docs), "RAG_INDEX_DIR": str(index)}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_cli_ask_json(seed_engine, seed_dirs):
    done = _rag(["ask", "Who calls digital an object of domination?", "--json"], seed_dirs)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["language"] == "en" and "Casilli" in data["answer"]
    docs, _ = seed_dirs
    for sentence in data["sentences"]:
        citation = next(c for c in data["citations"] if c["n"] == sentence["citation"])
        text = (docs / citation["document"]).read_text(encoding="utf-8")
        assert text[sentence["start"] : sentence["end"]] == sentence["text"]
        assert text[citation["start"] : citation["end"]] == citation["passage"]


def test_cli_ask_jsonl_keeps_order(seed_engine, seed_dirs):
    stdin = "Quel est le meilleur restaurant de Paris ?\nWho calls digital an object of domination?\n\n   \n"
    done = _rag(["ask", "--jsonl"], seed_dirs, stdin=stdin)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["question"] for line in lines[:2]] == ["Quel est le meilleur restaurant de Paris ?",
                                                        "Who calls digital an object of domination?"]
    assert lines[0]["abstained"] is True and lines[1]["abstained"] is False
    assert lines[2]["error"] == "Posez une question."


def test_cli_reports_errors_in_one_sentence(tmp_path):
    env = {**os.environ, "RAG_DOCS_DIR": str(tmp_path / "missing"), "RAG_INDEX_DIR": str(tmp_path / "index")}
    done = subprocess.run([sys.executable, "-m", "rag.cli", "build"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_eval_on_dev_set_meets_the_bar(seed_engine):
    from rag.evaluate import evaluate

    items = load_questions([ROOT / "eval" / "dev.jsonl", ROOT / "eval" / "own.jsonl"])
    assert len(items) >= 60 and sum(1 for i in items if i.get("answerable") is False) >= 15
    _, report = evaluate(seed_engine, items)
    for language in ("fr", "en"):
        assert report[language]["answer_accuracy"] >= 0.85, report
        assert report[language]["faithfulness"] == 1.0
    assert report["all"]["abstention_recall"] >= 0.85
    assert report["all"]["wrong_abstention_rate"] <= 0.05


def test_the_note_on_quote_language_follows_the_documents(embedder, tmp_path):
    """Quotes are announced as French only when they are; an English document quoted to an
    English question gets no note, and to a French question a note saying English."""
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.txt").write_text(
        "Social media trends 2021\nBrands will sell directly inside short-video apps in 2021. "
        "Podcasts will become a major advertising channel for retailers.\n", encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=embedder)
    english = engine.ask("Which channel will become major for advertising?", threshold=-1.0)
    assert not english.abstained and "Podcasts" in english.answer
    assert "Quotes are in" not in english.answer
    french = engine.ask("Quel canal deviendra majeur pour la publicité ?", threshold=-1.0)
    assert "Podcasts" in french.answer and "Les citations sont en anglais" in french.answer


# ------------------------------------------------------------------ comparisons (issue 13, first part)

def test_naming_two_sources_lays_them_side_by_side_with_their_years(seed_engine):
    answer = seed_engine.ask("Que prévoient Kantar et Digimind sur le social commerce ?")
    assert [column.year for column in answer.comparison] == [2019, 2020]
    kantar = answer.comparison[0]
    assert any("social commerce" in answer.sentences[i].text for i in kantar.quotes)
    data = answer.to_json()
    assert [c["year"] for c in data["comparison"]] == [2019, 2020]
    for column in data["comparison"]:
        for quote in column["quotes"]:
            citation = next(c for c in data["citations"] if c["n"] == quote["citation"])
            assert quote["text"] in citation["passage"]


def test_one_common_word_of_the_topic_does_not_make_a_statement_on_it(seed_engine):
    """"la réalité augmentée": Digimind's list of 25 topics says "intelligence augmentée", and
    "la dimension politique du digital": "transformation digitale" shares only the common word. Half the
    topic's words, weighed by their rarity, must be held by a statement in the question's language."""
    answer = seed_engine.ask("Que disent Kantar et Digimind sur la réalité augmentée ?")
    by_year = {column.year: column for column in answer.comparison}
    assert by_year[2020].silent and not by_year[2019].silent
    assert all("réalité augmentée" in answer.sentences[i].text for i in by_year[2019].quotes)
    answer = seed_engine.ask("Comparez Kantar et Digimind sur la dimension politique du digital.")
    digimind = next(column for column in answer.comparison if column.year == 2020)
    assert digimind.quotes and all("politique" in answer.sentences[i].text for i in digimind.quotes)


def test_names_that_title_two_pages_compare_those_pages(tmp_path, embedder):
    """"Comparez head et tail …": the question's capitalized first word is looked up as a name too, and
    chooses the pages that say "comparer" (in the manual pages: sort, uniq, find, tar, mount), which
    left tail's page out of the four compared. The pages the names title are the ones compared, and
    each column quotes its own page."""
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    pages = {
        "head": "head - Afficher le début des fichiers\nAfficher les 10 premières lignes de chaque FICHIER sur la "
                "sortie standard.\n-n, --lines=N\nafficher les N premières lignes au lieu des 10 premières\n",
        "tail": "tail - Afficher la dernière partie de fichiers\nAfficher les 10 dernières lignes de chaque FICHIER "
                "sur la sortie standard.\n-f, --follow\nAfficher les données ajoutées lorsque le fichier grossit.\n",
    }
    for other in ("sort", "uniq", "cut", "paste"):
        pages[other] = (f"{other} - Traiter les lignes de fichiers texte\nAfficher le nombre de lignes affichées "
                        f"après les comparer.\nComparer les lignes de chaque FICHIER avec {other}.\n")
    for name, text in pages.items():
        (docs / f"{name}.txt").write_text(text, encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache"),
                    embedder=embedder)
    answer = engine.ask("Comparez head et tail sur le nombre de lignes affichées.")
    assert sorted(Path(column.document).name for column in answer.comparison) == ["head.txt", "tail.txt"]
    for column in answer.comparison:
        assert all(Path(answer.citations[answer.sentences[i].citation - 1].document).name
                   == Path(column.document).name for i in column.quotes)


MANUAL = {  # short French manual pages, written for the tests in the manner of manpages-fr
    "head": "head - Afficher le début des fichiers\n\nDESCRIPTION\nAfficher les 10 premières lignes de chaque FICHIER "
            "sur la sortie standard.\n\n-n, --lines=N\nafficher les N premières lignes au lieu des 10 premières\n",
    "tail": "tail - Afficher la dernière partie de fichiers\n\nDESCRIPTION\nAfficher les 10 dernières lignes de chaque "
            "FICHIER sur la sortie standard.\n\n-f, --follow\nafficher les données ajoutées lorsque le fichier grossit\n",
    "cut": "cut - Supprimer une partie de chaque ligne d'un fichier\n\nDESCRIPTION\nAfficher des parties sélectionnées "
           "des lignes de chaque FICHIER sur la sortie standard.\n\n-b, --bytes=LISTE\nsélectionner seulement ces octets"
           "\n\n-d, --delimiter=DÉLIM\nutiliser DÉLIM au lieu de la tabulation comme délimiteur de champ\n",
    "wc": "wc - Afficher le nombre de lignes, de mots et d'octets d'un fichier\n\nDESCRIPTION\nAfficher le décompte de "
          "lignes, de mots et d'octets pour chaque FICHIER.\n\n-c, --bytes\nafficher le nombre d'octets\n\n-w, --words"
          "\nafficher le nombre de mots\n",
    "mkdir": "mkdir - Créer des répertoires\n\nDESCRIPTION\nCréer les RÉPERTOIRES s'ils n'existent pas.\n\n-p, --parents"
             "\ncréer les répertoires parents si nécessaire\n\n-m, --mode=MODE\ndéfinir le mode des fichiers\n",
    "rm": "rm - Effacer des fichiers et des répertoires\n\nDESCRIPTION\nrm efface chaque fichier indiqué. Par défaut, il "
          "n'efface pas les répertoires.\n\n-r, --recursive\nsupprimer les répertoires et leur contenu récursivement"
          "\n\n-d, --dir\nsupprimer des répertoires vides\n",
    "nice": "nice - Exécuter un programme avec une priorité d'ordonnancement modifiée\n\nDESCRIPTION\nExécuter COMMANDE "
            "avec une priorité ajustée.\n\n-n, --adjustment=N\najouter l'entier N à la priorité (10 par défaut)\n",
    "sleep": "sleep - Attendre pendant une durée déterminée\n\nDESCRIPTION\nFaire une pause pendant NOMBRE secondes. Le "
             "suffixe peut être s pour les secondes, m pour les minutes ou h pour les heures.\n",
}


def test_when_no_compared_source_speaks_the_answer_is_a_refusal_showing_each_source_s_closest(tmp_path, embedder):
    """"Compare what head and tail say about the number of lines shown." over French manual pages: the
    topic's English words are in no sentence, so every column was silent, and the answer showed two
    "nothing on this topic" with nothing to open. It is a refusal now: it says that none of the compared
    sources speaks of it, names them, and shows each one's closest passages (only theirs), where the
    reader finds "afficher les N premières lignes…" and "Afficher les 10 dernières lignes…" to check."""
    from rag.answer.select import SILENT_SOURCES
    from rag.config import Settings
    from rag.engine import Engine
    from ui.render import answer_markdown, sources_html

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in MANUAL.items():
        (docs / f"{name}.txt").write_text(text, encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache"),
                    embedder=embedder)
    answer = engine.ask("Compare what head and tail say about the number of lines shown.")
    assert answer.abstained and answer.reason == SILENT_SOURCES and not answer.sentences
    assert sorted(Path(c.document).name for c in answer.comparison) == ["head.txt", "tail.txt"]
    assert all(c.silent for c in answer.comparison)
    shown = {Path(c.document).name for c in answer.citations}
    assert shown == {"head.txt", "tail.txt"}, "each compared source's closest passages, and only theirs"
    assert any("lignes" in c.passage for c in answer.citations if c.document.endswith("tail.txt"))
    assert answer.answer.startswith("None of the compared sources speaks of this.")
    assert "head - Afficher le début des fichiers" in answer.answer and "Closest passages" in answer.answer
    bubble = answer_markdown(answer, base="http://127.0.0.1:7860/")
    assert "None of the compared sources" in bubble and "nothing on this topic" in bubble
    assert "tail" in bubble.split("nothing on this topic")[1], "both sources named"
    data = answer.to_json()
    assert data["abstained"] and [c["quotes"] for c in data["comparison"]] == [[], []]
    panel = sources_html(answer, engine.index)
    assert "rag-closest" in panel and panel.count('class="rag-source"') == len(answer.citations)
    assert panel.index("head - Afficher le début des fichiers") < panel.index('class="rag-source"')  # the sources read, first
    # Where a source speaks, the comparison is laid out as before.
    spoken = engine.ask("Comparez cut et wc sur les octets.")
    assert not spoken.abstained and all(not c.silent for c in spoken.comparison)


@pytest.mark.parametrize("question", ["What do Kantar and Digimind say about influencers?",
                                      "Compare what the sources say about influencers."])
def test_a_word_a_heading_repeats_still_tells_who_speaks_of_it(seed_engine, question):
    """Digimind's heading on influence stands over many of the seeds' sentences: counted as theirs, it
    made "influence" a word every sentence shares, and Kantar's "marketing d'influence" went unseen."""
    answer = seed_engine.ask(question)
    by_year = {column.year: column for column in answer.comparison}
    assert not by_year[2019].silent and not by_year[2020].silent
    assert any("marketing d’influence" in answer.sentences[i].text for i in by_year[2019].quotes)


@pytest.mark.parametrize("question, speaking, silent", [
    ("Compare what the sources say about TikTok.", 2020, 2019),
    ("Comparer les sources sur les enceintes connectées", 2019, 2020),
    ("Comparez Kantar et Digimind sur Google.", 2019, 2020),  # Google names Kantar's article, and is the topic
])
def test_a_source_silent_on_the_topic_gets_no_borrowed_quote(seed_engine, question, silent, speaking):
    answer = seed_engine.ask(question)
    by_year = {column.year: column for column in answer.comparison}
    assert by_year[silent].silent and not by_year[speaking].silent
    topic = question.split()[-1].strip(".?").lower()[:6]
    assert any(topic in answer.sentences[i].text.lower() for i in by_year[speaking].quotes), "a quote on the topic"
    silent_word = "nothing on this topic" if answer.language == "en" else "rien sur ce sujet"
    assert silent_word in answer.answer
    assert next(c for c in answer.to_json()["comparison"] if c["year"] == silent)["quotes"] == []


def test_a_short_follow_up_keeps_the_kind_of_question(seed_engine):
    broad = seed_engine.ask("Et pour 2020 ?", ["Quelles sont les prédictions de Kantar pour 2019 ?"])
    assert broad.grouped and len(broad.sentences) >= 3
    assert all(q.doc_id == broad.sentences[0].doc_id for q in broad.sentences)  # the 2020 source
    compared = seed_engine.ask("Et sur l'influence ?", ["Que prévoient Kantar et Digimind sur le social commerce ?"])
    assert len(compared.comparison) == 2


def test_a_list_item_is_quoted_with_the_line_that_announces_it(embedder, tmp_path):
    """On an administrative page of short lines, the answer in a list is quoted whole, lead-in and
    items, as written; an item alone ("les personnes qui y travaillent,") says nothing."""
    from rag.config import Settings
    from rag.engine import Engine
    from tests.test_ingest import FICHE

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "carte.txt").write_text(FICHE, encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=embedder)
    answer = engine.ask("Qui peut demander la carte de lecteur ?", threshold=-1.0)
    assert not answer.abstained
    quoted = answer.sentences[0].text
    assert quoted.startswith("La carte peut être demandée par :") and quoted.endswith("de la ville.")
    assert quoted in FICHE
    assert "- « La carte peut être demandée par : les habitants de la commune, les personnes" in answer.answer
    section = next(c.section for c in answer.citations if c.n == answer.sentences[0].citation)
    assert section == "Conditions"


def test_a_question_for_an_amount_the_documents_lack_is_refused(seed_engine):
    """Kantar is named and 2019 is there, but no sentence holds a revenue: refused, while a
    count the documents hold is answered."""
    refused = seed_engine.ask("Quel est le chiffre d'affaires de Kantar en 2019 ?")
    assert refused.abstained and refused.answer.startswith("Je n'ai pas trouvé de réponse")
    # The margin refuses it first; without the margin, the kind of answer asked for still does.
    unmargined = seed_engine.ask("Quel est le chiffre d'affaires de Kantar en 2019 ?", threshold=-1.0)
    assert unmargined.abstained and unmargined.reason == "the question asks for a quantity; no quote holds one"
    counted = seed_engine.ask("How many experts contributed to the 2020 trends?")
    assert not counted.abstained and "30 experts" in counted.answer


LICENCE = "Ce programme est un logiciel libre. Vous pouvez le modifier et le redistribuer."


def _page(name: str, summary: str, options: str) -> str:
    return (f"NOM\n{name} - {summary}\n\nSYNOPSIS\n{name} [OPTION]... FICHIER...\n\nDESCRIPTION\n{options}\n\n"
            f"COPYRIGHT\n{LICENCE}\n")


PAGES = {
    "cp.txt": _page("cp", "Copier des fichiers et des répertoires",
                    "-i, --interactive\ndemander confirmation avant d'écraser un fichier existant\n\n"
                    "-r, --recursive\ncopier récursivement les répertoires"),
    "mv.txt": _page("mv", "Déplacer ou renommer des fichiers",
                    "-i, --interactive\ndemander confirmation avant d'écraser un fichier existant\n\n"
                    "-u, --update\ndéplacer seulement lorsque le fichier source est plus récent"),
    "rm.txt": _page("rm", "Effacer des fichiers et des répertoires",
                    "-i     demander une confirmation avant chaque effacement\n\n"
                    "-r, --recursive\nenlever le contenu des répertoires récursivement"),
    "sort.txt": _page("sort", "Trier les lignes de fichiers texte",
                      "-f, --ignore-case\nconvertir les caractères minuscules en majuscules\n\n"
                      "-r, --reverse\ninverser le résultat des comparaisons"),
}


def test_a_page_named_in_lower_case_answers_and_the_collections_furniture_never_does(embedder, tmp_path):
    """Manual pages: "mv" in a question chooses the page that calls itself mv (and its title is
    "mv - Déplacer…", not the section label "NOM" or the synopsis), while the licence every page
    repeats is never indexed, so never quoted."""
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in PAGES.items():
        (docs / name).write_text(text, encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=embedder)
    titles = sorted(doc.title for doc in engine.index.documents.values())
    assert titles[1] == "mv - Déplacer ou renommer des fichiers"
    for question, page in (("Avec mv, comment demander confirmation avant d'écraser ?", "mv.txt"),
                           ("Avec cp, comment demander confirmation avant d'écraser ?", "cp.txt")):
        answer = engine.ask(question, threshold=-1.0)
        assert not answer.abstained and answer.citations[0].document == page, (question, answer.answer)
        assert "demander confirmation avant d'écraser un fichier existant" in answer.sentences[0].text
        # The definition is shown after the option it defines, which is not part of the quote.
        assert answer.sentences[0].term == "-i, --interactive"
        assert "- -i, --interactive : « demander confirmation avant d'écraser un fichier existant »" in answer.answer
    licence = engine.ask("Ce programme est-il un logiciel libre que l'on peut redistribuer ?", threshold=-1.0)
    assert all(LICENCE not in q.text and "logiciel libre" not in q.text for q in licence.sentences)
    indexed = {s.text for s in engine.index.sentences_by_id(range(engine.index.sentence_count))}
    assert not any("logiciel libre" in text for text in indexed)


# The same subjects in both languages, so that the two centroids differ by language, not topic.
PARALLEL_FR = [
    "Chaque paquet déclare ses dépendances dans son fichier de contrôle.",
    "Le gestionnaire de paquets refuse de supprimer un paquet essentiel.",
    "Les fichiers de configuration modifiés par l'administrateur ne sont pas écrasés.",
    "La distribution testing reçoit les paquets après quelques jours passés dans unstable.",
    "Un paquet virtuel désigne un groupe de paquets qui offrent le même service.",
    "Les miroirs sont synchronisés plusieurs fois par jour avec l'archive principale.",
    "Le noyau Linux est fourni par plusieurs paquets selon l'architecture.",
    "Le fichier sources.list indique les dépôts dans lesquels chercher les paquets.",
    "Les rapports de bogue sont envoyés au système de suivi par courrier électronique.",
    "La documentation de chaque paquet se trouve dans /usr/share/doc.",
    "Les pages de manuel en français sont fournies par le paquet manpages-fr.",
    "Un dépôt local permet d'installer ses propres paquets avec apt.",
    "La commande dpkg --list affiche l'état de tous les paquets installés.",
    "Le programme reportbug aide à rédiger un rapport de bogue complet.",
    "Les dons financent le matériel et les rencontres des développeurs.",
    "Les images d'installation se téléchargent depuis le site du projet.",
    "Le paquet build-essential installe le compilateur et les outils de construction.",
    "Les scripts de maintenance sont lancés avant et après l'installation d'un paquet.",
    "La priorité d'un paquet indique s'il est installé par défaut.",
    "Les alternatives permettent de choisir l'éditeur utilisé par défaut.",
]
PARALLEL_EN = [
    "Each package declares its dependencies in its control file.",
    "The package manager refuses to remove an essential package.",
    "Configuration files changed by the administrator are not overwritten.",
    "The testing distribution receives packages after a few days spent in unstable.",
    "A virtual package names a group of packages that offer the same service.",
    "The mirrors are synchronised several times a day with the main archive.",
    "The Linux kernel is provided by several packages depending on the architecture.",
    "The sources.list file lists the repositories in which packages are looked for.",
    "Bug reports are sent to the tracking system by electronic mail.",
    "The documentation of each package is found in /usr/share/doc.",
    "French manual pages are provided by the manpages-fr package.",
    "A local repository lets you install your own packages with apt.",
    "The command dpkg --list shows the state of every installed package.",
    "The reportbug program helps to write a complete bug report.",
    "Donations pay for hardware and for the developers' meetings.",
    "Installation images are downloaded from the project's site.",
    "The build-essential package installs the compiler and the build tools.",
    "Maintainer scripts are run before and after a package is installed.",
    "The priority of a package says whether it is installed by default.",
    "Alternatives let you choose the editor used by default.",
]


def test_an_english_question_is_answered_by_the_french_sentence_not_an_english_line_near_it(embedder, tmp_path):
    """Over a French guide and English notes, the model prefers an English line to an English question
    ("If LTSP is used, choose a lightweight desktop environment."), though the French sentence answers
    it. With both leans taken off (`retrieve.language_shift`), the French sentence is quoted; and a
    question about something else is still refused, because the ranking before the correction must
    answer too: the corrected one alone quotes "Le programme reportbug…" for a white paper."""
    import dataclasses

    from rag.policy import DEFAULT, Policies
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.txt").write_text("Paquets Debian\n" + "\n".join(PARALLEL_FR + PARALLEL_EN) + "\n", encoding="utf-8")
    (docs / "guide.txt").write_text(
        "Guide de l'école\nLes répertoires personnels des utilisateurs sont créés dans /skole/tjener/home0.\n"
        "Un client léger peut fonctionner avec 256 Mio de mémoire vive.\n"
        "LXDE est l'environnement de bureau le plus léger.\n", encoding="utf-8")
    (docs / "notes.txt").write_text(
        "Release notes\nThe user account is created in LDAP after the administrator password is entered.\n"
        "Thin clients boot over the network from the LTSP server.\n"
        "If LTSP is used, choose a lightweight desktop environment.\n", encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index")
    engine = Engine(settings, embedder=embedder)
    off = Policies(fusion=dataclasses.replace(DEFAULT.fusion, language_lean_weight=0.0, sentence_lean_weight=0.0))
    uncorrected = Engine(settings, embedder=embedder, policies=off)

    question = "Which desktop environment is the lightest?"
    assert engine.ask(question).sentences[0].text == "LXDE est l'environnement de bureau le plus léger."
    assert uncorrected.ask(question).sentences[0].text.startswith("If LTSP is used")
    for question, answer in (("Where are the users' home directories created?", "Les répertoires personnels"),
                             ("How much memory does a thin client need?", "Un client léger"),
                             ("Quel est l'environnement de bureau le plus léger ?", "LXDE est")):
        assert engine.ask(question).sentences[0].text.startswith(answer), question
    refused = engine.ask("What is a white paper proof of?")
    assert refused.abstained, [s.text for s in refused.sentences]


def test_the_model_leans_towards_the_questions_language_and_the_centroids_measure_it(embedder, tmp_path):
    """With the real model, a question is closer to the collection's centroid of its own language:
    the lean `retrieve.language_shift` gives back to sentences written unlike the question. A swapped or
    mis-detected centroid would turn the correction into a bonus."""
    from rag.retrieve.hybrid import language_centroids, language_lean
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.txt").write_text("Paquets Debian\n" + "\n".join(PARALLEL_FR + PARALLEL_EN) + "\n", encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=embedder)
    assert set(language_centroids(engine.index)) == {"fr", "en"}

    def lean(question):
        found = language_lean(engine.index, embedder.encode_queries([question])[0])
        return found["en"] - found["fr"]

    for question in ("Can I upgrade packages while the system is running?", "What is a virtual package?",
                     "Who restarts the services during an upgrade?"):
        assert lean(question) > 0, question
    for question in ("Puis-je mettre à jour les paquets pendant que le système tourne ?",
                     "Qu'est-ce qu'un paquet virtuel ?", "Comment signaler un bogue ?"):
        assert lean(question) < -0.02, question


LIBRARY = ("Bibliothèque municipale : horaires et services\n\n"
           "La bibliothèque est ouverte du mardi au vendredi de 10 h à 19 h. "
           "Le samedi, elle organise un atelier de lecture pour les enfants de 10 h à 12 h. "
           "Le prêt de livres est gratuit pour les habitants de la commune. "
           "Les lecteurs peuvent emprunter jusqu'à dix documents pendant trois semaines.\n")


def test_an_english_day_name_over_a_french_page_is_not_an_unknown_name(embedder, tmp_path):
    """"Saturdays" is capitalized because English capitalizes days, not because it is a name: over
    a page that says "samedi" it is answered, not refused as a name the documents never mention;
    a name the page gives in neither language still refuses."""
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bibliotheque.txt").write_text(LIBRARY, encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=embedder)
    # Asked without the margin: over this one short page the question's support (+0.0145) is under the
    # default model's margin (+0.0203), and the margin is not what this test is about.
    answer = engine.ask("What will the library do on Saturdays?", threshold=-1.0)
    assert not answer.abstained, answer.reason
    assert "Le samedi, elle organise un atelier de lecture" in answer.sentences[0].text
    refused = engine.ask("Is the library open in Brazil?", threshold=-1.0)
    assert refused.abstained and "Brazil" in refused.reason
