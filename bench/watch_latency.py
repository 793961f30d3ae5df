"""How fast the index follows the file system.

    .venv/bin/python -m bench.watch_latency            # fast fake embedder (hashed words), 10,000 files
    .venv/bin/python -m bench.watch_latency --real     # the bundled all-MiniLM-L6-v2 on this machine's CPU

1. Save -> searchable: a writer loop exactly like `almanac watch` (FolderWatcher defaults: 1.0 s debounce,
   0.5 s settle, applied every 0.2 s, then embedded) runs on the main thread; a reader thread with its own
   connection polls every 5 ms. For a new file, an overwritten file and an editor-style atomic save, it
   records when the saved words are keyword-searchable and when every chunk of the file has its vector.
2. Start-up reconciliation of an unchanged library: index N files once, reopen the library as at start-up,
   then time `lib.index()` (scan + stat of every file, nothing to embed) and `FolderWatcher.start()`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from almanac.core import db
from almanac.core.embedding import HashEmbedder
from almanac.core.library import Library
from almanac.core.settings import Settings
from almanac.core.watch import TICK_S, FolderWatcher

WORDS = "garden tomato basil river mountain paper ledger lantern copper violin harbor meadow".split()


def make_embedder(real: bool):
    if not real:
        return HashEmbedder()
    from almanac.core.embedding import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder()
    e.load()
    return e


def text_for(i: int, marker: str = "") -> str:
    words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(60))
    return f"# Note {i}\n\n{marker} {words}\n\nSecond paragraph of note {i}: {words}\n"


# --- 1. save -> searchable ------------------------------------------------------------------------------------


class Reader(threading.Thread):
    """Polls from its own connection, like the GUI's search: when does `word` become visible?"""

    def __init__(self, db_path: Path) -> None:
        super().__init__(daemon=True)
        self.db_path = db_path
        self.lock = threading.Lock()
        self.word = ""
        self.path = ""
        self.keyword_at: float | None = None
        self.vector_at: float | None = None
        self.stop = threading.Event()

    def expect(self, word: str, path: str) -> None:
        with self.lock:
            self.word, self.path, self.keyword_at, self.vector_at = word, path, None, None

    def run(self) -> None:
        conn = db.open_reader(self.db_path)
        while not self.stop.is_set():
            with self.lock:
                word, path, done = self.word, self.path, self.vector_at is not None
            if word and not done:
                now = time.perf_counter()
                hit = conn.execute(
                    "SELECT c.document_id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid"
                    " JOIN documents d ON d.id = c.document_id WHERE chunks_fts MATCH ? AND d.path = ? LIMIT 1",
                    (f'"{word}"', path),
                ).fetchone()
                with self.lock:
                    if hit and self.keyword_at is None and self.word == word:
                        self.keyword_at = now
                    if hit and self.keyword_at is not None:
                        pending = conn.execute(
                            "SELECT count(*) FROM chunks WHERE document_id = ? AND embedded = 0", (hit[0],)
                        ).fetchone()[0]
                        if pending == 0 and self.word == word:
                            self.vector_at = now
            time.sleep(0.005)
        conn.close()


def save_plain(target: Path, text: str) -> None:
    target.write_text(text)


