"""A page's stated title finds its rows and is never quoted; glued sentences are quoted apart."""

from __future__ import annotations

import numpy as np
import pytest

from rag.policy import FusionPolicy, Policies
from rag.retrieve.hybrid import title_votes
from tests.fakes import fake_engine

# FAQ pages as a site is scraped: `# the question`, a blank line, one paragraph whose sentences were
# glued together. The bodies answer without repeating their title's words.
FAQ = {
    "resiliation.md": "# Comment résilier mon abonnement ?\n\nEnvoyez une lettre recommandée au service client.Le contrat "
                      "prend fin un mois après sa réception.Aucun frais n'est retenu.\n",
    "numero.md": "# Où trouver mon numéro de client ?\n\nIl figure en haut à droite de chaque facture.Vous le "
                 "retrouvez aussi dans votre espace personnel.\n",
    "mot-de-passe.md": "# Comment changer de mot de passe ?\n\nCliquez sur « Sécurité » dans votre espace "
                       "personnel.Saisissez l'ancien code puis le nouveau, deux fois.\n",
    "livraison.md": "# Quels sont les délais de livraison ?\n\nComptez trois à cinq jours ouvrés en France "
                    "métropolitaine.Pour l'outre-mer, prévoyez deux semaines.\n",
    "paiement.md": "# Puis-je payer en plusieurs fois ?\n\nOui, à partir de cent euros d'achat.Le montant est alors "
                   "réparti sur trois mois, sans frais.\n",
    "retour.md": "# Comment renvoyer un article ?\n\nImprimez l'étiquette jointe au colis.Déposez-le ensuite dans "
                 "un bureau de poste, dans les trente jours.\n",
}


def heading_lines(index, citation) -> list[tuple[int, int]]:
    text = index.document_text(citation.doc_id)
    return [(start, text.find("\n", start)) for start, _ in index.documents[citation.doc_id].headings]


PARAPHRASES = [("Peut-on régler en trois fois ?", "paiement.md"), ("Quand le contrat se termine-t-il après ma lettre ?",
                                                                  "resiliation.md"),
               ("Sous combien de jours suis-je livré en France ?", "livraison.md")]


def test_a_paraphrase_of_a_page_title_is_answered_from_that_page_never_by_its_title(embedder, tmp_path):
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in FAQ.items():
        (docs / name).write_text(text, encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index"), embedder=embedder)
    index = engine.index
    for question, page in PARAPHRASES:
        answer = engine.ask(question)
        assert not answer.abstained, (question, answer.reason)
        assert answer.citations[0].document == page, question
        for quote in answer.sentences:
            citation = next(c for c in answer.citations if c.n == quote.citation)
            assert index.document_text(citation.doc_id)[quote.start : quote.end] == quote.text
            assert not any(quote.start < end and start < quote.end for start, end in heading_lines(index, citation))
    first = engine.ask(PARAPHRASES[0][0]).sentences[0]
    assert first.text == "Le montant est alors réparti sur trois mois, sans frais."  # cut from the sentence glued to it
    # Without the titles' votes, the bodies' own words do not find these pages.
    without = Engine(engine.settings, embedder=embedder, policies=Policies(fusion=FusionPolicy(title_weight=0.0)))
    found = [(a := without.ask(q)).citations[0].document == page and not a.abstained for q, page in PARAPHRASES]
    assert not all(found)


class _Titles:
    def __init__(self, titled: list[bool], cosines: list[float]) -> None:
        self.titled = np.array(titled)
        self._cosines = np.array(cosines, dtype=np.float32)

    def title_similarity(self, query: np.ndarray) -> np.ndarray:
        return self._cosines


def test_a_title_votes_by_how_much_it_beats_the_median_title():
    votes = title_votes(_Titles([True, True, True, False], [0.9, 0.8, 0.7, 0.0]), np.zeros(2))
    assert votes.tolist() == pytest.approx([0.1, 0.0, -0.1, 0.0])


def test_titles_do_not_vote_where_most_documents_state_none():
    index = _Titles([True, True, False, False, False], [0.9, 0.5, 0.0, 0.0, 0.0])
    assert not title_votes(index, np.zeros(2)).any()
    assert title_votes(index, np.zeros(2), FusionPolicy(min_titled_share=0.4)).any()
    assert not title_votes(_Titles([True], [0.9]), np.zeros(2), FusionPolicy(min_titled_share=0.0)).any()


def test_only_stated_titles_are_embedded_and_stored(tmp_path):
    engine = fake_engine(tmp_path, {"page.md": "# Une vraie question ?\n\nUne réponse assez longue pour compter.\n",
                                    "note.txt": "Une phrase sans titre qui commence le texte ici.\nUne autre.\n"})
    index = engine.index
    stated = {d.source: d.title_stated for d in index.documents.values()}
    assert stated == {"page.md": True, "note.txt": False}
    rows = {d.source: n for n, d in enumerate(index.documents.values())}
    assert np.linalg.norm(index.title_vectors[rows["page.md"]]) == pytest.approx(1.0, abs=1e-5)
    assert not index.title_vectors[rows["note.txt"]].any()
