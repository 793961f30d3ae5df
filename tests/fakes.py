"""Fast deterministic stand-ins for tests of logic that does not depend on the real models."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class HashEmbedder:
    """Bag of hashed words: texts sharing words get close vectors. Deterministic and instant.

    Tokens are whitespace-separated words, so chunk sizes in tests are word counts.
    """

    name = "test-hash-embedder"
    dim = 64
    max_tokens = 254
    _word = re.compile(r"\S+")

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._word.finditer(text)]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out
