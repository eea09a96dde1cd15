"""Ingestion, cleaning, segmentation and passages on the real seeds and on hostile files."""

from __future__ import annotations

import os

import pytest

from rag.text.chunks import ChunkSettings
from rag.ingest.files import discover, read_file
from rag.text.document import split_document
from rag.records import Skipped
from tests.conftest import DIGIMIND, KANTAR, SEEDS
from tests.pdfs import make_pdf

BOILERPLATE = [
    "MarketingSocial Media",
    "medias-sociaux-2019",
    "Lire la biographie",
    "Masquer la biographie",
    "Photo d’illustration",
    "BitsFromBytes",
    "La photo, le salon 2024",
    "Paris Retail Week",
    "C’est la reprise après la pause digitale",
    "09/09/2024",
]

# Hand-checked against the article: every sentence of the Kantar piece, in order.
KANTAR_SENTENCES = [
    "Kantar Media perçoit des pistes de monétisation, mais aussi d’apparentes contradictions dans les stratégies de diversification des médias sociaux.",
    "Moins d’acquisitions, mais davantage de partenariats, entre autres pour développer l’acte d’achat et renforcer le marketing d’influence.",
    "Ces éléments se dégagent du paysage des médias sociaux tel que Kantar Media se le figure pour 2019.",
    "La filiale du groupe WPP perçoit plusieurs paradoxes, dont celui du développement de l’intelligence artificielle parallèlement à une certaine prise de distance avec les algorithmes.",
    "Elle en veut pour preuve la communication de Google sur les publicités sans personnalisation ou encore la mise en place, sur Twitter, d’une option de retour à un classement chronologique du flux.",
    "Autre tendance : celle des marques à contourner les principales plates-formes en bâtissant des réseaux sociaux autour de leurs communautés.",
    "Les initiatives d’Amazon sont données pour exemples, entre la plate-forme Spark pour les clients Prime et celle ouverte aux utilisateurs Kindle.",
    "Entre Instagram Shopping et Facebook Marketplace, l’année 2019 marquera aussi, d’après Kantar Media, un développement du social commerce.",
    "Un symbole supplémentaire d’une diversification que les médias sociaux « [devraient] enfin commencer à monétiser ».",
    "Les offres par abonnement participent de cette diversification.",
    "Le hardware aussi, à l’image des enceintes connectées Portal chez Facebook.",
    "Quant aux partenariats, Kantar Media pressent une accélération du phénomène à mesure que les plates-formes sociales investiront davantage de secteurs de marché (santé, éducation, banque…).",
    "Snap est cité pour son alliance avec Twitch sous le signe de la réalité augmentée ; YouTube, pour son deal avec Eventbrite sur l’événementiel.",
]

# Sentences of the Digimind piece that trip naive splitters: "p 6", "pp 3,8,…", « », "[…]", "…", tooltips.
DIGIMIND_SENTENCES = [
    "On y parle de transformation digitale, d’intelligence artificielle de médias sociaux (qui ne sont comme le numérique dans son ensemble, « que des outils », Guillaume Terrien p 6).",
    "Car le digital devient de plus en plus politique (Olivier Ertscheid p 10) voire même un objet de domination (Casilli, p 10 cité par le même auteur), mais aussi de narcissisme (Jacqueline Sala p 12).",
    "Le Dark Web et la reconnaissance faciale sont bien cités aussi, mais bizarrement, les « fake news » sont beaucoup moins évoqués (pp 32,39,40,41,44) et par moins d’auteurs.",
    "Damien Douani, quant à lui, avec son à propos habituel nous fait remarquer que nous râlons sur les fake news mais sommes les premiers fautifs, car nous « croyons le premier site qui passe sans aller vérifier ».",
    "Bonne nouvelle, « ces influenceurs […] gagneront du terrain l’année prochaine » (c’est à dire cette année).",
    "et…de bonheur",
    "C’est le dernier mot qui compte, comme souvent.",
    "Le social selling consiste à utiliser les réseaux sociaux à des fins commerciales.",
    "Le livre blanc (ou whitepaper ou position paper) est un des piliers d’une stratégie de content marketing B2B.",
    "Il est la preuve de votre expertise.",
    "paru hier soir, me pardonneront aisément ces oublis.",
    "Vous pourrez les lire tous en cliquant sur le lien suivant.",
]


def _doc_texts(index):
    return {doc_id: doc.text for doc_id, doc in index.documents.items()}


def test_document_text_is_the_file_as_python_reads_it(seed_index):
    for doc in seed_index.documents.values():
        with open(SEEDS / doc.source, encoding="utf-8") as handle:
            assert doc.text == handle.read()


