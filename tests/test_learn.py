"""Learning the model: examples from SQuAD files, the split, negatives, the loss, the adapter's merge
(unit tier), and a real training run of a few steps on the real model (slow tier)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.errors import ConfigError, ModelError, RagError
from rag.learn.examples import QASet, half_of, read_squad
from rag.learn.trainer import mine_negatives

SQUAD = {"data": [
    {"title": "Lyon", "paragraphs": [{
        "context": "Lyon est une ville de France. Elle compte 520 000 habitants. Le Rhône la traverse.",
        "qas": [{"id": "q1", "question": "Combien d'habitants  à Lyon ?", "answers": [{"text": "520 000", "answer_start": 42}]},
                {"id": "q2", "question": "Quel fleuve traverse Lyon ?", "answers": [{"text": "Rhône", "answer_start": 64}]}]}]},
    {"title": "Paris", "paragraphs": [{
        "context": "Paris est la capitale.\nLa Seine traverse Paris. Paris compte 2 millions d'habitants.",
        "qas": [{"question": "Quel fleuve traverse Paris ?", "answers": [{"text": "Seine", "answer_start": 26}]}]},
        {"context": "Une seule phrase ici.", "qas": [{"question": "x ?", "answers": [{"text": "seule", "answer_start": 4}]}]}]},
]}


@pytest.fixture
def qa(tmp_path) -> QASet:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    return read_squad(path, "demo", "fr")


def test_each_question_gets_the_sentence_holding_its_answer(qa):
    got = {e.question: qa.paragraphs[e.paragraph].sentences[e.positive] for e in qa.examples}
    assert got == {"Combien d'habitants à Lyon ?": "Elle compte 520 000 habitants.",
                   "Quel fleuve traverse Lyon ?": "Le Rhône la traverse.",
                   "Quel fleuve traverse Paris ?": "La Seine traverse Paris."}
    assert len(qa.paragraphs) == 2, "a one-sentence paragraph has nothing to rank and is left out"


def test_halves_split_articles_by_a_fixed_hash(qa):
    assert half_of("demo", "Lyon") == half_of("demo", "Lyon")
    halves = {name: qa.half(name) for name in ("train", "heldout")}
    assert sum(len(h.examples) for h in halves.values()) == len(qa.examples)
    for half in halves.values():
        assert {p.article for p in half.paragraphs}.isdisjoint(
            {p.article for h in halves.values() if h is not half for p in h.paragraphs})
        for example in half.examples:  # renumbered: each example still points at its own paragraph
            assert example.answer in half.paragraphs[example.paragraph].sentences[example.positive]
    with pytest.raises(ValueError, match="half"):
        qa.half("test")


def test_a_translated_question_keeps_its_paragraph_and_its_answer_sentence(qa):
    across = qa.translated({"demo q1": "How many inhabitants in Lyon?", "other q1": "never used"})
    assert [(e.question, e.language) for e in across.examples] == [("How many inhabitants in Lyon?", "en")]
    (example,), (original, *_) = across.examples, qa.examples
    assert (example.paragraph, example.positive, example.answer) == (original.paragraph, original.positive, original.answer)
    both = qa.with_translations({"demo q1": "How many inhabitants in Lyon?"})
    assert both.paragraphs == qa.paragraphs, "the translation asks the same paragraph, not a copy of it"
    assert [e.question for e in both.examples] == [e.question for e in qa.examples] + ["How many inhabitants in Lyon?"]
    assert {e.language for h in ("train", "heldout") for e in both.half(h).examples} == {"", "en"}, \
        "a translated question stays translated through the split"


def test_the_shipped_translations_cover_every_training_question_and_a_missing_file_says_how_to_make_it(tmp_path):
    from rag.config import PROJECT_ROOT
    from rag.errors import RagError
    from rag.learn.run import training_data, translations

    qa, _ = training_data(PROJECT_ROOT / "train")
    translated, digest = translations(PROJECT_ROOT / "train")
    assert {e.key for e in qa.examples} <= set(translated), "a training question without its translation"
    assert list(digest) == ["questions-translated.json"]
    with pytest.raises(RagError, match="train/translate.py"):
        translations(tmp_path)


def test_the_language_gap_is_read_from_the_questions_language_not_its_paragraphs():
    from rag.learn.examples import Example, Paragraph
    from rag.learn.measure import language_gap

    paragraphs = (Paragraph("c", "A", "fr", ("fr a",)), Paragraph("c", "B", "fr", ("fr b",)),
                  Paragraph("c", "C", "en", ("en c",)))
    owners = np.array([0, 1, 2])
    scores = np.array([[0.9, 0.5, 0.3]])  # the question against fr a (its own), fr b, en c
    french = QASet(paragraphs, (Example("q", 0, 0, "a"),))
    english = QASet(paragraphs, (Example("q", 0, 0, "a", language="en"),))
    assert language_gap(french, scores, owners) == pytest.approx(0.3 - 0.5), "French question: English minus French"
    assert language_gap(english, scores, owners) == pytest.approx(0.5 - 0.3), "English question: French minus English"


def test_mined_negatives_come_from_other_paragraphs_and_never_hold_the_answer(qa):
    sentences = [s for p in qa.paragraphs for s in p.sentences]
    questions = np.eye(len(qa.examples), 8, dtype=np.float32)
    vectors = np.zeros((len(sentences), 8), dtype=np.float32)
    vectors[:, 0] = np.linspace(1, 0, len(sentences))  # the first question prefers the first sentences
    mined = mine_negatives(qa, questions, vectors, 2)
    own = set(qa.paragraphs[qa.examples[0].paragraph].sentences)
    assert mined[0] and not own & set(mined[0])
    assert all(qa.examples[i].answer.lower() not in s.lower() for i, m in enumerate(mined) for s in m)


def test_the_loss_never_counts_a_copy_of_the_answer_as_a_negative():
    torch = pytest.importorskip("torch")
    from rag.learn.trainer import contrastive_loss

    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # The third passage is another copy of the first question's answer (two questions on one sentence).
    texts = ["A", "B", "A"]
    masked = contrastive_loss(q, p, ["A", "B"], texts, 0.05)
    unmasked = contrastive_loss(q, p, ["A", "B"], ["A", "B", "C"], 0.05)
    assert float(masked) < 0.01 < 0.3 < float(unmasked)


def _adapter(folder, base="base-model", rank=2, alpha=4):
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    down, up = rng.normal(size=(rank, 3)).astype(np.float32), rng.normal(size=(4, rank)).astype(np.float32)
    save_file({"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight": down,
               "base_model.model.encoder.layer.0.attention.self.query.lora_B.weight": up}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": alpha,
                                                            "base_model_name_or_path": base}))
    return down, up


def test_merging_adds_scale_times_b_a_to_the_adapted_weight_only(tmp_path):
    from rag.embedding.adapter import merged_weights, read_adapter

    down, up = _adapter(tmp_path / "a")
    base = {"encoder.layer.0.attention.self.query.weight": np.ones((4, 3), np.float32),
            "encoder.layer.0.attention.self.key.weight": np.ones((4, 3), np.float32)}
    merged = merged_weights(base, read_adapter(tmp_path / "a"))
    np.testing.assert_allclose(merged["encoder.layer.0.attention.self.query.weight"], 1 + 2.0 * up @ down, rtol=1e-6)
    assert (merged["encoder.layer.0.attention.self.key.weight"] == 1).all()
    with pytest.raises(ModelError, match="does not fit"):
        merged_weights({"other.weight": np.ones((4, 3), np.float32)}, read_adapter(tmp_path / "a"))


def test_an_adapter_for_another_base_or_a_broken_one_is_refused_in_one_sentence(tmp_path):
    from rag.embedding.adapter import resolve_adapter

    _adapter(tmp_path / "a", base="someone/else")
    with pytest.raises(ModelError, match="trained on someone/else, not on my-model.*RAG_EMBED_ADAPTER=none"):
        resolve_adapter(str(tmp_path / "a"), "my-model", False)
    with pytest.raises(ModelError, match="adapter_config.json is missing"):
        resolve_adapter(str(tmp_path), "my-model", False)
    assert resolve_adapter("none", "my-model", True) is None
    assert resolve_adapter("default", "another/model", False) is None  # the adapter is the built-in model's
    with pytest.raises(ModelError, match="shipped adapter was trained for the built-in model"):
        resolve_adapter("shipped", "another/model", False)
    from rag.embedding.embedder import Embedder

    for empty in ("beside:", "beside:none", "beside:default"):  # the base beside itself: no second model
        with pytest.raises(ModelError, match="names no adapter to lay beside the model"):
            Embedder(adapter=empty)


def test_liked_and_corrected_answers_become_training_pairs_and_other_ratings_do_not(tmp_path):
    from rag.evaluate.feedback import ShownPassage, correction_of
    from rag.learn.run import feedback_examples

    document = "Titre.\nKantar publie ses prédictions. Le social commerce va croître. Les marques suivront."
    at = document.index("Kantar")
    passage = document[at:]
    quoted = "Le social commerce va croître."
    citation = {"n": 1, "document": "kantar.txt", "start": at, "end": len(document), "passage": passage}
    answer = {"abstained": False, "language": "fr", "citations": [citation],
              "sentences": [{"text": quoted, "citation": 1, "start": document.index(quoted),
                             "end": document.index(quoted) + len(quoted)}]}
    # A passage of one sentence (a manual page's option) still makes a pair: its negatives come from other
    # passages, as for every question.
    option = "Afficher les fichiers cachés, ceux dont le nom commence par un point."
    alone = {"abstained": False, "language": "fr", "sentences": [{"text": option, "citation": 1, "start": 0,
                                                                  "end": len(option)}],
             "citations": [{"n": 1, "start": 0, "end": len(option), "passage": option}]}
    # A refusal whose closest passage holds the answer: the reader points at its last sentence.
    refused = {**answer, "abstained": True, "sentences": []}
    last = "Les marques suivront."
    spans = tuple((document.index(t), document.index(t) + len(t)) for t in ("Kantar publie ses prédictions.", quoted, last))
    pointed = correction_of([ShownPassage(1, at, passage, spans)], f"1:{spans[2][0]}:{spans[2][1]}")
    lines = [{"question": "Que prévoit Kantar ?", "rating": "Like", "answer": answer},
             {"question": "Autre ?", "rating": "Dislike", "answer": answer},
             {"question": "Et les marques ?", "rating": "Like", "answer": answer},
             {"question": "Comment voir les fichiers cachés ?", "rating": "Like", "answer": alone},
             {"question": "Que feront les marques ?", "rating": "Phrase qui répond (answering sentence)",
              "answer": refused, "answering": pointed},
             # the last rating of a question wins: "Et les marques ?" was liked, then found wrong
             {"question": "Et les marques ?", "rating": "Citation fausse (wrong quote)", "answer": answer}]
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n{torn", encoding="utf-8")
    qa = feedback_examples(path)
    assert [(e.question, qa.paragraphs[e.paragraph].sentences[e.positive]) for e in qa.examples] == [
        ("Que prévoit Kantar ?", quoted), ("Comment voir les fichiers cachés ?", option),
        ("Que feront les marques ?", last)]
    assert qa.paragraphs[2].sentences == ("Kantar publie ses prédictions.", quoted, last)
    with pytest.raises(RagError, match="no such file"):
        feedback_examples(tmp_path / "missing.jsonl")


def test_ratings_taken_several_times_keep_each_question_on_its_own_passage():
    from rag.learn.examples import Example, Paragraph
    from rag.learn.run import with_feedback
    from rag.learn.trainer import TrainSettings

    fit = QASet((Paragraph("piaf", "Paris", "fr", ("Paris est une ville.", "Elle a un fleuve.")),),
                (Example("Quel fleuve ?", 0, 1, "Elle a un fleuve."),))
    rated = QASet((Paragraph("feedback", "q", "fr", ("apt remove foo.", "apt purge foo efface aussi.")),),
                  (Example("Comment tout effacer ?", 0, 1, "apt purge foo efface aussi."),))
    taken = with_feedback(fit, rated, 3)
    pairs = [(e.question, taken.paragraphs[e.paragraph].sentences[e.positive]) for e in taken.examples]
    assert pairs == [("Quel fleuve ?", "Elle a un fleuve.")] + [("Comment tout effacer ?", "apt purge foo efface aussi.")] * 3
    assert with_feedback(fit, None, 3) == fit
    with pytest.raises(ConfigError, match="feedback_repeat must be at least 1"):
        TrainSettings(feedback_repeat=0)


def test_a_repeat_without_ratings_is_refused_before_anything_loads(capsys, tmp_path):
    from rag import cli

    # An empty data folder: were the repeat not checked first, the run would stop on the missing files instead.
    assert cli.main(["train", "--feedback-repeat", "5", "--dry-run", "--data", str(tmp_path)]) == 2
    assert "--feedback-repeat repeats the ratings of --feedback" in capsys.readouterr().err


@pytest.mark.slow
def test_a_few_steps_of_lora_lower_the_loss_and_the_adapter_loads(tmp_path, qa_pairs):
    """20 real pairs, the real model: the loss falls, the adapter is written in peft's layout, the
    embedder merges it (same vectors as the peft model, other vectors than the base, another model id),
    and a second run with the same seed gives the same vectors."""
    from rag.embedding.embedder import Embedder
    from rag.learn.run import Base, save_adapter
    from rag.learn.trainer import PASSAGE_PROMPT, TrainSettings, encoder, train

    from rag.learn.run import default_base

    base_embedder = Embedder(adapter="none")
    base = default_base(base_embedder.cache_dir)
    base_id = base_embedder.model_id.rsplit(" (", 1)[0]
    assert base.model_id == base_id
    settings = TrainSettings(max_steps=12, batch_size=4, mined_negatives=0, learning_rate=1e-3, warmup=0.0)
    trained = train(qa_pairs, base.folder, settings, progress=False, log=lambda _: None)
    curve = trained.record["loss_curve"]
    assert curve[-1] < curve[0], curve
    out = save_adapter(trained, Base(base.folder, base.model_id), tmp_path / "adapter", trained.record)
    assert (out / "adapter_model.safetensors").stat().st_size < 5_000_000
    tuned = Embedder(adapter=str(out), backend="torch", cache_dir=base_embedder.cache_dir)
    assert tuned.model_id.startswith(base_id + "+adapter:") and tuned.model_id != base_embedder.model_id
    texts = [s for p in qa_pairs.paragraphs for s in p.sentences][:6]
    expected = encoder(trained.model.merge_and_unload(), trained.tokenizer, PASSAGE_PROMPT)(texts)
    got = tuned.encode_passages(texts)
    assert np.min(np.sum(got * expected, axis=1)) > 0.999
    assert np.min(np.sum(got * Embedder(adapter="none", backend="torch").encode_passages(texts), axis=1)) < 0.9999
    again = train(qa_pairs, base.folder, settings, progress=False, log=lambda _: None)
    repeated = encoder(again.model.merge_and_unload(), again.tokenizer, PASSAGE_PROMPT)(texts)
    assert np.min(np.sum(repeated * expected, axis=1)) > 0.9999, "the same seed trains the same model"


def test_rag_train_s_defaults_are_the_shipped_adapter_s_run():
    """`rag train` with no option makes the shipped adapter again: its settings are the ones its record
    names (a setting added since defaults to what that run did)."""
    from dataclasses import asdict

    from rag.cli import parser
    from rag.embedding.adapter import PACKAGED
    from rag.learn.trainer import TrainSettings

    shipped = json.loads((PACKAGED / "training.json").read_text(encoding="utf-8"))["settings"]
    defaults = asdict(TrainSettings())
    assert {k: v for k, v in defaults.items() if k in shipped} == shipped
    assert defaults["beside"] is False and "beside" not in shipped
    args = parser().parse_args(["train"])
    assert (args.epochs, args.translated, args.beside) == (shipped["epochs"], True, False)


def test_side_by_side_cosines_are_the_mean_of_both_models_and_beside_needs_lora():
    import torch

    from rag.learn.trainer import TrainSettings, side_by_side

    rng = np.random.default_rng(0)
    unit = lambda m: torch.nn.functional.normalize(torch.from_numpy(m.astype(np.float32)), dim=-1)  # noqa: E731
    qa_, qb, pa, pb = (unit(rng.normal(size=(3, 8))) for _ in range(4))
    pair = side_by_side(qa_, qb) @ side_by_side(pa, pb).T
    np.testing.assert_allclose(pair.numpy(), ((qa_ @ pa.T + qb @ pb.T) / 2).numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match="beside"):
        TrainSettings(beside=True, method="full")


def test_an_adapter_trained_beside_the_base_answers_beside_it(tmp_path, qa_pairs):
    """`rag train --beside`: the loss reads the pair (the base half fixed: another adapter than one trained
    alone with the same seed), the loss falls, and
    RAG_EMBED_ADAPTER=beside:FOLDER embeds as the trained pair did, under an id naming both models."""
    from dataclasses import replace

    from rag.embedding.embedder import Embedder
    from rag.learn.run import Base, default_base, save_adapter
    from rag.learn.trainer import PASSAGE_PROMPT, QUERY_PROMPT, TrainSettings, encoder, train

    base_embedder = Embedder(adapter="none", backend="torch")
    base = default_base(base_embedder.cache_dir)
    settings = TrainSettings(max_steps=12, batch_size=4, mined_negatives=0, learning_rate=1e-3, warmup=0.0,
                             beside=True)
    trained = train(qa_pairs, base.folder, settings, progress=False, log=lambda _: None)
    curve = trained.record["loss_curve"]
    assert curve[-1] < curve[0], curve
    out = save_adapter(trained, Base(base.folder, base.model_id), tmp_path / "adapter", trained.record)
    pair = Embedder(adapter=f"beside:{out}", backend="torch", cache_dir=base_embedder.cache_dir)
    assert pair.beside and pair.dim == 2 * base_embedder.dim and " beside adapter:" in pair.model_id
    texts = [s for p in qa_pairs.paragraphs for s in p.sentences][:6]
    expected = encoder(trained.model, trained.tokenizer, PASSAGE_PROMPT, beside=True)(texts)
    np.testing.assert_allclose(pair.encode_passages(texts), expected, atol=1e-4)
    question = [qa_pairs.examples[0].question]
    np.testing.assert_allclose(pair.encode_queries(question),
                               encoder(trained.model, trained.tokenizer, QUERY_PROMPT, beside=True)(question), atol=1e-4)
    half = pair.dim // 2
    np.testing.assert_allclose(pair.encode_passages(texts)[:, :half] / np.sqrt(0.5),
                               base_embedder.encode_passages(texts), atol=1e-4)
    alone = train(qa_pairs, base.folder, replace(settings, beside=False), progress=False, log=lambda _: None)
    tuned_half = expected[:, half:] / np.sqrt(0.5)
    tuned_alone = encoder(alone.model, alone.tokenizer, PASSAGE_PROMPT)(texts)
    assert np.min(np.sum(tuned_half * tuned_alone, axis=1)) < 0.9999, "the loss read the pair, not the adapter alone"


@pytest.mark.slow
def test_rag_train_translated_trains_on_both_languages_and_records_the_translated_held_out_half(tmp_path):
    """`rag train --translated` end to end on a sliver of train/: the translations' file joins the data
    hashes, the pairs across languages join the training half, and the held-out half is measured as
    asked and translated."""
    from rag.config import PROJECT_ROOT
    from rag.embedding.embedder import Embedder
    from rag.learn.run import TRAIN_FILES, TRANSLATIONS, run
    from rag.learn.trainer import TrainSettings

    data = tmp_path / "train"
    data.mkdir()
    for name, _, _ in TRAIN_FILES:  # a few articles of each file, two paragraphs each
        squad = json.loads((PROJECT_ROOT / "train" / name).read_text(encoding="utf-8"))
        squad["data"] = [{**a, "paragraphs": a["paragraphs"][:2]} for a in squad["data"][:8]]
        (data / name).write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    (data / TRANSLATIONS).write_bytes((PROJECT_ROOT / "train" / TRANSLATIONS).read_bytes())
    settings = TrainSettings(max_steps=2, batch_size=4, mined_negatives=0, translated_questions=True)
    record = run(settings, data, tmp_path / "adapter", Embedder(adapter="none").cache_dir, progress=False,
                 log=lambda _: None)
    assert TRANSLATIONS in record["data"] and record["settings"]["translated_questions"] is True
    held, across = record["heldout"], record["heldout_translated"]
    assert across["questions"] == held["questions"] > 0, "every held-out question is measured translated too"
    assert 0 <= across["trained"]["paragraph_first"] <= 1 and across["base"] != held["base"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


@pytest.fixture
def qa_pairs():
    from rag.config import PROJECT_ROOT
    from rag.learn.examples import Example

    whole = read_squad(PROJECT_ROOT / "train" / "piaf-v1.0.json", "piaf", "fr").half("train")
    chosen = whole.examples[:20]
    keep = sorted({e.paragraph for e in chosen})
    renumber = {old: new for new, old in enumerate(keep)}
    return QASet(tuple(whole.paragraphs[i] for i in keep),
                 tuple(Example(e.question, renumber[e.paragraph], e.positive, e.answer) for e in chosen))


@pytest.mark.slow
def test_the_shipped_adapter_loads_and_its_id_re_embeds_an_index_of_the_base(base_embedder, tmp_path):
    """RAG_EMBED_ADAPTER=shipped is base + rag/data/adapter; an index the base embedded is not reused
    for it (its vectors are another model's), and an unchanged one is not embedded again."""
    import shutil

    from rag.embedding.adapter import PACKAGED, read_adapter
    from rag.embedding.embedder import Embedder
    from rag.index.build import build
    from tests.conftest import SEEDS

    tuned = Embedder(adapter="shipped")
    base_id = base_embedder.model_id.split(" (")[0]
    assert tuned.model_id.split(" (")[0] == f"{base_id}+{read_adapter(PACKAGED).tag}"
    assert read_adapter(PACKAGED).base == base_id
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    first = build(docs, tmp_path / "index", base_embedder)
    second = build(docs, tmp_path / "index", tuned)
    assert second.embedded_documents == first.documents == 2
    assert second.index.model_id == tuned.model_id != first.index.model_id
    assert build(docs, tmp_path / "index", tuned).embedded_documents == 0, "unchanged: nothing embedded again"


@pytest.mark.slow
def test_the_default_lays_the_base_and_the_shipped_adapter_side_by_side(embedder, base_embedder, tmp_path):
    """RAG_EMBED_ADAPTER=default (the default) embeds each text with the base model and with the shipped
    adapter merged in: each half is that model's vector times √½, so a cosine is the mean of the two
    models' cosines; the id names both, and an index the base alone embedded is embedded again."""
    import shutil

    from rag.embedding.adapter import PACKAGED, read_adapter
    from rag.embedding.embedder import Embedder
    from rag.index.build import build
    from tests.conftest import SEEDS

    tuned = Embedder(adapter="shipped")
    base_id = base_embedder.model_id.split(" (")[0]
    assert embedder.beside and not base_embedder.beside and not tuned.beside
    assert embedder.model_id == f"{base_id} beside {read_adapter(PACKAGED).tag} (onnx)"
    assert embedder.dim == 2 * base_embedder.dim
    texts = ["Kantar Media prévoit un développement du social commerce.", "What will the library do on Saturdays?"]
    both = embedder.encode_passages(texts)
    half = embedder.dim // 2
    np.testing.assert_allclose(both[:, :half] / np.sqrt(0.5), base_embedder.encode_passages(texts), atol=1e-5)
    np.testing.assert_allclose(both[:, half:] / np.sqrt(0.5), tuned.encode_passages(texts), atol=1e-5)
    questions = embedder.encode_queries(["Que prévoit Kantar ?"])
    mean = (base_embedder.encode_queries(["Que prévoit Kantar ?"]) @ base_embedder.encode_passages(texts).T
            + tuned.encode_queries(["Que prévoit Kantar ?"]) @ tuned.encode_passages(texts).T) / 2
    np.testing.assert_allclose(questions @ both.T, mean, atol=1e-5)
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    build(docs, tmp_path / "index", base_embedder)
    again = build(docs, tmp_path / "index", embedder)
    assert again.embedded_documents == 2 and again.index.dim == embedder.dim


@pytest.mark.slow
def test_side_by_side_each_model_opens_its_own_onnx_export(base_embedder, monkeypatch):
    """The base half reads the export `none` uses: named by the base's id, not by the pair's, it would be
    exported a second time (562 MB and about 10 s at a first start)."""
    import rag.embedding.onnx as onnx
    from rag.embedding.adapter import PACKAGED, read_adapter
    from rag.embedding.embedder import Embedder

    asked: list[str] = []
    real = onnx.ensure_onnx

    def recording(folder, cache_dir, model_id, *args, **kwargs):
        asked.append(model_id)
        return real(folder, cache_dir, model_id, *args, **kwargs)

    monkeypatch.setattr(onnx, "ensure_onnx", recording)
    pair = Embedder()
    assert pair.beside and pair.dim == 2 * base_embedder.dim
    base_id = base_embedder.model_id.split(" (")[0]
    assert sorted(asked) == sorted([base_id, f"{base_id}+{read_adapter(PACKAGED).tag}"])


def test_rank_counts_firsts_and_measures_the_cosine_scale():
    """Two paragraphs of two sentences, three questions with vectors chosen by hand: the figures are
    known in advance, the cosine scale included (mean and per-question spread of the score matrix)."""
    from rag.learn.examples import Example, Paragraph
    from rag.learn.measure import rank

    qa = QASet((Paragraph("c", "a", "fr", ("s0", "s1")), Paragraph("c", "b", "fr", ("s2", "s3"))),
               (Example("q0", 0, 0, "x"), Example("q1", 0, 1, "x"), Example("q2", 1, 1, "x")))
    sentences = {"s0": [1, 0, 0], "s1": [0, 1, 0], "s2": [0, 0, 1], "s3": [0.6, 0, 0.8]}
    questions = {"q0": [1, 0, 0], "q1": [1, 0, 0], "q2": [0, 0, 1]}
    ranking = rank(qa, lambda texts: np.array([questions[t] for t in texts], float),
                   lambda texts: np.array([sentences[t] for t in texts], float))
    # q0: s0 first in its paragraph and overall; q1 wants s1 but gets s0 (right paragraph);
    # q2 wants s3 but gets s2, which is in its paragraph.
    assert (ranking.questions, ranking.sentence_first, ranking.paragraph_first) == (3, 1 / 3, 1.0)
    scores = np.array([[1, 0, 0, 0.6], [1, 0, 0, 0.6], [0, 0, 1, 0.8]])
    assert ranking.cosine_mean == pytest.approx(scores.mean())
    assert ranking.cosine_spread == pytest.approx(scores.std(axis=1).mean())
    assert ranking.language_gap == 0.0, "one language: nothing to compare"


def test_the_language_gap_is_the_other_languages_best_minus_unrelated_own_language_best():
    from rag.learn.examples import Example, Paragraph
    from rag.learn.measure import rank

    qa = QASet((Paragraph("piaf", "a", "fr", ("s0", "s1")), Paragraph("piaf", "b", "fr", ("s2", "s3")),
                Paragraph("xquad", "c", "en", ("s4", "s5"))),
               (Example("q0", 0, 0, "x"), Example("q1", 2, 0, "x")))
    sentences = {"s0": [1, 0], "s1": [0, 1], "s2": [0.8, 0.6], "s3": [0, 1], "s4": [0.6, 0.8], "s5": [0, 1]}
    questions = {"q0": [1, 0], "q1": [0, 1]}
    ranking = rank(qa, lambda texts: np.array([questions[t] for t in texts], float),
                   lambda texts: np.array([sentences[t] for t in texts], float))
    # q0 (French, article a): other language best s4 0.6; own language outside article a: s2 0.8 → -0.2.
    # q1 (English, article c): French best 1.0 (s1, s3); no English sentence outside article c: not counted.
    assert ranking.language_gap == pytest.approx(-0.2)
