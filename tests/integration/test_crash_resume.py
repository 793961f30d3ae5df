"""`kill -9` in the middle of indexing, then a re-run: a consistent index that resumes where it stopped.

Uses the real CLI, the real bundled embedding model, SQLite + FTS5 + sqlite-vec.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import apsw
import pytest
from indexcheck import problems
from pdfgen import make_pdf

pytestmark = pytest.mark.slow

WORDS = "river mountain lantern harbor meadow orchard glacier canyon prairie tundra".split()


def make_library(root, n_files=80):
    root.mkdir()
    for i in range(n_files):
        body = " ".join(f"{WORDS[(i + j) % 10]}{j % 7}" for j in range(260))
        (root / f"note{i:03}.txt").write_text(f"Note {i}.\n\n{body}\n")
    (root / "manual.pdf").write_bytes(make_pdf([[f"Page {p} about lanterns."] for p in range(1, 6)]))


def almanac(data_dir, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "almanac.cli.main", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read(db, sql):
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wait_for(db, sql, predicate, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        if db.exists():
            try:
                if predicate(read(db, sql)[0][0]):
                    return
            except apsw.Error:
                pass  # schema not there yet
        time.sleep(0.05)
    raise AssertionError("indexing never reached the state to interrupt")


def check(db):
    from almanac.core import db as core_db

    conn = core_db.open_reader(db)
    try:
        return problems(conn)
    finally:
        conn.close()


def test_kill_during_extraction_and_during_embedding(tmp_path):
    lib, data = tmp_path / "lib", tmp_path / "data"
    make_library(lib)
    db = data / "almanac.db"

    # 1. killed while files are still being read
    proc = almanac(data, "index", str(lib))
    wait_for(db, "SELECT count(*) FROM documents", lambda n: n >= 5, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert check(db) == []
    n_docs_first = read(db, "SELECT count(*) FROM documents")[0][0]
    assert n_docs_first < 81, "killed too late to test anything"
    kept = read(db, "SELECT group_concat(id) FROM chunks")[0][0]

    # 2. re-run, killed while embedding
    proc = almanac(data, "index")
    wait_for(db, "SELECT count(*) FROM chunks WHERE embedded = 1", lambda n: n >= 10, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert check(db) == []
    pending = read(db, "SELECT count(*) FROM chunks WHERE embedded = 0")[0][0]
    assert pending > 0, "killed too late to test anything"
    # what the first run wrote was kept, not redone
    assert set(kept.split(",")) <= {str(r[0]) for r in read(db, "SELECT id FROM chunks")}

    # 3. final run completes the work
    proc = almanac(data, "index")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    assert check(db) == []
    docs = read(db, "SELECT count(*), count(DISTINCT path) FROM documents WHERE status = 'indexed'")[0]
    assert docs == (81, 81)
    assert read(db, "SELECT count(*) FROM chunks WHERE embedded = 0")[0][0] == 0
