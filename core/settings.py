"""Every user setting, declared once with its type and default, stored as JSON in the data directory."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import paths

log = logging.getLogger(__name__)

DEFAULT_IGNORE = [
    # hidden files and folders, VCS and tool folders
    ".*",
    "node_modules/",
    "__pycache__/",
    "venv/",
    "env/",
    ".venv/",
    "site-packages/",
    "build/",
    "dist/",
    "target/",
    "*.egg-info/",
    # (secrets are not here: core.secret_files.SECRET_PATTERNS always applies and cannot be edited)
    # lock and temporary files editors leave behind
    "~$*",
    "*~",
    "*.swp",
    "*.tmp",
    "*.part",
    "*.crdownload",
]

# Secret patterns that earlier versions copied into every user's list; they now live in the fixed list, so
# loading drops them (the user's list keeps only what the user can meaningfully change).
_FORMER_SECRET_DEFAULTS = frozenset(
    {".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
     "*.keychain", "*.keychain-db", "*.kdbx"}
)  # fmt: skip


# Inclusive bounds for numeric settings a user edits; a stored value outside them loads as the default
# (a hand-edited settings file must not ask for a zero-token answer or a day-long timeout).
RANGES: dict[str, tuple[float, float]] = {
    "max_answer_tokens": (32, 4096),
    "answer_timeout_s": (5.0, 3600.0),
    "log_retention_days": (0, 3650),
    "context_size": (512, 131_072),
    "threads": (0, 256),
    "gpu_layers": (-1, 999),  # -1: every layer
    "top_k": (1, 50),
    "chunk_tokens": (16, 8192),
    "chunk_overlap": (0, 1024),  # and below chunk_tokens (checked on load)
    "max_file_mb": (0.001, 100_000.0),
    "extract_timeout_s": (1.0, 3600.0),
    "ocr_max_pages": (1, 10_000),
    "rrf_k": (1, 1000),
    "keyword_weight": (0.0, 10.0),
    "vector_weight": (0.0, 10.0),
}


@dataclass
class Settings:
    llm_path: str = ""  # empty: the bundled SmolLM2-135M-Instruct GGUF
    embedding_model: str = ""  # empty: the bundled all-MiniLM-L6-v2; else a folder or model name
    context_size: int = 4096
    threads: int = 0  # 0: half the logical CPUs, at least two (core.llm.default_threads)
    gpu_layers: int = 0
    max_answer_tokens: int = 384
    answer_timeout_s: float = 120.0
    top_k: int = 5  # sources given to the model and shown
    chunk_tokens: int = 200  # word pieces per chunk (the bundled embedder reads at most 256)
    chunk_overlap: int = 32
    max_file_mb: float = 50.0
    extract_timeout_s: float = 60.0  # a file; for a scan, one page (core/extractors/worker.py)
    # OCR of scanned PDF pages and image files (core/extractors/ocr.py); results are cached by content hash.
    ocr: bool = True
    ocr_max_pages: int = 50  # pages OCR'd in one file; the rest of a longer scan is left out, and said so
    ignore_patterns: list[str] = field(default_factory=lambda: list(DEFAULT_IGNORE))
    rrf_k: int = 10  # tuned on the SciFact train split (bench/scifact.py --tune)
    keyword_weight: float = 0.85
    vector_weight: float = 1.0
    # The local query log (core/querylog.py, docs/observability.md); nothing leaves the machine.
    log_queries: bool = True
    log_question_text: bool = True  # off: the log keeps timings and scores, never the words asked
    log_retention_days: int = 90  # 0 keeps everything
    # OpenAI-compatible servers tried before the local model, in order (core/fallback.py documents the keys);
    # their API keys live in the key store (core/keys.py), never here.
    answer_servers: list[dict] = field(default_factory=list)
    answer_cache: bool = True  # answer repeated and near-duplicate questions from core/answer_cache.py

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or paths.settings_path()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as err:
            # A damaged settings file must not stop the app; defaults are a safe start.
            log.warning("%s cannot be read (%s); using the default settings", path, err)
            return cls()
        if not isinstance(raw, dict):
            log.warning("%s does not hold settings (a JSON object); using the default settings", path)
            return cls()
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in raw.items():
            if key in known:
                default = getattr(cls(), key)
                if isinstance(default, bool | int | float | str | list) and not isinstance(
                    value, type(default)
                ):
                    if isinstance(default, float) and isinstance(value, int):
                        value = float(value)
                    else:
                        kind = type(default).__name__
                        log.warning("%s: %s = %r is not a %s; using the default", path, key, value, kind)
                        continue
                if key in RANGES and not RANGES[key][0] <= value <= RANGES[key][1]:
                    low, high = RANGES[key]
                    log.warning(
                        "%s: %s = %r is outside %g to %g; using the default, %r",
                        path, key, value, low, high, getattr(cls(), key),
                    )
                    continue
                values[key] = value
        tokens = values.get("chunk_tokens", cls.chunk_tokens)
        if values.get("chunk_overlap", cls.chunk_overlap) >= tokens:
            overlap = min(cls.chunk_overlap, tokens // 4)
            log.warning("%s: chunk_overlap must be below chunk_tokens (%d); using %d", path, tokens, overlap)
            values["chunk_overlap"] = overlap
        if "ignore_patterns" in values:
            patterns = values["ignore_patterns"]
            values["ignore_patterns"] = [
                p for p in patterns if isinstance(p, str) and p.strip() not in _FORMER_SECRET_DEFAULTS
            ]
        return cls(**values)

    def save(self, path: Path | None = None) -> None:
        path = path or paths.settings_path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a crash never leaves half a settings file
