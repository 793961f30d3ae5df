"""The embedder's ONNX backends: same vectors as torch, one export per model and backend, torch as fallback."""

from __future__ import annotations

import logging
import shutil
import sys

import numpy as np
import pytest
from almanac.core import embedding, paths
from almanac.core.embedding import SentenceTransformerEmbedder, bundled_model_path
from almanac.core.errors import ModelError

TEXTS = [
    "Grind fine and extract for 25 seconds at 9 bar.",
    "Feed the sourdough starter with equal flour and water daily. " * 12,  # a long one, padded against short
    "jit.flush",
    "word " * 400,  # past the model's 256 word pieces: truncated, as sentence-transformers does
]


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One data folder for the module, so the real exports are made once, not per test."""
    return tmp_path_factory.mktemp("embed-home")


@pytest.fixture
def home(shared_home):
    paths.set_data_dir(shared_home)
    yield shared_home
    paths.set_data_dir(None)


@pytest.fixture(scope="module")
def torch_vectors(shared_home):
    paths.set_data_dir(shared_home)
    try:
        return SentenceTransformerEmbedder(backend="torch").embed(TEXTS)
    finally:
        paths.set_data_dir(None)


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "min_cos"), [("onnx", 0.9999), ("onnx-int8", 0.97)])
def test_onnx_vectors_match_torch(home, torch_vectors, backend, min_cos):
    e = SentenceTransformerEmbedder(backend=backend)
    vectors = e.embed(TEXTS)
    assert e.active_backend == backend
    assert vectors.shape == torch_vectors.shape == (len(TEXTS), e.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = np.sum(vectors * torch_vectors, axis=1)
    assert cos.min() >= min_cos, cos
    # Padding must not leak into a vector: one text alone gets (nearly) the vector it got among longer ones.
    # Dynamic int8 quantizes each batch's activations on one scale, so there batch-mates move it a little.
    alone = e.embed([TEXTS[2]])[0]
    assert float(alone @ vectors[2]) >= (0.9999 if backend == "onnx" else min_cos)


@pytest.mark.slow
def test_export_is_made_once_and_reused(model_cache, monkeypatch):
    e = SentenceTransformerEmbedder(backend="onnx-int8")
    e.load()
    files = list((model_cache / "embedding").glob("*/*/model.onnx"))
    assert len(files) >= 1

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(embedding, "_export_fp32", no_export)
    again = SentenceTransformerEmbedder(backend="onnx-int8")
    again.load()
    assert again.active_backend == "onnx-int8"
    assert np.allclose(again.embed(TEXTS[:1]), e.embed(TEXTS[:1]))


def test_changed_model_files_get_a_new_export_key(tmp_path):
    copy = tmp_path / "my-model"
    shutil.copytree(bundled_model_path(), copy)
    before = embedding._model_key(copy)
    assert embedding._model_key(copy) == before
    config = copy / "config.json"
    config.write_text(config.read_text() + "\n")
    assert embedding._model_key(copy) != before


@pytest.mark.slow
def test_falls_back_to_torch_without_onnxruntime(home, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as when it is not installed
    e = SentenceTransformerEmbedder(backend="onnx-int8")
    with caplog.at_level(logging.WARNING, logger="almanac.core.embedding"):
        vectors = e.embed(TEXTS[:2])
    assert e.active_backend == "torch"
    assert "using torch" in caplog.text
    assert vectors.shape == (2, 384)


def test_unsupported_models_are_refused_by_the_onnx_path(tmp_path):
    copy = tmp_path / "cls-max"
    shutil.copytree(bundled_model_path(), copy)
    (copy / "1_Pooling" / "config.json").write_text('{"pooling_mode_max_tokens": true}')
    with pytest.raises(ValueError, match="pooling"):
        embedding.OnnxEncoder.for_model(copy, "onnx", 256)


def test_unknown_backend_is_a_clear_error(monkeypatch):
    with pytest.raises(ModelError, match="onnx-int8"):
        SentenceTransformerEmbedder(backend="tensorrt")
    monkeypatch.setenv("ALMANAC_EMBED_BACKEND", "torch")
    assert SentenceTransformerEmbedder().backend == "torch"


@pytest.mark.slow
def test_a_question_is_encoded_once_however_often_it_is_embedded(home, monkeypatch):
    """Cache lookup, search and query log each embed the question: the model must run once for it."""
    e = SentenceTransformerEmbedder()
    e.load()
    calls: list[list[str]] = []
    encode = e._encode
    monkeypatch.setattr(e, "_encode", lambda texts: calls.append(list(texts)) or encode(texts))
    first = e.embed(["how long does espresso extract?"])
    first[0, 0] = 42.0  # a caller changing its copy must not change what the next caller gets
    again = e.embed(["how long does espresso extract?"])
    assert len(calls) == 1 and again[0, 0] != 42.0
    assert np.allclose(again, e._encode(["how long does espresso extract?"]), atol=1e-6)
    e.embed(["a", "b"])  # batches (chunks, sentences) are not remembered
    e.embed(["a", "b"])
    assert [len(c) for c in calls] == [1, 1, 2, 2]  # the question, the check above, the batch twice
    for i in range(embedding.RECENT_TEXTS):  # only the last RECENT_TEXTS single texts are kept
        e.embed([f"question {i}"])
    e.embed(["how long does espresso extract?"])
    assert calls[-1] == ["how long does espresso extract?"]
