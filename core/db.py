"""The one SQLite file: connections, versioned schema, and error translation.

apsw ships its own SQLite with extension loading (the system Python may lack it), so sqlite-vec always loads.
One writer connection does all indexing, in one process at a time (`writer_lock`); every reader opens its own
`query_only` connection (WAL lets them run together).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw
import sqlite_vec

from .errors import DatabaseError, IndexInUseError
from .writer_lock import WriterLock

# Readers map the file rather than copy each page through read(): a graph search reads thousands of them.
# Address space only (pages stay in the OS cache either way); the writer keeps a small map.
READER_MMAP = 1 << 36
WRITER_MMAP = 1 << 28
READER_WAIT_S = 10.0  # a reader waits this long for the writer holding the index to bring its schema up

# Environment failures the user can act on; anything else from SQLite is a bug.
_KNOWN = (
    apsw.BusyError,
    apsw.LockedError,
    apsw.ReadOnlyError,
    apsw.IOError,
    apsw.FullError,
    apsw.CorruptError,
    apsw.NotADBError,
    apsw.CantOpenError,
    apsw.PermissionsError,
)


def describe(err: BaseException, path: Path | str) -> str:
    if isinstance(err, apsw.FullError):
        return f"The disk is full: cannot write to the index at {path}."
    if isinstance(err, apsw.BusyError | apsw.LockedError):
        return f"The index at {path} is locked by another program (is Almanac already running?)."
    if isinstance(err, apsw.ReadOnlyError | apsw.PermissionsError):
        return f"The index at {path} is read-only: check the folder's permissions."
    if isinstance(err, apsw.CorruptError | apsw.NotADBError):
        return f"The index at {path} is damaged. Move it aside and Almanac will build a new one."
    if isinstance(err, apsw.CantOpenError):
        return f"Cannot open the index at {path}: does the folder exist and is it writable?"
    return f"Cannot use the index at {path}: {err}"


@contextlib.contextmanager
def translate_errors(path: Path | str) -> Iterator[None]:
    """Turn SQLite's environment errors into `DatabaseError` with a plain message."""
    try:
        yield
    except _KNOWN as err:
        raise DatabaseError(describe(err, path)) from err


def connect(path: Path | str, *, query_only: bool = False) -> apsw.Connection:
    """A connection with sqlite-vec loaded. `query_only`: SQLite refuses every change through it."""
    path = str(path)
    with translate_errors(path):
        conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        conn.set_busy_timeout(10_000)
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
        if not query_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        conn.execute(f"PRAGMA mmap_size={READER_MMAP if query_only else WRITER_MMAP}")
        if query_only:
            conn.execute("PRAGMA query_only=1")
    return conn


# --- migrations -------------------------------------------------------------------------------------------
# Each runs in one transaction together with the bump of PRAGMA user_version that records it.


def _m001_initial(conn: apsw.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE folders(
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            added_at REAL NOT NULL
        );
        CREATE TABLE documents(
            id INTEGER PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            kind TEXT,
            title TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
            error TEXT,
            indexed_at REAL NOT NULL
        );
        CREATE INDEX documents_folder ON documents(folder_id);
        CREATE INDEX documents_hash ON documents(content_hash);
        CREATE TABLE chunks(
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            page INTEGER,
            heading TEXT NOT NULL DEFAULT '',
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            text TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            embedded INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX chunks_document ON chunks(document_id);
        CREATE INDEX chunks_hash ON chunks(text_hash, embedded);
        CREATE INDEX chunks_pending ON chunks(id) WHERE embedded = 0;
        -- Contentless: the text lives once, in chunks; FTS keeps only the inverted index.
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, title, path,
            content='', contentless_delete=1,
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            DELETE FROM chunks_fts WHERE rowid = old.id;
        END;
        """
    )


def _m002_term_counts(conn: apsw.Connection) -> None:
    # How many chunks hold each term, read by keyword search to leave out words that match a large share
    # of a big library (query_only readers cannot create this themselves). A view of FTS5's index: no data.
    conn.execute("CREATE VIRTUAL TABLE chunks_fts_vocab USING fts5vocab(chunks_fts, row)")


def _m003_keyword_index(conn: apsw.Connection) -> None:
    # Posting arrays for exact BM25 without FTS5's scoring of every match (keyword_index.py). An index with
    # chunks already is filled in by the writer afterwards (keyword_index.catch_up); FTS5 answers until then.
    from . import keyword_index  # it uses this module's meta helpers

    keyword_index.install(conn)


def _m004_keyword_index_compact(conn: apsw.Connection) -> None:
    # The same index in a third less space: chunk ids as 16-bit offsets in their block, and each chunk's
    # length once per block instead of once per posting. Made again from the chunks (keyword_index.catch_up).
    from . import keyword_index

    keyword_index.install(conn)


def _m005_unread_scans(conn: apsw.Connection) -> None:
    # Scanned pages a document was read without (OCR off, or past its page limit), and the OCR page limit
    # it was read under (0: off): turning OCR on reads those documents again (store.DocState). Documents
    # indexed before this are taken as having none; a re-index reads them all.
    have = {row[1] for row in conn.execute("PRAGMA table_info(documents)")}  # tests rewind user_version
    for column in ("unread_scans", "ocr_limit"):
        if column not in have:
            conn.execute(f"ALTER TABLE documents ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Callable[[apsw.Connection], None]] = [
    _m001_initial,
    _m002_term_counts,
    _m003_keyword_index,
    _m004_keyword_index_compact,
    _m005_unread_scans,
]


def schema_version(conn: apsw.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: apsw.Connection, path: Path | str = "") -> None:
    """Bring the schema up to date. Safe from several connections: each step re-checks under a write lock."""
    with translate_errors(path):
        while (current := schema_version(conn)) < len(MIGRATIONS):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if schema_version(conn) == current:
                    MIGRATIONS[current](conn)
                    conn.execute(f"PRAGMA user_version={current + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if current > len(MIGRATIONS):
            raise DatabaseError(_newer_message(path, current))


def _newer_message(path: Path | str, version: int) -> str:
    return f"The index at {path} was made by a newer Almanac (schema {version}); please update Almanac."


def open_writer(path: Path | str) -> apsw.Connection:
    """The single connection that changes the index. The caller holds the index's `WriterLock`."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def open_reader(path: Path | str) -> apsw.Connection:
    """A connection for queries, on its own (WAL lets it read while the writer writes). It cannot write.

    A new or older index is brought up to date first, by a short-lived writer under the writer lock; when
    another writer holds that lock, it migrates as it opens, and this waits a moment for that.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, query_only=True)
    try:
        with translate_errors(path):
            version = schema_version(conn)
    except BaseException:
        conn.close()
        raise
    if version == len(MIGRATIONS):
        return conn
    conn.close()
    if version > len(MIGRATIONS):
        raise DatabaseError(_newer_message(path, version))
    try:
        with WriterLock(path):
            open_writer(path).close()
    except IndexInUseError:
        deadline = time.monotonic() + READER_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(0.05)
            conn = connect(path, query_only=True)
            with translate_errors(path):
                if schema_version(conn) == len(MIGRATIONS):
                    return conn
            conn.close()
        raise
    return connect(path, query_only=True)


def get_meta(conn: apsw.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: apsw.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
