"""The house: settings in one place, the layout by stage, rendering from records (fast tier)."""

from __future__ import annotations

import re

import pytest

from rag.config import FIELDS, Settings
from rag.errors import ConfigError
from rag.records import Answer, Citation, Quote
from tests.conftest import ROOT
from ui.render import answer_markdown

STAGES = {"ingest", "text", "embedding", "index", "query", "retrieve", "answer", "data", "evaluate", "learn"}  # data: word lists, calibration
TOP_LEVEL = {"__init__", "records", "errors", "config", "policy", "digest", "engine", "cli"}


def test_every_rag_variable_read_anywhere_is_a_settings_field():
    declared = {field.env for field in FIELDS.values()}
    used = set()
    for path in list((ROOT / "rag").rglob("*.py")) + list((ROOT / "ui").rglob("*.py")):
        used |= set(re.findall(r"\bRAG_[A-Z_]+\b", path.read_text(encoding="utf-8")))
    assert used <= declared, f"read outside Settings: {sorted(used - declared)}"


def test_only_config_reads_the_environment_for_settings():
    for path in list((ROOT / "rag").rglob("*.py")) + list((ROOT / "ui").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if path.name != "config.py":
            assert not re.search(r"environ(?:\.get)?\(?\[?[\"']RAG_", source), path


def test_the_readme_lists_every_setting_with_its_default():
    from rag.config import settings_table

    assert settings_table() in (ROOT / "README.md").read_text(encoding="utf-8"), "run: python -m rag.config"


def test_option_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_PORT", "9001")
    assert Settings.resolve().port == 9001
    assert Settings.resolve(port=9002).port == 9002
    monkeypatch.delenv("RAG_PORT")
    assert Settings.resolve().port == 7860
    monkeypatch.setenv("RAG_DOCS_DIR", str(tmp_path))
    assert Settings.resolve().docs_dir == tmp_path


@pytest.mark.parametrize("variable, value", [("RAG_PORT", "http"), ("RAG_MAX_FILES", "0"),
                                             ("RAG_FAISS_INDEX", "annoy"), ("RAG_LOG_LEVEL", "loud")])
def test_a_bad_value_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        Settings.resolve()


def test_each_module_sits_in_its_stage():
    for path in (ROOT / "rag").rglob("*.py"):
        relative = path.relative_to(ROOT / "rag")
        if len(relative.parts) == 1:
            assert path.stem in TOP_LEVEL, f"{relative}: put it in one of the stage packages {sorted(STAGES)}"
        else:
            assert relative.parts[0] in STAGES, relative


@pytest.mark.parametrize("stage, forbidden", [
    ("ingest", ("text", "embedding", "index", "query", "retrieve", "answer")),
    ("text", ("embedding", "index", "query", "retrieve", "answer")),
    ("embedding", ("ingest", "text", "index", "query", "retrieve", "answer")),
    ("index", ("query", "retrieve", "answer")), ("query", ("retrieve", "answer")), ("retrieve", ("answer",)),
])
def test_no_stage_reaches_back_up_to_a_later_one(stage, forbidden):
    for path in (ROOT / "rag" / stage).rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for later in forbidden:
            assert not re.search(rf"from \.\.{later}\b|rag\.{later}\b", source), f"{path.name} imports {later}"


def test_only_the_command_line_reaches_the_training_stage():
    """Answering never imports training code (torch, peft); the adapter it runs is merged by `embedding/`."""
    for path in (ROOT / "rag").rglob("*.py"):
        if path.parent.name != "learn" and path.name != "cli.py":
            assert not re.search(r"from \.+learn\b|rag\.learn\b", path.read_text(encoding="utf-8")), path


def test_importing_rag_loads_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, rag, rag.cli, rag.config; "
            "print(','.join(m for m in ('torch', 'sentence_transformers', 'faiss', 'gradio', 'numpy') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == ""


def test_bubble_is_rendered_from_records_not_from_the_text():
    citation = Citation(1, "d1", "a.txt", "Titre A", 2019, 0, 30, "Kantar prévoit un essor net.", 0.9, 0)
    other = Citation(2, "d2", "b.txt", "Titre B", None, 0, 20, "Digimind voit TikTok.", 0.8, 0)
    quotes = (Quote("Kantar prévoit un essor net.", 1, 0, 28, "d1"), Quote("Digimind voit TikTok.", 2, 0, 21, "d2"))
    answer = Answer("q", "fr", False, "this text is never parsed", quotes, (citation, other),
                    lead="Voici ce que disent les documents :",
                    headings=(("d1", "Titre A (2019)"), ("d2", "Titre B (année non précisée)")))
    markdown = answer_markdown(answer)
    assert "never parsed" not in markdown
    assert markdown.index("Titre A (2019)") < markdown.index("Kantar") < markdown.index("Titre B") \
        < markdown.index("Digimind")
    assert "**[2]**" in markdown


def test_a_definition_is_shown_after_the_term_it_defines_outside_the_quote():
    from rag.answer.compose import plain_text

    citation = Citation(1, "d1", "mv.txt", "mv", None, 0, 60, "-n, --no-clobber\nne pas écraser un fichier existant", 0.9, 0,
                        section="-n, --no-clobber")
    quote = Quote("ne pas écraser un fichier existant", 1, 17, 51, "d1", term="-n, --no-clobber")
    answer = Answer("q", "fr", False, "", (quote,), (citation,), lead="D'après les documents :")
    assert "**\\-n, --no-clobber** : « ne pas écraser un fichier existant »" in answer_markdown(answer)
    assert "- -n, --no-clobber : « ne pas écraser un fichier existant » [1]" in plain_text(answer)
    assert quote.to_json()["term"] == "-n, --no-clobber" and "term" not in Quote("x", 1, 0, 1, "d").to_json()


def test_the_term_of_a_definition_is_read_from_headings_and_neighbours(tmp_path):
    """Only the first sentence under a term gets it; a sentence under a section heading gets none."""
    from rag.answer.compose import defined_terms
    from rag.index.build import build
    from tests.fakes import FakeEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "mv.txt").write_text("NOM\nmv - Déplacer des fichiers\n\nDESCRIPTION\nRenommer la SOURCE en CIBLE.\n\n"
                                 "-n, --no-clobber\nne pas écraser un fichier existant. Sinon, rien ne change.\n\n"
                                 "Remarques\nLe suffixe d'archivage est « ~ ».\n", encoding="utf-8")
    index = build(docs, tmp_path / "index", FakeEmbedder()).index
    sentences = index.sentences_by_id(range(index.sentence_count))
    terms = dict(zip((s.text for s in sentences), defined_terms(index, sentences)))
    assert terms["ne pas écraser un fichier existant."] == "-n, --no-clobber"
    assert terms["Sinon, rien ne change."] == ""
    assert terms["Le suffixe d'archivage est « ~ »."] == "" and terms["Renommer la SOURCE en CIBLE."] == ""
