"""A deterministic stand-in for the sentence model, for tests: words hashed into a vector.

It implements ``pipeline.embedding.Embedder`` (unit float32 rows, a name, a dim), so texts
sharing words come out close and nothing is downloaded or loaded. It is not a model of
meaning; tests about what meaning finds use the real ``load_embedder()``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from pipeline.embedding import Vector


class HashEmbedder:
    """Bag of hashed lower-cased words, L2-normalised; records every call's batch size."""

    def __init__(self, name: str = "test-hash/64", dim: int = 64) -> None:
        self.name = name
        self.dim = dim
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> Vector:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out

    @property
    def texts_embedded(self) -> int:
        return sum(self.calls)