def test_every_passage_and_sentence_is_an_exact_span(seed_index):
    texts = _doc_texts(seed_index)
    assert seed_index.passages and seed_index.sentences
    for passage in seed_index.passages:
        assert texts[passage.doc_id][passage.start : passage.end] == passage.text
    for sentence in seed_index.sentences:
        assert texts[sentence.doc_id][sentence.start : sentence.end] == sentence.text
        passage = seed_index.passages[sentence.passage_id]
        assert passage.start <= sentence.start and sentence.end <= passage.end


def test_no_boilerplate_in_any_passage(seed_index):
    for passage in seed_index.passages:
        for furniture in BOILERPLATE:
            assert furniture not in passage.text, (furniture, passage.text)


def test_tooltips_are_separated_and_kept_as_definitions(seed_index):
    definitions = [p for p in seed_index.passages if p.kind == "definition"]
    assert {p.text.split(" (")[0].split(" consiste")[0] for p in definitions} == {"Le social selling", "Le livre blanc"}
    for passage in seed_index.passages:
        assert not ("Social Selling" in passage.text and "consiste à utiliser" in passage.text)
        assert not ("matutinale" in passage.text and "whitepaper" in passage.text)
        assert not ("whitepaper" in passage.text and "paru hier soir" in passage.text)
    digimind = next(d for d in seed_index.documents.values() if d.source == DIGIMIND)
    assert {d.term for d in digimind.definitions} == {"Social Selling", "livre blanc"}


def test_segmentation_matches_hand_checked_sentences(seed_index):
    by_source = {}
    for sentence in seed_index.sentences:
        by_source.setdefault(seed_index.documents[sentence.doc_id].source, []).append(sentence.text)
    assert by_source[KANTAR] == KANTAR_SENTENCES
    for expected in DIGIMIND_SENTENCES:
        assert expected in by_source[DIGIMIND]


def test_titles_years_and_metadata(seed_index):
    docs = {d.source: d for d in seed_index.documents.values()}
    assert docs[KANTAR].title == "Médias sociaux : une diversification tout en paradoxes"
    assert docs[KANTAR].year == 2019
    assert docs[KANTAR].meta("slug") == "medias-sociaux-2019"
    assert docs[KANTAR].meta("category") == "MarketingSocial Media"
    assert docs[DIGIMIND].title == "Tendances médias sociaux 2020 et marketing digital avec Digimind"
    assert docs[DIGIMIND].year == 2020
    assert all(d.language == "fr" for d in docs.values())


def test_passages_stay_inside_one_paragraph(seed_index):
    for passage in seed_index.passages:
        assert "\n" not in passage.text


# ------------------------------------------------------------------ hostile and odd files

