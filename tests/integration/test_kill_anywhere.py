"""`kill -9` at 20 random moments of indexing: after every kill the index is consistent, the next run resumes,
and the final index is exactly what a clean run makes.

Each run is a child process (index_child.py) that opens a Library (real SQLite + FTS5 + sqlite-vec, the real
extraction child) and indexes one folder. Between kills a few files change, so every run has real work to
interrupt: reading, chunking, deleting, embedding. The moment of each kill is random (the seed is printed,
and can be fixed with ALMANAC_KILL_SEED to replay a failure).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from almanac.core import db as core_db
from almanac.core import store
from indexcheck import problems
from pdfgen import make_pdf

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("index_child.py")
WORDS = "river mountain lantern harbor meadow orchard glacier canyon prairie tundra delta summit".split()
KILLS = 20


def write_note(path: Path, rng: random.Random) -> None:
    body = " ".join(f"{rng.choice(WORDS)}{rng.randrange(50)}" for _ in range(rng.randrange(200, 900)))
    path.write_text(f"# {path.stem}\n\n{body}\n", encoding="utf-8")


def make_library(root: Path, rng: random.Random) -> None:
    root.mkdir()
    for i in range(60):
        write_note(root / f"note{i:03}.md", rng)
    (root / "manual.pdf").write_bytes(make_pdf([[f"Page {p} about lanterns and harbors."] for p in range(1, 6)]))


def change_some(root: Path, rng: random.Random) -> None:
    """Edit, delete, add and rename files, as a user would between two runs: every run has work to cut."""
    notes = sorted(root.glob("*.md"))
    for path in rng.sample(notes, 20):
        write_note(path, rng)
    rng.choice(notes).unlink()
    write_note(root / f"new{rng.randrange(10**6):06}.md", rng)
    survivor = rng.choice(sorted(root.glob("*.md")))
    survivor.rename(survivor.with_name(f"renamed{rng.randrange(10**6):06}.md"))


def run_child(db: Path, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_until_indexing(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == b"indexing", proc.stderr.read().decode()


def run_to_end(db: Path, folder: Path) -> float:
    """Run one child to its end; returns how long its indexing took."""
    proc = run_child(db, folder)
    wait_until_indexing(proc)
    started = time.monotonic()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - started


def stale(db_state: dict, folder: Path) -> bool:
    """Some file on disk is not in the index as it is now: the kill came before reading was done."""
    indexed = {path: digest for path, status, digest, *_ in db_state["documents"]}
    return any(indexed.get(str(p)) != store.content_hash(p.read_bytes()) for p in folder.iterdir())


def snapshot(db: Path) -> dict:
    """What the index holds, independent of row ids (a clean run numbers rows differently)."""
    conn = core_db.open_reader(db)
    try:
        docs = conn.execute(
            "SELECT path, status, content_hash, kind, title, coalesce(error, '') FROM documents ORDER BY path"
        ).fetchall()
        chunks = conn.execute(
            "SELECT d.path, c.ord, c.page, c.heading, c.start, c.end, c.text, c.embedded"
            " FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY d.path, c.ord"
        ).fetchall()
        vectors = []
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'vec_chunks'").fetchone():  # made at embedding
            vectors = conn.execute(
                "SELECT d.path, c.ord, v.embedding FROM chunks c JOIN documents d ON d.id = c.document_id"
                " JOIN vec_chunks v ON v.rowid = c.id ORDER BY d.path, c.ord"
            ).fetchall()
        trouble = problems(conn)
        orphans = conn.execute(
            "SELECT count(*) FROM documents WHERE folder_id NOT IN (SELECT id FROM folders)"
        ).fetchone()[0]
        if orphans:
            trouble.append(f"{orphans} documents without a library folder")
        return {"documents": docs, "chunks": chunks, "vectors": vectors, "problems": trouble}
    finally:
        conn.close()


def test_sigkill_at_twenty_random_moments_then_the_same_index_as_a_clean_run(tmp_path):
    seed = int(os.environ.get("ALMANAC_KILL_SEED", random.randrange(10**6)))
    print(f"ALMANAC_KILL_SEED={seed}")
    rng = random.Random(seed)
    folder, db = tmp_path / "library", tmp_path / "data" / "almanac.db"
    make_library(folder, rng)

    # How long indexing a third of the files takes here (what each run below has to do), so the kills
    # spread over reading, chunking, deleting and embedding.
    window = run_to_end(tmp_path / "calibrate" / "almanac.db", folder) / 2

    kills = in_reading = in_embedding = 0
    for _ in range(3 * KILLS):
        if kills == KILLS:
            break
        proc = run_child(db, folder)
        wait_until_indexing(proc)
        time.sleep(rng.uniform(0.0, window))
        if proc.poll() is None:  # still indexing: this is one of the twenty
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        state = snapshot(db)
        assert state["problems"] == [], f"seed {seed}"
        assert len({path for path, *_ in state["documents"]}) == len(state["documents"])
        if proc.returncode == -signal.SIGKILL:
            if stale(state, folder):
                in_reading += 1
            elif any(row[-1] == 0 for row in state["chunks"]):
                in_embedding += 1
        change_some(folder, rng)
    print(f"{kills} kills: {in_reading} while reading files, {in_embedding} while embedding")
    assert kills == KILLS, f"only {kills} runs were still indexing when their kill came"
    assert in_reading and in_embedding, (in_reading, in_embedding)

    run_to_end(db, folder)  # resumes: the writer lock of the killed runs is gone with them
    clean = tmp_path / "clean" / "almanac.db"
    run_to_end(clean, folder)
    got, want = snapshot(db), snapshot(clean)
    assert got["problems"] == [] and want["problems"] == []
    assert got["documents"] == want["documents"]
    assert got["chunks"] == want["chunks"]
    assert all(row[-1] == 1 for row in got["chunks"])  # everything embedded
    assert got["vectors"] == want["vectors"]
