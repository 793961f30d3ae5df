"""Shared helpers for benchmarks: where the evaluation data is, caches, and table printing."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = Path(os.environ.get("ALMANAC_EVAL", ROOT.parent / "shared" / "eval"))


def eval_dir(sub: str) -> Path:
    """The evaluation data folder, or exit cleanly (status 0) when it is absent."""
    path = EVAL / sub
    if not path.exists():
        print(f"SKIP: evaluation data not found at {path} (set ALMANAC_EVAL)")
        sys.exit(0)
    return path


def cache_dir(name: str) -> Path:
    """Work files (generated corpora, indexes) live outside the repository: eval data must never land in it."""
    base = Path(os.environ.get("ALMANAC_BENCH_CACHE", Path.home() / ".cache" / "almanac-bench"))
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