def save_atomic(target: Path, text: str) -> None:
    """As editors do: write a temp file, then rename it over the target."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, target)


def measure_latency(work: Path, embedder, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    folder = work / "latency"
    folder.mkdir()
    for i in range(50):
        (folder / f"old-{i}.md").write_text(text_for(i))
    (folder / "existing.md").write_text(text_for(0))
    (folder / "atomic.md").write_text(text_for(1))
    lib = Library(work / "latency.db", settings=Settings(), embedder=embedder)
    lib.add_folder(folder)
    lib.index()
    watcher = FolderWatcher(lib.folders(), lib.indexer.rules_for)  # the defaults `almanac watch` uses
    watcher.start()
    reader = Reader(lib.db_path)
    reader.start()
    results: dict[str, tuple[list[float], list[float]]] = {}
    try:
        kinds = (
            ("new file", save_plain, "new-{}.md"),
            ("overwrite", save_plain, "existing.md"),
            ("atomic save", save_atomic, "atomic.md"),
        )
        for name, save, target_name in kinds:
            kw, vec = [], []
            for r in range(rounds):
                word = f"zq{name[:3]}{r}x"
                target = folder / target_name.format(r)
                reader.expect(word, str(target))
                saved = time.perf_counter()
                save(target, text_for(1000 + r, word))
                deadline = saved + 30
                while time.perf_counter() < deadline:  # the writer loop of `almanac watch`
                    watcher.apply_ready(lib, embed=True)
                    with reader.lock:
                        if reader.vector_at is not None:
                            break
                    time.sleep(TICK_S)
                time.sleep(0.02)
                with reader.lock:
                    if reader.keyword_at is None or reader.vector_at is None:
                        raise SystemExit(f"{name}: not searchable within 30 s")
                    kw.append(reader.keyword_at - saved)
                    vec.append(reader.vector_at - saved)
                time.sleep(0.3)
            results[name] = (kw, vec)
    finally:
        reader.stop.set()
        reader.join()
        watcher.stop()
        lib.close()
    return results


# --- 2. start-up reconciliation -------------------------------------------------------------------------------


def measure_reconcile(
    work: Path, embedder, n_files: int, rounds: int
) -> tuple[float, list[float], list[float]]:
    folder = work / "library"
    per_dir = 100
    for i in range(n_files):
        d = folder / f"d{i // per_dir:03d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        (d / f"note-{i:05d}.md").write_text(text_for(i, f"unique{i}"))
    db_path = work / "library.db"
    with Library(db_path, settings=Settings(), embedder=embedder) as lib:
        lib.add_folder(folder)
        started = time.perf_counter()
        report = lib.index()
        first = time.perf_counter() - started
        assert report.indexed == n_files, report
    scans, watches = [], []
    for _ in range(rounds):
        with Library(db_path, settings=Settings(), embedder=embedder) as lib:  # as at start-up
            watcher = FolderWatcher(lib.folders(), lib.indexer.rules_for)
            started = time.perf_counter()
            watcher.start()
            watches.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = lib.index()
            scans.append(time.perf_counter() - started)
            watcher.stop()
            assert report.indexed == 0 and report.unchanged == n_files, report
    return first, scans, watches


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} ms  (max {max(values) * 1000:.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", action="store_true", help="use the bundled embedding model instead of the fake")
    ap.add_argument("--files", type=int, default=10_000, help="library size for the reconciliation (10000)")
    ap.add_argument("--rounds", type=int, default=5, help="saves per kind, and reconciliation runs (5)")
    args = ap.parse_args()
    embedder = make_embedder(args.real)
    label = "all-MiniLM-L6-v2 (CPU)" if args.real else "fake hash embedder"
    with tempfile.TemporaryDirectory(prefix="almanac-bench-") as tmp:
        os.environ["ALMANAC_HOME"] = str(Path(tmp) / "home")  # never the user's data directory
        work = Path(tmp)
        latency = measure_latency(work, embedder, args.rounds)
        first, scans, watches = measure_reconcile(work, embedder, args.files, min(args.rounds, 3))
    print(f"\nembedder: {label}; debounce 1.0 s, settle 0.5 s, loop every {TICK_S} s; {os.cpu_count()} CPUs")
    print(f"\n{'save -> searchable':<28}{'keyword (median)':>30}{'with vectors (median)':>34}")
    for name, (kw, vec) in latency.items():
        print(f"{name:<28}{ms(kw):>30}{ms(vec):>34}")
    print(f"\n{'start-up, ' + format(args.files, ',') + ' unchanged files':<40}{'median':>26}")
    print(f"{'reconcile (lib.index())':<40}{ms(scans):>26}")
    print(f"{'start watching (FolderWatcher.start())':<40}{ms(watches):>26}")
    print(f"{'(first full index, for scale)':<40}{first * 1000:>12.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
