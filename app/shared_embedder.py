"""The embedder is shared by the index thread (chunks) and the ask thread (queries).

sentence-transformers calls its Hugging Face tokenizer with padding/truncation settings that it mutates per
call, and two threads in `encode` at once can fail with "Already borrowed". So `embed` is serialised here.
`token_spans` uses core's own read-only `tokenizers.Tokenizer` and needs no lock.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from almanac.core.embedding import Embedder


class SharedEmbedder:
    """Thread-safe wrapper with the Embedder interface; anything else is passed through."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed(texts)

    def load(self) -> None:
        """Load the encoder now (slow: torch), if the embedder loads lazily."""
        load = getattr(self.inner, "load", None)
        if load is not None:
            load()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
