"""One writer per index across processes, and readers that cannot write: tested with real second processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import apsw
import pytest
from almanac.core import db
from almanac.core.errors import AlmanacError, IndexInUseError
from almanac.core.library import Library
from almanac.core.settings import Settings

HOLD_WRITER = textwrap.dedent(
    """
    import sys
    from almanac.core.embedding import HashEmbedder
    from almanac.core.library import Library
    from almanac.core.settings import Settings

    lib = Library(sys.argv[1], settings=Settings(), embedder=HashEmbedder())
    lib.add_folder(sys.argv[2])
    print("ready", flush=True)
    sys.stdin.read()  # hold the library until the test closes our stdin (or kills us)
    lib.close()
    """
)


@pytest.fixture
def writer_process(tmp_path):
    """Another process that has the library at tmp_path/data/almanac.db open for writing."""
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("Lighthouses guide ships along the coast at night.\n")
    db_path = tmp_path / "data" / "almanac.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(db_path), str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    line = proc.stdout.readline()
    assert line.strip() == b"ready", proc.stderr.read().decode()
    yield proc, db_path, folder
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_writer_process_is_refused_with_a_message_naming_the_first(writer_process, hash_embedder):
    proc, db_path, _ = writer_process
    with pytest.raises(IndexInUseError) as refused:
        Library(db_path, settings=Settings(), embedder=hash_embedder)
    message = str(refused.value)
    assert "Another Almanac is already using the library" in message
    assert f"process {proc.pid}" in message
    assert isinstance(refused.value, AlmanacError)  # shown to the user as is, not as a crash


def test_a_read_only_library_works_beside_a_writer_and_cannot_write(writer_process, hash_embedder, tmp_path):
    _, db_path, folder = writer_process
    with Library(db_path, settings=Settings(), embedder=hash_embedder, read_only=True) as lib:
        assert [f.path for f in lib.folders()] == [str(folder)]
        assert lib.status().documents == 0
        with pytest.raises(AlmanacError, match="read-only"):
            lib.add_folder(tmp_path)
        with pytest.raises(AlmanacError, match="read-only"):
            lib.index()
        with pytest.raises(apsw.ReadOnlyError):  # query_only: not even a stray write gets through
            lib.conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")


def test_a_killed_writer_leaves_no_stale_lock(writer_process, hash_embedder):
    proc, db_path, folder = writer_process
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Library(db_path, settings=Settings(), embedder=hash_embedder) as lib:
        assert [f.path for f in lib.folders()] == [str(folder)]


def test_two_writers_in_one_process_are_refused_too_and_closing_frees_the_index(tmp_path, hash_embedder):
    db_path = tmp_path / "i.db"
    first = Library(db_path, settings=Settings(), embedder=hash_embedder, owner="almanac index")
    with pytest.raises(IndexInUseError, match=rf"\(process {os.getpid()}: almanac index\)"):
        Library(db_path, settings=Settings(), embedder=hash_embedder)
    first.close()
    Library(db_path, settings=Settings(), embedder=hash_embedder).close()


def test_readers_are_query_only_and_never_migrate_under_a_writer(tmp_path):
    db_path = tmp_path / "i.db"
    conn = db.open_reader(db_path)  # a new index: set up by a short-lived writer under the lock, then read
    try:
        assert db.schema_version(conn) == len(db.MIGRATIONS)
        with pytest.raises(apsw.ReadOnlyError):
            conn.execute("CREATE TABLE t(x)")
        with pytest.raises(apsw.ReadOnlyError):
            conn.execute("PRAGMA user_version = 0")
    finally:
        conn.close()


def test_cli_index_is_refused_while_another_writer_runs_but_status_works(writer_process):
    proc, db_path, folder = writer_process
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cli = [sys.executable, "-m", "almanac.cli.main", "--data-dir", str(db_path.parent)]
    index = subprocess.run([*cli, "index", str(folder)], capture_output=True, text=True, env=env, timeout=120)
    assert index.returncode not in (0, 70), index.stderr  # 70 would be "internal error ... a bug"
    assert "Another Almanac is already using the library" in index.stderr
    assert f"process {proc.pid}" in index.stderr
    status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert status.returncode == 0, status.stderr
    assert str(folder) in status.stdout


def test_a_reader_of_an_index_not_set_up_yet_waits_for_the_writer_that_holds_it(tmp_path, monkeypatch):
    import threading

    from almanac.core.writer_lock import WriterLock

    db_path = tmp_path / "new.db"
    lock = WriterLock(db_path, "the Almanac app")
    lock.acquire()  # a writer is starting: it holds the lock and is about to migrate
    try:
        threading.Timer(0.5, lambda: db.open_writer(db_path).close()).start()
        conn = db.open_reader(db_path)  # neither migrates itself nor fails: it waits for the writer
        assert db.schema_version(conn) == len(db.MIGRATIONS)
        conn.close()

        monkeypatch.setattr(db, "READER_WAIT_S", 0.3)
        other = tmp_path / "other.db"
        other_lock = WriterLock(other, "almanac index")
        other_lock.acquire()  # a writer that never migrates (an older Almanac, say)
        try:
            with pytest.raises(IndexInUseError, match="almanac index"):
                db.open_reader(other)
        finally:
            other_lock.release()
    finally:
        lock.release()


def test_a_reader_of_an_index_from_a_newer_almanac_says_so(tmp_path):
    db_path = tmp_path / "i.db"
    conn = db.open_writer(db_path)
    conn.execute(f"PRAGMA user_version = {len(db.MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(AlmanacError, match="newer Almanac"):
        db.open_reader(db_path)
