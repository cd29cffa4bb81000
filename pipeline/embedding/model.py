"""The sentence model at run time: all-MiniLM-L6-v2 as int8 ONNX, run by onnxruntime.

The model and its tokenizer are package data (``pipeline/embedding/minilm/``, made once by
``scripts/export_minilm.py``; licence in ``NOTICE``), so nothing is downloaded and torch is
never needed. ``load_embedder()`` opens it once per process.

Each text runs through the model on its own. The int8 graph quantises its activations with
one scale per call, so in a padded batch every text's vector would depend on its neighbours
(by up to 0.02 per component on real abstracts); alone, a text always gets the same vector,
whichever batch it came in, and there is no padding to compute. On a CPU with abstracts of
~250 tokens, batching bought no speed either (``benchmarks/embed_cost.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embedding import Embedder, ModelUnavailable, Vector
from pipeline.errors import ConfigError
from pipeline.resources import sentence_model

NAME = "all-MiniLM-L6-v2/int8"
DIM = 384
MAX_TOKENS = 256  # the model's own limit (its sentence-transformers configuration)
THREADS = 2
OUTPUT = "sentence_embedding"


class MiniLM:
    """all-MiniLM-L6-v2 with int8 weights: texts → unit float32 vectors of 384 dimensions."""

    name: str = NAME
    dim: int = DIM

    def __init__(self, folder: Path | None = None, *, threads: int = THREADS) -> None:
        folder = folder if folder is not None else _bundled_folder()
        self._tokenizer = _open_tokenizer(folder / "tokenizer.json")
        self._session = _open_session(folder / "model.onnx", threads)

    def embed(self, texts: Sequence[str]) -> Vector:
        """One unit vector per text, in order; a text past 256 tokens is cut, not refused."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):
            ids = np.array([encoding.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            out[row] = self._session.run([OUTPUT], feed)[0][0]
        return out


@cache
def load_embedder(folder: Path | None = None, *, threads: int = THREADS) -> Embedder:
    """The sentence model, opened once per process (per folder and thread count).

    Raises ModelUnavailable, with a one-line reason, when onnxruntime or tokenizers is not
    installed or the model files are missing or unreadable.
    """
    return MiniLM(folder, threads=threads)


def _bundled_folder() -> Path:
    try:
        return sentence_model()
    except ConfigError as e:
        raise ModelUnavailable(str(e)) from e


def _open_tokenizer(path: Path) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise ModelUnavailable(f"the tokenizers package is not installed ({e})") from e
    if not path.is_file():
        raise ModelUnavailable(f"the sentence model's tokenizer {str(path)!r} is missing")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust side raises a bare Exception for any unreadable file
        raise ModelUnavailable(f"cannot read the tokenizer {str(path)!r}: {_first_line(e)}") from e
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()  # tokenizer.json asks for fixed padding to 128; each text runs alone
    return tokenizer


def _open_session(path: Path, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ModelUnavailable(f"the onnxruntime package is not installed ({e})") from e
    if not path.is_file():
        raise ModelUnavailable(f"the sentence model {str(path)!r} is missing")
    options = ort.SessionOptions()
    # Few threads: the service embeds a few papers per tick beside everything else it does.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only; a failure is raised below anyway
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's errors (InvalidProtobuf, Fail, …) derive from Exception
        raise ModelUnavailable(
            f"cannot load the sentence model {str(path)!r}: {_first_line(e)}"
        ) from e
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if inputs != {"input_ids", "attention_mask"} or outputs.get(OUTPUT, [None])[-1] != DIM:
        raise ModelUnavailable(
            f"{str(path)!r} is not the sentence model paperboy expects "
            f"(inputs {sorted(inputs)}, outputs {outputs})"
        )
    return session


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
