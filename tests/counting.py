"""An embedder wrapper that records what it was asked to embed (to prove what was not re-embedded)."""

from __future__ import annotations


class CountingEmbedder:
    """Wraps another embedder; `texts` lists every text embedded. `name`/`dim` can pose as another model."""

    def __init__(self, inner, name=None, dim=None):
        self.inner = inner
        self.name = name or inner.name
        self.dim = dim or inner.dim
        self.max_tokens = inner.max_tokens
        self.texts: list[str] = []

    def token_spans(self, text):
        return self.inner.token_spans(text)

    def embed(self, texts):
        self.texts += texts
        v = self.inner.embed(texts)
        return v[:, : self.dim] if self.dim <= v.shape[1] else v
