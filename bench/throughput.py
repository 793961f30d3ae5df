"""Indexing throughput: the real pipeline against raw SentenceTransformer.encode on the same chunk texts.

    .venv/bin/python -m bench.throughput [--quick | --full] [--profile]

For each corpus, in one process: a fresh library runs phase 1 (`sync`: scan, extract, chunk, FTS); the exact
chunk texts it produced are read back from the chunks table; then the baseline, a separately loaded
`SentenceTransformer` doing `encode(texts, batch_size=32, normalize_embeddings=True)`, encodes the even-numbered
texts, phase 2 (`embed_pending`: vectors) runs, and the baseline encodes the odd-numbered texts (bracketing
phase 2 cancels a steady drift in the neighbours' load). Model loading is excluded from both and reported on its own.
Ratios are given on wall time and on CPU time (this process and its children); CPU time is the steadier one
on a shared machine. Target: the pipeline reaches at least 0.9 of raw model throughput (end to end).

Corpora (copied to a cache folder outside the repository; the eval data is never copied into it):
  default  eval docs without the 4 largest files (43 files) + the first 300 SciFact abstracts
  --quick  eval docs' Markdown and LuaJIT HTML + the Bitcoin PDF (32 files) + the first 100 abstracts
  --full   all 46 eval docs + all 5,183 abstracts (about an hour on 2 cores)
Always: phase 1 alone on all 46 eval docs (the 214-page PDF included), with the slowest files, and the time to
re-check an unchanged library per 1,000 files on all 5,183 SciFact files (skipped with --quick), each against
the raw baseline of walking the folder and stat()ing every file. `--profile` adds cProfile tops of both phases.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from pathlib import Path

from almanac.core.embedding import SentenceTransformerEmbedder, bundled_model_path
from almanac.core.indexer import Progress
from almanac.core.library import Library
from almanac.core.settings import Settings

from .common import eval_dir, table
from .util import clock, docs_subset_folder, header, pct, ratio, scifact_subset_folder

LARGEST = (
    "text/gutenberg-158-emma-austen.txt",
    "pdf/bash-reference-manual.pdf",
    "pdf/think-python-2e.pdf",
    "html/bash-manpage.html",
)
TARGET = 0.9


def docs_folder(variant: str) -> Path:
    if variant == "full":
        return eval_dir("docs")
    if variant == "quick":
        return docs_subset_folder(
            "docs-quick",
            lambda rel: rel.startswith("markdown/")
            or (rel.startswith("html/luajit")) or rel == "pdf/bitcoin-whitepaper.pdf",
        )
    return docs_subset_folder("docs-default", lambda rel: rel not in LARGEST)


class FileTimer:
    """Progress callback that notes how long phase 1 spent on each file."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.since = 0.0
        self.per_file: dict[str, float] = {}

    def __call__(self, p: Progress) -> None:
        now = time.perf_counter()
        if self.current:
            self.per_file[self.current] = self.per_file.get(self.current, 0.0) + now - self.since
        self.current = p.current or None
        self.since = now


def profile_top(prof: cProfile.Profile, n: int = 14) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(n)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    return "\n".join(lines[start : start + n + 1])


def index_corpus(folder: Path, db: Path, embedder, raw_model, profile: bool) -> dict:
    """Phase 1, then the raw baseline on half the chunk texts, phase 2, and the baseline on the other half.

    Bracketing phase 2 between the two halves of the baseline cancels a steady drift in the neighbours' load.
    """
    settings = Settings()
    timer = FileTimer()
    profs = (cProfile.Profile(), cProfile.Profile()) if profile else None
    with Library(db, settings=settings, embedder=embedder) as lib:
        lib.add_folder(folder)
        with clock() as sync_c:
            if profs:
                profs[0].enable()
            report = lib.indexer.sync(progress=timer)
            if profs:
                profs[0].disable()
        texts = [r[0] for r in lib.conn.execute("SELECT text FROM chunks ORDER BY id")]
        raw_a = raw_encode(raw_model, texts[0::2])
        with clock() as embed_c:
            if profs:
                profs[1].enable()
            embedded = lib.indexer.embed_pending()
            if profs:
                profs[1].disable()
        raw_b = raw_encode(raw_model, texts[1::2])
        lib.index()  # warm-up of the re-check path
        recheck, walks = [], []
        for _ in range(5):
            walks.append(walk_stat(folder))
            with clock() as again:
                r = lib.index()
            recheck.append(again.wall)
        assert r.indexed == 0 and r.deleted == 0, "re-check found changes"
    return {
        "files": report.indexed,
        "failed": report.failed,
        "chunks": len(texts),
        "embedded": embedded,
        "texts": texts,
        "sync": sync_c,
        "embed": embed_c,
        "raw_wall": raw_a.wall + raw_b.wall,
        "raw_cpu": raw_a.cpu + raw_b.cpu,
        "per_file": timer.per_file,
        "recheck": recheck,
        "walks": walks,
        "profiles": profs,
    }


def raw_encode(model, texts: list[str]):
    with clock() as c:
        model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    return c


