"""The shipped sentence model, run for real: unit vectors, stable, meaningful, and a clear
error when it cannot load."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.embedding import Embedder, ModelUnavailable, Vector
from pipeline.embedding.model import DIM, NAME, load_embedder
from pipeline.resources import sentence_model

TEXTS = [
    "Forecasting tomorrow's rainfall with a neural weather model.",
    "Predicting protein structures from amino-acid sequences.",
    "A short one.",
    "",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder()


def cosine(a: Vector, b: Vector) -> float:
    return float(a @ b)


def test_vectors_are_unit_float32_rows_of_384(embedder: Embedder) -> None:
    """One unit-length float32 row of 384 numbers per text, the empty text included."""
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.name == NAME == "all-MiniLM-L6-v2/int8" and embedder.dim == DIM


def test_no_texts_give_an_empty_matrix(embedder: Embedder) -> None:
    """Embedding nothing is not an error: the result has no rows and 384 columns."""
    assert embedder.embed([]).shape == (0, DIM)


def test_the_same_text_always_gets_the_same_vector(embedder: Embedder) -> None:
    """Vectors are deterministic: twice the same call, twice the same bytes."""
    assert np.array_equal(embedder.embed(TEXTS), embedder.embed(TEXTS))


def test_a_batch_gives_the_vectors_each_text_gets_alone(embedder: Embedder) -> None:
    """A text's vector does not depend on the other texts of its batch or their order."""
    together = embedder.embed(TEXTS)
    alone = np.vstack([embedder.embed([text]) for text in reversed(TEXTS)])[::-1]
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(embedder: Embedder) -> None:
    """Meaning, not shared words: the weather paraphrase beats the protein sentence."""
    anchor, paraphrase, unrelated = embedder.embed(
        [
            "Machine learning for predicting the weather a few days ahead.",
            "Neural networks that forecast next week's temperatures and storms.",
            "Machine learning for predicting how proteins fold.",
        ]
    )
    assert cosine(anchor, paraphrase) > cosine(anchor, unrelated) + 0.1


def test_a_long_text_is_cut_at_256_tokens_not_refused(embedder: Embedder) -> None:
    """Past the model's 256 tokens the rest is ignored: what follows changes nothing."""
    long = " ".join(["Diffusion models generate images from noise step by step."] * 100)
    first, second = embedder.embed([long, long + " Protein folding and weather forecasts."])
    assert np.array_equal(first, second)


def test_the_embedder_is_loaded_once_per_process() -> None:
    """Matching, the store and the service share one loaded model."""
    assert load_embedder() is load_embedder()


def test_an_empty_folder_is_model_unavailable_with_a_one_line_reason(tmp_path: Path) -> None:
    """A folder without the files says which file is missing, on one line."""
    with pytest.raises(ModelUnavailable, match=r"tokenizer\.json") as raised:
        load_embedder(tmp_path)
    assert "\n" not in str(raised.value) and str(tmp_path) in str(raised.value)


def test_a_corrupt_model_file_is_model_unavailable(tmp_path: Path) -> None:
    """A model.onnx that is not a model fails at load, as ModelUnavailable, never later."""
    shutil.copy(sentence_model() / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelUnavailable, match="cannot load the sentence model") as raised:
        load_embedder(tmp_path)
    assert "\n" not in str(raised.value)


def test_a_corrupt_tokenizer_is_model_unavailable(tmp_path: Path) -> None:
    """An unreadable tokenizer.json fails at load too, naming the file."""
    (tmp_path / "tokenizer.json").write_text("{ not json")
    shutil.copy(sentence_model() / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(ModelUnavailable, match="cannot read the tokenizer") as raised:
        load_embedder(tmp_path)
    assert "\n" not in str(raised.value)


def test_the_model_ships_with_its_licence() -> None:
    """The Apache-2.0 text and the NOTICE (source, changes) travel with the weights."""
    folder = sentence_model()
    assert "Apache License" in (folder / "LICENSE").read_text()
    notice = (folder / "NOTICE").read_text()
    assert "sentence-transformers/all-MiniLM-L6-v2" in notice and "Apache" in notice
