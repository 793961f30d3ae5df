"""Small helpers the performance benchmarks share: percentiles, CPU time, memory, headers, subsets.

Every benchmark reports ratios to a baseline measured in the same run, because the machines these run on are
often shared: absolute figures move with the neighbours' load, ratios much less.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .common import cache_dir, eval_dir, machine

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def header(title: str) -> str:
    """The first line of every benchmark's output: what, when, where, and how busy the machine was."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"\n## {title}\n{datetime.now():%Y-%m-%d %H:%M} · {machine()} · load avg {load:.1f} at start"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


@dataclass
class Clock:
    """Wall time and CPU time (this process and its reaped children) of one block."""

    wall: float = 0.0
    cpu: float = 0.0


def _cpu_now() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _live_children_cpu() -> float:
    """CPU seconds of children still running (the extraction worker lives across files)."""
    try:
        import psutil
    except ImportError:
        return 0.0
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


@contextmanager
def clock() -> Iterator[Clock]:
    c = Clock()
    wall, cpu, kids = time.perf_counter(), _cpu_now(), _live_children_cpu()
    try:
        yield c
    finally:
        c.wall = time.perf_counter() - wall
        # A child that exited inside the block moves from "live" to RUSAGE_CHILDREN: never below zero.
        c.cpu = max(0.0, _cpu_now() - cpu + _live_children_cpu() - kids)


def peak_rss_mb() -> float:
    """Peak resident set of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- evaluation data ------------------------------------------------------------------------------------


def scifact_docs(limit: int | None = None) -> list[dict]:
    """SciFact corpus documents in file order ({"_id", "title", "text"}); exits with SKIP when absent."""
    docs = []
    with (eval_dir("scifact") / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            docs.append(json.loads(line))
            if limit is not None and len(docs) >= limit:
                break
    return docs


def scifact_queries(split: str = "test", limit: int | None = None) -> list[str]:
    """Query texts of a split, in qrels order (held out from any corpus text)."""
    root = eval_dir("scifact")
    texts = {}
    for line in (root / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        texts[q["_id"]] = q["text"]
    ids: list[str] = []
    for line in (root / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        qid = line.split("\t")[0]
        if qid not in ids:
            ids.append(qid)
    out = [texts[q] for q in ids]
    return out[:limit] if limit else out


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def scifact_subset_folder(n: int) -> Path:
    """A folder (outside the repository) holding the first `n` SciFact documents, one file each.

    Same file format as bench/scifact.py ("title", blank line, abstract), so results are comparable.
    """
    eval_dir("scifact")  # skip cleanly when the eval data is absent, even with a cached copy
    folder = cache_dir("perf") / f"scifact-{n}"
    done = folder / ".complete"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for d in scifact_docs(n):
            (folder / f"{d['_id']}.txt").write_text(f"{d['title']}\n\n{d['text']}\n", encoding="utf-8")
        done.write_text("")
    return folder


def docs_subset_folder(name: str, keep) -> Path:
    """A copy (outside the repository) of the eval docs whose relative path passes `keep(relpath)`."""
    src = eval_dir("docs")
    folder = cache_dir("perf") / name
    done = folder / ".complete"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src).as_posix()
            if path.is_file() and keep(rel):
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        done.write_text("")
    return folder