def _read(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return read_file(path, tmp_path)


def test_empty_file_is_skipped_with_a_reason(tmp_path):
    result = _read(tmp_path, "vide.txt", b"")
    assert isinstance(result, Skipped) and result.reason == "empty file"


def test_whitespace_only_file_is_skipped(tmp_path):
    result = _read(tmp_path, "blanc.md", b"  \n\n\t \n")
    assert isinstance(result, Skipped) and "no extractable text" in result.reason


def test_binary_named_md_is_skipped(tmp_path):
    result = _read(tmp_path, "image.md", bytes(range(256)) * 10)
    assert isinstance(result, Skipped) and "binary" in result.reason


def test_latin1_and_utf16_are_decoded(tmp_path):
    text = "Les médias sociaux prévoient une année chargée à Montréal."
    assert _read(tmp_path, "latin.txt", text.encode("latin-1")).text == text
    assert _read(tmp_path, "utf16.txt", text.encode("utf-16")).text == text


def test_crlf_newlines_read_like_python_text_mode(tmp_path):
    raw = _read(tmp_path, "crlf.txt", "Titre\r\nUne phrase.\r\n".encode())
    with open(tmp_path / "crlf.txt", encoding="utf-8") as handle:
        assert raw.text == handle.read()


def test_html_script_and_style_are_never_kept(tmp_path):
    page = b"""<!doctype html><html><head><title>Veille &amp; tendances</title>
    <style>.x{color:red}</style><script>var secret = "SCRIPTTEXT";</script></head>
    <body><h1>Veille &amp; tendances</h1><p>Les marques investiront le <b>social commerce</b> en 2021.</p>
    <script>alert("SCRIPT2")</script><noscript>NOSCRIPTTEXT</noscript></body></html>"""
    raw = _read(tmp_path, "page.html", page)
    assert raw.kind == "html" and raw.title_hint == "Veille & tendances"
    assert "Les marques investiront le social commerce en 2021." in raw.text
    for hidden in ("SCRIPTTEXT", "SCRIPT2", "color:red", "NOSCRIPTTEXT"):
        assert hidden not in raw.text


def test_script_only_html_is_skipped(tmp_path):
    result = _read(tmp_path, "app.html", b"<html><body><script>document.write('x')</script></body></html>")
    assert isinstance(result, Skipped) and "no extractable text" in result.reason


def test_pdf_text_is_extracted_even_when_named_txt(tmp_path):
    raw = _read(tmp_path, "rapport.txt", make_pdf("Kantar prevoit une annee 2021 sous le signe du commerce."))
    assert raw.kind == "pdf"
    assert "Kantar prevoit une annee 2021" in raw.text
    assert raw.page_starts == (0,)


def test_broken_pdf_is_skipped_not_fatal(tmp_path):
    result = _read(tmp_path, "casse.pdf", b"%PDF-1.4\n" + os.urandom(2000))
    assert isinstance(result, Skipped)


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "gros.txt"
    path.write_bytes(b"a" * 2048)
    result = read_file(path, tmp_path, max_bytes=1024)
    assert isinstance(result, Skipped) and "larger than the limit" in result.reason


def test_too_many_files_are_refused(tmp_path):
    from rag.errors import IngestError

    for i in range(6):
        (tmp_path / f"{i}.txt").write_text("Une phrase.")
    with pytest.raises(IngestError, match="more than 5 documents"):
        discover(tmp_path, max_files=5)


def test_symlink_out_of_the_folder_is_not_followed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("Mot de passe : hunter2.")
    (docs / "lien.txt").symlink_to(secret)
    (docs / "vrai.txt").write_text("Une vraie phrase sur les médias sociaux.")
    found, skipped = discover(docs)
    assert [p.name for p in found] == ["vrai.txt"]
    assert skipped[0].source == "lien.txt" and "outside" in skipped[0].reason


def test_markdown_keeps_offsets(tmp_path):
    text = "# Tendances 2021\n\nLes marques **investiront** le social commerce. Les créateurs aussi.\n"
    raw = _read(tmp_path, "note.md", text.encode())
    prepared = split_document(raw, ChunkSettings())
    for chunk in prepared.chunks:
        for span in chunk.sentences:
            assert raw.text[span.start : span.end].strip() == raw.text[span.start : span.end]
    assert prepared.document.year == 2021


# ------------------------------------------------------------------ lists and headings of an administrative page

FICHE = (
    "La carte de lecteur donne accès aux collections de toutes les bibliothèques de la ville.\n"
    "Conditions\n"
    "La carte peut être demandée par :\n"
    "les habitants de la commune,\n"
    "les personnes qui y travaillent,\n"
    "les étudiants inscrits dans un établissement de la ville.\n"
    "Pièces à fournir\n"
    "- une pièce d'identité ;\n"
    "- un justificatif de domicile de moins de 3 mois.\n"
    "Durée\n"
    "La carte est valable 1 an à partir de la date de son émission.\n"
)


def test_a_list_is_one_block_with_the_line_that_announces_it():
    from rag.ingest.clean import clean

    cleaned = clean(FICHE)
    blocks = [FICHE[b.start : b.end] for b in cleaned.blocks]
    assert blocks == [
        "La carte de lecteur donne accès aux collections de toutes les bibliothèques de la ville.",
        "La carte peut être demandée par :\nles habitants de la commune,\nles personnes qui y travaillent,\n"
        "les étudiants inscrits dans un établissement de la ville.",
        # Under a heading, the first item (it wears a marker) goes on (";") into the next one.
        "- une pièce d'identité ;\n- un justificatif de domicile de moins de 3 mois.",
        "La carte est valable 1 an à partir de la date de son émission.",
    ]
    # "Conditions" comes after the first line of body text: a section heading, not header furniture.
    assert [FICHE[h.start : h.end] for h in cleaned.headings] == ["Conditions", "Pièces à fournir", "Durée"]
    assert cleaned.metadata == ()


@pytest.mark.parametrize("line, previous, item", [
    ("les habitants de la commune,", "La carte peut être demandée par :", True),
    ("Les habitants de la commune", "La carte peut être demandée par :", True),  # announced
    ("- Une pièce d'identité", "", True),  # a marker
    ("2) Un justificatif de domicile", "", True),
    ("de découvrir un métier", "Conditions.", False),  # lower case alone: a term, outside a list
    ("/etc/skel", "Ce répertoire contient les fichiers de configuration pour SGML.", False),
    ("Durée", "La carte est valable 1 an.", False),  # a heading after a finished sentence
    ("Pièces à fournir", "", False),
])
def test_list_items(line, previous, item):
    from rag.ingest.clean import is_list_item

    assert is_list_item(line, previous) is item


def test_an_unpunctuated_list_goes_on_in_lower_case():
    from rag.ingest.clean import clean

    text = ("Les pièces suivantes sont demandées :\ncarte d'identité\njustificatif de domicile\n"
            "Délais\nLa réponse arrive en 2 mois.\n")
    cleaned = clean(text)
    assert [text[h.start : h.end] for h in cleaned.headings] == ["Délais"]
    assert text[cleaned.blocks[0].start : cleaned.blocks[0].end] == \
        "Les pièces suivantes sont demandées :\ncarte d'identité\njustificatif de domicile"


def test_a_list_with_its_lead_in_is_one_sentence_quoted_on_one_line(tmp_path):
    from rag.answer.compose import on_one_line

    path = tmp_path / "carte.txt"
    path.write_text(FICHE, encoding="utf-8")
    split = split_document(read_file(path, tmp_path), ChunkSettings())
    sentences = [FICHE[s.start : s.end] for c in split.chunks for s in c.sentences]
    listed = next(s for s in sentences if s.startswith("La carte peut être demandée par"))
    assert listed.endswith("les étudiants inscrits dans un établissement de la ville.")
    assert on_one_line(listed) == ("La carte peut être demandée par : les habitants de la commune, les personnes qui "
                                   "y travaillent, les étudiants inscrits dans un établissement de la ville.")


def test_a_section_label_on_the_first_line_is_not_the_title():
    from rag.ingest.clean import clean

    page = ("NOM\nshred - Écrire par dessus un fichier pour en camoufler le contenu, et optionnellement l'effacer\n"
            "DESCRIPTION\nRécrire sur les FICHIERs indiqués, de façon répétée.\n")
    cleaned = clean(page)
    assert cleaned.title == "shred - Écrire par dessus un fichier pour en camoufler le contenu, et…"
    assert [page[h.start : h.end] for h in cleaned.headings] == ["NOM", "DESCRIPTION"]
    short = clean("NOM\ncp - Copier des fichiers et des répertoires\n\nSYNOPSIS\ncp [OPTION]... SOURCE CIBLE\n")
    assert short.title == "cp - Copier des fichiers et des répertoires"
    assert clean("NOM\nLe texte commence ici par une phrase.\nEnsuite une autre.\n").title == \
        "Le texte commence ici par une phrase."
    assert clean("Médias sociaux : une diversification\nLe texte commence ici.\n").title == \
        "Médias sociaux : une diversification"


def test_a_definition_list_is_body_text_under_its_terms():
    """A manual page's options: each term is the heading of its definition, and the definition,
    however short and unpunctuated, is body text; a term and its meaning on one line is body too."""
    from rag.ingest.clean import clean

    page = ("NOM\nmv - Déplacer ou renommer des fichiers\n\nDESCRIPTION\nRenommer la SOURCE en CIBLE.\n\n"
            "-f, --force\nne pas demander de confirmation avant d'écraser\n\n"
            "-b     identique à --backup mais sans paramètre\n\n"
            "none, off\nne jamais archiver\n\nVOIR AUSSI\nrename(2)\n")
    cleaned = clean(page)
    body = [page[b.start : b.end] for b in cleaned.blocks]
    headings = [page[h.start : h.end] for h in cleaned.headings]
    assert "ne pas demander de confirmation avant d'écraser" in body and "ne jamais archiver" in body
    assert "-b     identique à --backup mais sans paramètre" in body
    assert {"-f, --force", "none, off"} <= set(headings) and "rename(2)" not in headings  # (a reference list)
    # A section heading (capitalized) is not a term: the short line under it stays a heading.
    plain = "Titre\nUne phrase.\nConditions\nDurée du contrat\nElle ne peut excéder un mois.\n"
    assert "Durée du contrat" in [plain[h.start : h.end] for h in clean(plain).headings]


def test_added_files_get_plain_unused_names_and_unread_kinds_are_refused(tmp_path):
    from rag.ingest.files import Placed, add_files

    given = tmp_path / "given"
    given.mkdir()
    note, binary = given / "a", given / "b"
    note.write_text("Titre\nUne phrase.\n", encoding="utf-8")
    binary.write_bytes(b"\x00\x01")
    folder = tmp_path / "docs" / "uploads"
    first = add_files(folder, [(note, "../../Rapport 2020.md"), (binary, "outil.exe")])
    again = add_files(folder, [(note, "Rapport 2020.md")])
    assert first == [Placed("Rapport 2020.md"), Placed("outil.exe", "format")]
    assert again == [Placed("Rapport 2020-1.md")]
    assert sorted(p.name for p in folder.iterdir()) == ["Rapport 2020-1.md", "Rapport 2020.md"]