def walk_stat(folder: Path) -> float:
    """The least any re-check can do: list the tree and stat() every file."""
    start = time.perf_counter()
    n = 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            os.stat(os.path.join(root, f))
            n += 1
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small subsets (about 3 minutes)")
    g.add_argument("--full", action="store_true", help="all 46 docs and all 5,183 SciFact abstracts (about an hour)")
    p.add_argument("--profile", action="store_true", help="print cProfile tops of sync and embed_pending")
    args = p.parse_args()
    variant = "quick" if args.quick else "full" if args.full else "default"
    n_scifact = {"quick": 100, "default": 300, "full": 5183}[variant]
    corpora = [(f"eval docs ({variant})", docs_folder(variant)), (f"SciFact first {n_scifact}", scifact_subset_folder(n_scifact))]
    all_docs = eval_dir("docs")
    recheck_folder = None if args.quick else scifact_subset_folder(5183)

    print(header("Indexing throughput (bench/throughput.py)"))
    from sentence_transformers import SentenceTransformer

    embedder = SentenceTransformerEmbedder()
    with clock() as load_c:
        embedder.load()
    raw_model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    raw_model.encode(["warm up"], batch_size=32)
    embedder.embed(["warm up"])

    rows, ratio_rows, recheck_rows, tops = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="almanac-throughput-") as tmp:
        for name, folder in corpora:
            r = index_corpus(folder, Path(tmp) / f"{len(rows)}.db", embedder, raw_model, args.profile)
            n, f = r["chunks"], r["files"]
            total_wall = r["sync"].wall + r["embed"].wall
            total_cpu = r["sync"].cpu + r["embed"].cpu
            rows.append([name, f, n, r["sync"].wall, r["embed"].wall, f / total_wall, n / total_wall, n / r["raw_wall"]])
            ratio_rows.append([
                name,
                ratio(r["raw_wall"], total_wall),
                ratio(r["raw_wall"], r["embed"].wall),
                ratio(r["raw_cpu"], total_cpu),
                ratio(r["raw_cpu"], r["embed"].cpu),
                ratio(r["sync"].wall, total_wall),
                len(set(r["texts"])),
            ])
            t, w = pct(r["recheck"], 50), pct(r["walks"], 50)
            recheck_rows.append([name, f, t * 1000, t / f * 1e6, w / f * 1e6, ratio(t, w)])
            if args.profile:
                tops.append((name, r["profiles"]))
            print(f"  done: {name}", flush=True)

        # Phase 1 alone on every eval doc, the big PDF included: what extraction and chunking cost.
        with Library(Path(tmp) / "sync.db", settings=Settings(), embedder=embedder) as lib:
            lib.add_folder(all_docs)
            timer = FileTimer()
            with clock() as c:
                rep = lib.indexer.sync(progress=timer)
            chunks = lib.status().chunks
        slow = sorted(timer.per_file.items(), key=lambda kv: -kv[1])[:5]
        sync_row = [rep.indexed, chunks, c.wall, rep.indexed / c.wall, chunks / c.wall]

        if recheck_folder is not None:
            with Library(Path(tmp) / "recheck.db", settings=Settings(), embedder=embedder) as lib:
                lib.add_folder(recheck_folder)
                with clock() as c1:
                    first = lib.indexer.sync()
                times, walks = [], []
                for _ in range(5):
                    walks.append(walk_stat(recheck_folder))
                    with clock() as c2:
                        again = lib.indexer.sync()
                    times.append(c2.wall)
                assert again.indexed == 0 and again.unchanged == first.scanned
            t, w = pct(times, 50), pct(walks, 50)
            recheck_rows.append([f"SciFact all, sync only (first sync {c1.wall:.0f} s)", first.indexed, t * 1000,
                                 t / first.indexed * 1e6, w / first.indexed * 1e6, ratio(t, w)])
            walk_line = ""
        else:
            walk_line = "(re-check of all 5,183 SciFact files skipped with --quick)"

    print(f"model load {load_c.wall:.1f} s (excluded from all rates below)")
    print(table(["corpus", "files", "chunks", "sync s", "embed s", "files/s", "chunks/s", "raw encode chunks/s"], rows))
    print(f"\npipeline throughput as a fraction of raw encode (target >= {TARGET}):")
    print(table(["corpus", "end-to-end (wall)", "embed phase (wall)", "end-to-end (CPU)", "embed phase (CPU)",
                 "sync share of wall", "unique chunk texts"], ratio_rows))
    print("\nphase 1 alone on all 46 eval docs:")
    print(table(["files", "chunks", "sync s", "files/s", "chunks/s"], [sync_row]))
    print("slowest files in phase 1: " + ", ".join(f"{Path(k).name} {v:.1f} s" for k, v in slow))
    print("\nre-check of an unchanged library (Library.index(): scan, stat, empty embed queue; median of 5):")
    print(table(["library", "files", "ms", "ms per 1,000 files", "walk+stat baseline ms per 1,000", "ratio"],
                recheck_rows))
    if walk_line:
        print(walk_line)
    for name, (sync_prof, embed_prof) in tops:
        print(f"\ncProfile, {name}, phase 1 (sync), by cumulative time:\n{profile_top(sync_prof)}")
        print(f"\ncProfile, {name}, phase 2 (embed_pending), by cumulative time:\n{profile_top(embed_prof)}")


if __name__ == "__main__":
    main()
