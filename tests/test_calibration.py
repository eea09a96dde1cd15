"""The abstention threshold belongs to the model that measured it: shipped, measured by
`rag calibrate`, or refused with one sentence."""

from __future__ import annotations

import json

import pytest

from rag.answer.calibration import (BEING_MEASURED, Calibration, Measured, calibrate, calibration_path,
                                    choose_threshold, find_calibration, leave_one_out, write_calibration)
from rag.config import Settings
from rag.engine import Engine
from rag.errors import ConfigError
from tests.conftest import ROOT, SEEDS
from tests.fakes import FakeEmbedder


class OtherModel(FakeEmbedder):
    model_id = "someone/other-model (onnx)"


def test_the_threshold_separates_answerable_from_unanswerable_questions():
    rows = [Measured(s, True, False) for s in (0.03, 0.05, 0.02, 0.04)] + \
           [Measured(s, False, False) for s in (-0.02, 0.0, -0.01)]
    threshold = choose_threshold(rows)
    assert 0.0 < threshold <= 0.02
    assert all((r.support < threshold) != r.answerable for r in rows)
    # Left out, the unanswerable question nearest the answerable ones (0.0) is the one the rule misses.
    assert leave_one_out(rows) == pytest.approx(6 / 7)


def test_the_threshold_never_refuses_more_answerable_questions_than_allowed():
    # An unanswerable question scoring above every answerable one cannot be refused
    # without refusing answerable ones: it is answered, the answerable ones are kept.
    rows = [Measured(s, True, False) for s in (0.01, 0.02, 0.03)] + [Measured(0.05, False, False)]
    threshold = choose_threshold(rows, max_wrong_abstention=0.0)
    assert threshold <= 0.01
    forced = [Measured(0.04, True, False), Measured(0.9, False, True)]  # refused whatever the threshold
    assert choose_threshold(forced) <= 0.04


def test_calibration_needs_both_kinds_of_questions():
    with pytest.raises(ConfigError, match="answerable and unanswerable"):
        calibrate([Measured(0.1, True, False)], "m", "test")


def test_another_model_is_refused_with_one_sentence_saying_what_to_do(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Titre\nKantar Media publie ses prévisions.\n", encoding="utf-8")
    engine = Engine(Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache"),
                    embedder=OtherModel())
    with pytest.raises(ConfigError) as caught:
        engine.open()
    message = str(caught.value)
    assert "someone/other-model (onnx)" in message and "rag calibrate" in message and "\n" not in message
    assert "intfloat/multilingual-e5-small" in message  # what is calibrated, to go back to
    assert not (tmp_path / "index").exists()  # refused before anything was built


def test_a_measured_calibration_is_found_by_its_model_and_wins_over_the_shipped_one(tmp_path):
    cache = tmp_path / "cache"
    entry = Calibration(0.0123, OtherModel.model_id, "test", 0.9)
    path = write_calibration(entry, cache)
    assert path == calibration_path(cache, OtherModel.model_id)
    assert find_calibration(OtherModel.model_id, cache) == entry
    with pytest.raises(ConfigError):
        find_calibration("yet/another (onnx)", cache)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="rag calibrate"):
        find_calibration(OtherModel.model_id, cache)
    # The same hash file naming another model (a collision, or a hand-copied file) is not trusted.
    path.write_text(json.dumps({"margin_threshold": 0.5, "model": "x", "source": "y"}), encoding="utf-8")
    with pytest.raises(ConfigError):
        find_calibration(OtherModel.model_id, cache)


def test_rag_calibrate_measures_a_new_model_which_then_answers(tmp_path, monkeypatch, capsys):
    """`rag calibrate` with a model it has never seen (the fake, renamed), then the same model answers."""
    import rag.embedding.embedder
    from rag import cli

    monkeypatch.setattr(rag.embedding.embedder, "Embedder", lambda **_: OtherModel(), raising=True)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["calibrate"]) == 0
    printed = capsys.readouterr().out
    assert "someone/other-model (onnx)" in printed and "Kept in" in printed
    entry = find_calibration(OtherModel.model_id, tmp_path / "cache")
    # Hashed vectors separate nothing: the rule that wrongly refuses none is "answer unless forced".
    assert entry.source.startswith("rag calibrate on the tuning half") and entry.margin_threshold == -1.0
    assert not (ROOT / "index" / "calibration-index").exists()
    engine = Engine(Settings.resolve(docs_dir=SEEDS, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache"),
                    embedder=OtherModel())
    assert engine.calibration == entry
    assert engine.ask("Qu'est-ce que Kantar prévoit pour le social commerce ?").sentences


@pytest.mark.slow
def test_the_shipped_threshold_is_what_calibration_measures_today(embedder, tmp_path):
    """Editing eval/ or the answer path without re-running bench/calibrate.py shows here."""
    from rag.answer.calibration import packaged
    from rag.evaluate.calibrate import calibrate_engine

    engine = Engine(Settings.resolve(docs_dir=SEEDS, index_dir=tmp_path / "index"), embedder=embedder,
                    calibration=BEING_MEASURED)
    entry, rows = calibrate_engine(engine, sorted((ROOT / "eval").glob("*.jsonl")))
    shipped = next(e for e in packaged() if e.model == embedder.model_id)
    assert entry.margin_threshold == shipped.margin_threshold and len(rows) >= 60
    refused = [r for r in rows if r.forced or r.support < entry.margin_threshold]
    assert sum(not r.answerable for r in refused) >= 2 * sum(r.answerable for r in refused)
