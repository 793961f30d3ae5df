"""Reads and writes of the index tables. Every change to one document is one transaction.

Only the writer connection calls the mutating functions here; a crash (even `kill -9`) between two of them
leaves chunks, FTS rows and vectors in step, because each one commits or rolls back whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np

from . import db, keyword_index, vector_index
from .chunking import Chunk
from .paths import is_within


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_hash(path: Path) -> str:
    """`content_hash` of a file's bytes, read in blocks: a large file is never held whole in memory."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


# --- file names that are not valid UTF-8 ----------------------------------------------------------------
# Python gives such names with each undecodable byte as a lone surrogate U+DC80..U+DCFF ("surrogateescape",
# what os.walk and os.fsdecode return). SQLite text must be UTF-8, so apsw refuses those strings. In the
# database each such byte is written as a noncharacter (U+FDD0, which Unicode sets aside for internal use)
# plus two hex digits, and a U+FDD0 that really is in a name is doubled: lossless, and ordinary names are
# stored exactly as before. Because the mapping is character by character, "is below this folder" prefix
# tests and range scans work unchanged on the stored form.

_ESC = "\ufdd0"
_ESCAPED = re.compile("[\udc80-\udcff\ufdd0]")
_STORED_ESCAPE = re.compile("\ufdd0(\ufdd0|[0-9A-F]{2})")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESC * 2 if char == _ESC else f"{_ESC}{ord(char) - 0xDC00:02X}"


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    return _ESC if code == _ESC else chr(0xDC00 + int(code, 16))


def path_to_db(path: str) -> str:
    """The stored form of a path (identical for every name that is valid UTF-8)."""
    if not _ESCAPED.search(path):
        return path
    return _ESCAPED.sub(_escape, path)


def path_from_db(stored: str) -> str:
    """The file-system path (as os.fsdecode gives it) of a stored path; safe on an already decoded path."""
    if _ESC not in stored:
        return stored
    return _STORED_ESCAPE.sub(_unescape, stored)


def display_path(path: str) -> str:
    """A path for people (printing, status, FTS): each undecodable byte shown as U+FFFD."""
    path = path_from_db(path)
    return os.fsencode(path).decode("utf-8", errors="replace") if _ESCAPED.search(path) else path


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Folder:
    id: int
    path: str


@dataclass(frozen=True)
class DocState:
    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    status: str
    # Scanned pages whose text the index lacks (OCR off, past its page limit, or its engine missing), and
    # the OCR page limit they were read under (0: OCR off): turning OCR on, or raising the limit, reads them
    # again (indexer.Indexer.rereads); after a missing engine is installed, a re-index does.
    unread_scans: int = 0
    ocr_limit: int = 0


@dataclass(frozen=True)
class NewChunk:
    chunk: Chunk  # offsets relative to the whole extracted text (sections joined by a blank line)
    page: int | None
    heading: str


# --- folders ------------------------------------------------------------------------------------------------


def folders(conn: apsw.Connection) -> list[Folder]:
    return [Folder(i, path_from_db(p)) for i, p in conn.execute("SELECT id, path FROM folders ORDER BY path")]


def add_folder(conn: apsw.Connection, path: str) -> int:
    path = path_to_db(path)
    with conn:
        conn.execute(
            "INSERT INTO folders(path, added_at) VALUES (?, ?) ON CONFLICT(path) DO NOTHING",
            (path, time.time()),
        )
        folder_id = conn.execute("SELECT id FROM folders WHERE path = ?", (path,)).fetchone()[0]
        # Documents of folders inside the new one now belong to it; those folders are absorbed.
        inner = [
            i
            for i, p in conn.execute("SELECT id, path FROM folders WHERE id != ?", (folder_id,))
            if is_within(p, path)
        ]
        for inner_id in inner:
            conn.execute("UPDATE documents SET folder_id = ? WHERE folder_id = ?", (folder_id, inner_id))
            conn.execute("DELETE FROM folders WHERE id = ?", (inner_id,))
    return folder_id


def remove_folder(conn: apsw.Connection, folder_id: int) -> None:
    with conn:
        # Explicit deletes so the triggers clear FTS and vectors row by row before the cascade.
        conn.execute(
            "DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE folder_id = ?)",
            (folder_id,),
        )
        conn.execute("DELETE FROM documents WHERE folder_id = ?", (folder_id,))
        conn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))


# --- documents ----------------------------------------------------------------------------------------------


_DOC_STATE = "id, path, size, mtime_ns, content_hash, status, unread_scans, ocr_limit"


def _doc_state(row: tuple) -> DocState:
    return DocState(row[0], path_from_db(row[1]), *row[2:])


def documents_in(conn: apsw.Connection, folder_id: int) -> dict[str, DocState]:
    rows = conn.execute(
        f"SELECT {_DOC_STATE} FROM documents WHERE folder_id = ?",
        (folder_id,),
    )
    states = (_doc_state(r) for r in rows)
    return {d.path: d for d in states}


def document(conn: apsw.Connection, path: str) -> DocState | None:
    row = conn.execute(
        f"SELECT {_DOC_STATE} FROM documents WHERE path = ?",
        (path_to_db(path),),
    ).fetchone()
    return _doc_state(row) if row else None


def replace_document(
    conn: apsw.Connection,
    *,
    folder_id: int,
    path: str,
    size: int,
    mtime_ns: int,
    digest: str,
    kind: str,
    title: str,
    chunks: Sequence[NewChunk],
    unread_scans: int = 0,
    ocr_limit: int = 0,
) -> int:
    """Insert or replace one document and all its chunks and FTS rows, atomically. A new chunk with the text
    of one the document had keeps that one's vector: an edit, or a file read again (OCR turned on), embeds
    only the text that changed."""
    with conn:
        scans = (unread_scans, ocr_limit)
        doc_id = _upsert_document(
            conn, folder_id, path, size, mtime_ns, digest, kind, title, "indexed", None, scans
        )
        old = conn.execute("SELECT id, text_hash, embedded FROM chunks WHERE document_id = ?", (doc_id,))
        old_ids, vectors = [], {}
        for chunk_id, digest_, embedded in old:
            old_ids.append(chunk_id)
            if embedded:
                vectors[digest_] = chunk_id
        fts_rows, kept = [], {}
        for ord_, c in enumerate(chunks):
            digest_ = text_hash(c.chunk.text)
            conn.execute(
                "INSERT INTO chunks(document_id, ord, page, heading, start, end, text, text_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, ord_, c.page, c.heading, c.chunk.start, c.chunk.end, c.chunk.text, digest_),
            )
            chunk_id = conn.last_insert_rowid()
            fts_rows.append((chunk_id, _fts_text(c), title, display_path(path)))
            if digest_ in vectors:
                kept[chunk_id] = vectors[digest_]
        conn.executemany("INSERT INTO chunks_fts(rowid, text, title, path) VALUES (?, ?, ?, ?)", fts_rows)
        keyword_index.add(conn, fts_rows)
        if kept:
            copy_vectors(conn, kept)  # before the old rows take their vectors with them
        conn.executemany("DELETE FROM chunks WHERE id = ?", [(chunk_id,) for chunk_id in old_ids])
    return doc_id


def _fts_text(c: NewChunk) -> str:
    # The heading path is part of what a chunk is about (a Markdown section's title).
    return f"{c.heading}\n{c.chunk.text}" if c.heading else c.chunk.text


def record_failure(
    conn: apsw.Connection, *, folder_id: int, path: str, size: int, mtime_ns: int, digest: str, reason: str,
    unread_scans: int = 0, ocr_limit: int = 0,
) -> None:
    with conn:
        scans = (unread_scans, ocr_limit)
        doc_id = _upsert_document(
            conn, folder_id, path, size, mtime_ns, digest, None, "", "failed", reason, scans
        )
        conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))


LIGATURES_META = "ligatures"


def mark_ligature_documents(conn: apsw.Connection) -> int:
    """Once per library: mark the documents whose stored text holds a typographic ligature, as text was
    read before core.extractors.LIGATURES, to be read again (an unmatched hash and time say "changed"); the
    others keep their chunks. One scan of the chunks' text (~40 s at 1M chunks). Returns how many."""
    if db.get_meta(conn, LIGATURES_META) is not None:
        return 0
    lig = "'*[\ufb00-\ufb06]*'"
    with conn:
        conn.execute(
            "UPDATE documents SET content_hash = '', mtime_ns = -1 WHERE status = 'indexed' AND (title GLOB "
            f"{lig} OR id IN (SELECT document_id FROM chunks WHERE text GLOB {lig} OR heading GLOB {lig}))"
        )
        marked = conn.changes()
        db.set_meta(conn, LIGATURES_META, "letters")
    return marked


def touch_document(conn: apsw.Connection, doc_id: int, size: int, mtime_ns: int) -> None:
    """Same content, new stat: remember it so the next scan skips the file without hashing it."""
    with conn:
        conn.execute("UPDATE documents SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, doc_id))


def move_document(
    conn: apsw.Connection, doc_id: int, new_path: str, folder_id: int, size: int, mtime_ns: int
) -> None:
    """A rename or move with unchanged content: new path, same chunks and vectors."""
    with conn:
        stored = path_to_db(new_path)
        conn.execute("DELETE FROM documents WHERE path = ? AND id != ?", (stored, doc_id))
        conn.execute(
            "UPDATE documents SET path = ?, folder_id = ?, size = ?, mtime_ns = ? WHERE id = ?",
            (stored, folder_id, size, mtime_ns, doc_id),
        )
        title = conn.execute("SELECT title FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
        rows = conn.execute(
            "SELECT id, heading, text FROM chunks WHERE document_id = ?", (doc_id,)
        ).fetchall()
        fts_rows = [
            (chunk_id, f"{heading}\n{text}" if heading else text, title, display_path(new_path))
            for chunk_id, heading, text in rows
        ]
        for row in fts_rows:
            # A contentless FTS row can only be replaced whole.
            conn.execute("DELETE FROM chunks_fts WHERE rowid = ?", (row[0],))
            conn.execute("INSERT INTO chunks_fts(rowid, text, title, path) VALUES (?, ?, ?, ?)", row)
        keyword_index.forget(conn, [r[0] for r in fts_rows])
        keyword_index.add(conn, fts_rows)


def delete_documents(conn: apsw.Connection, doc_ids: Iterable[int]) -> None:
    with conn:
        for doc_id in doc_ids:
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))


def _upsert_document(
    conn: apsw.Connection,
    folder_id: int,
    path: str,
    size: int,
    mtime_ns: int,
    digest: str,
    kind: str | None,
    title: str,
    status: str,
    error: str | None,
    scans: tuple[int, int],  # unread_scans, ocr_limit (DocState)
) -> int:
    path = path_to_db(path)
    conn.execute(
        "INSERT INTO documents(folder_id, path, size, mtime_ns, content_hash, kind, title, status, error,"
        " indexed_at, unread_scans, ocr_limit)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(path) DO UPDATE SET folder_id = excluded.folder_id, size = excluded.size,"
        " mtime_ns = excluded.mtime_ns, content_hash = excluded.content_hash, kind = excluded.kind,"
        " title = excluded.title, status = excluded.status, error = excluded.error,"
        " indexed_at = excluded.indexed_at, unread_scans = excluded.unread_scans,"
        " ocr_limit = excluded.ocr_limit",
        (folder_id, path, size, mtime_ns, digest, kind, title, status, error, time.time(), *scans),
    )
    return conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()[0]


# --- vectors ------------------------------------------------------------------------------------------------


def vector_model(conn: apsw.Connection) -> tuple[str, int] | None:
    name, dim = db.get_meta(conn, "embed_model"), db.get_meta(conn, "embed_dim")
    return (name, int(dim)) if name and dim else None


def ensure_vector_tables(conn: apsw.Connection, model_name: str, dim: int) -> bool:
    """Make the vector tables fit `model_name`; on a model change drop every vector (they are re-made).

    Returns True when existing vectors were dropped.
    """
    if vector_model(conn) == (model_name, dim) and has_vector_tables(conn):
        return False
    with conn:
        # The new table's layout fits the library's size now, so a big library is not re-indexed twice.
        n_chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        vector_index.create_fresh(conn, dim, n_chunks)
        dropped = conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1").fetchone()[0] > 0
        conn.execute("UPDATE chunks SET embedded = 0 WHERE embedded = 1")
        db.set_meta(conn, "embed_model", model_name)
        db.set_meta(conn, "embed_dim", str(dim))
    return dropped


def has_vector_tables(conn: apsw.Connection) -> bool:
    return vector_index.active_table(conn) is not None


def pending_chunks(
    conn: apsw.Connection, limit: int, documents: Sequence[int] | None = None
) -> list[tuple[int, str, str]]:
    """(id, text, text_hash) of chunks without a vector, oldest first: the embedding queue is the index.
    `documents`: only chunks of these documents (what one change made)."""
    if documents is None:
        return conn.execute(
            "SELECT id, text, text_hash FROM chunks WHERE embedded = 0 ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
    return conn.execute(
        "SELECT id, text, text_hash FROM chunks WHERE embedded = 0"
        " AND document_id IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?",
        (json.dumps(list(documents)), limit),
    ).fetchall()


def count_pending(conn: apsw.Connection, documents: Sequence[int] | None = None) -> int:
    if documents is None:
        return conn.execute("SELECT count(*) FROM chunks WHERE embedded = 0").fetchone()[0]
    return conn.execute(
        "SELECT count(*) FROM chunks WHERE embedded = 0 AND document_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(documents)),),
    ).fetchone()[0]


def documents_indexed_since(conn: apsw.Connection, since: float) -> list[int]:
    """Ids of documents (re)written with chunks at or after `since` (time.time()): what a change made."""
    rows = conn.execute("SELECT id FROM documents WHERE status = 'indexed' AND indexed_at >= ?", (since,))
    return [r[0] for r in rows]


def existing_vector_for(conn: apsw.Connection, digest: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM chunks WHERE text_hash = ? AND embedded = 1 LIMIT 1", (digest,)
    ).fetchone()
    return row[0] if row else None


def store_vectors(
    conn: apsw.Connection, ids: Sequence[int], vectors: np.ndarray, copies: dict[int, int]
) -> None:
    """Write a batch of vectors in one transaction; `copies` maps chunk id -> chunk id whose vector it reuses.

    A chunk deleted meanwhile (its file changed) is skipped: the writer is the only one deleting, so this
    check inside the transaction is enough.
    """
    with conn:
        active = vector_index.active_table(conn) or vector_index.LEGACY_TABLE
        target = vector_index.rebuild_target(conn)
        for chunk_id, vec in zip(ids, vectors, strict=True):
            if not conn.execute("SELECT 1 FROM chunks WHERE id = ? AND embedded = 0", (chunk_id,)).fetchone():
                continue
            blob = vec.astype(np.float32).tobytes()
            vector_index.revive(conn, chunk_id)
            for table in _vector_tables(active, target, chunk_id):
                conn.execute(f"INSERT INTO {table}(rowid, embedding) VALUES (?, ?)", (chunk_id, blob))
            conn.execute("UPDATE chunks SET embedded = 1 WHERE id = ?", (chunk_id,))
        copy_vectors(conn, copies)


def copy_vectors(conn: apsw.Connection, copies: dict[int, int]) -> None:
    """Give each chunk id of `copies` the stored vector of the chunk it maps to (same text), in one
    transaction; a chunk deleted meanwhile, or one with a vector already, is skipped."""
    with conn:
        active = vector_index.active_table(conn) or vector_index.LEGACY_TABLE
        target = vector_index.rebuild_target(conn)
        for chunk_id, source_id in copies.items():
            if not conn.execute("SELECT 1 FROM chunks WHERE id = ? AND embedded = 0", (chunk_id,)).fetchone():
                continue
            vector_index.revive(conn, chunk_id)
            for table in _vector_tables(active, target, chunk_id):
                conn.execute(
                    f"INSERT INTO {table}(rowid, embedding)"
                    f" SELECT ?, embedding FROM {active} WHERE rowid = ?",
                    (chunk_id, source_id),
                )
            conn.execute("UPDATE chunks SET embedded = 1 WHERE id = ?", (chunk_id,))


def _vector_tables(active: str, target: tuple[str, str, int] | None, chunk_id: int) -> list[str]:
    # During a rebuild, ids it has already copied go into its new table too.
    return [active, target[0]] if target and chunk_id <= target[2] else [active]


# --- status -------------------------------------------------------------------------------------------------


@dataclass
class FolderStatus:
    id: int
    path: str
    documents: int
    failed: int
    chunks: int


@dataclass
class Status:
    folders: list[FolderStatus]
    documents: int  # indexed
    failed: int
    chunks: int
    embedded: int
    failures: list[tuple[str, str]]  # (path for display (see display_path), reason)
    db_bytes: int
    embedding_model: str | None
    embedding_dim: int | None

    def to_json(self) -> dict:
        return {
            "documents": self.documents,
            "failed": self.failed,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "pending": self.chunks - self.embedded,
            "db_bytes": self.db_bytes,
            "embedding_model": self.embedding_model,
            "embedding_dim": self.embedding_dim,
            "folders": [vars(f) for f in self.folders],
            "failures": [{"path": p, "reason": r} for p, r in self.failures],
        }


def status(conn: apsw.Connection, db_file: Path) -> Status:
    per_folder = []
    for f in folders(conn):
        docs, failed = conn.execute(
            "SELECT coalesce(sum(status = 'indexed'), 0), coalesce(sum(status = 'failed'), 0)"
            " FROM documents WHERE folder_id = ?",
            (f.id,),
        ).fetchone()
        n_chunks = conn.execute(
            "SELECT count(*) FROM chunks JOIN documents d ON d.id = chunks.document_id WHERE d.folder_id = ?",
            (f.id,),
        ).fetchone()[0]
        per_folder.append(FolderStatus(f.id, f.path, docs, failed, n_chunks))
    docs, failed = conn.execute(
        "SELECT coalesce(sum(status = 'indexed'), 0), coalesce(sum(status = 'failed'), 0) FROM documents"
    ).fetchone()
    n_chunks, n_embedded = conn.execute("SELECT count(*), coalesce(sum(embedded), 0) FROM chunks").fetchone()
    failures = conn.execute(
        "SELECT path, error FROM documents WHERE status = 'failed' ORDER BY path"
    ).fetchall()
    size = sum(p.stat().st_size for p in (db_file, Path(f"{db_file}-wal")) if p.exists())
    model = vector_model(conn)
    return Status(
        folders=per_folder,
        documents=docs,
        failed=failed,
        chunks=n_chunks,
        embedded=n_embedded,
        failures=[(display_path(p), r or "") for p, r in failures],
        db_bytes=size,
        embedding_model=model[0] if model else None,
        embedding_dim=model[1] if model else None,
    )


# --- whole folders moved or renamed (the folder watcher) ----------------------------------------------------


def _under_bounds(directory: str) -> tuple[str, str]:
    # Paths below `directory` sort between "dir/" and "dir0" ("0" follows "/" in UTF-8 and code points),
    # so the UNIQUE index on documents.path answers this as a range scan.
    base = path_to_db(directory).rstrip(os.sep)
    return base + os.sep, base + chr(ord(os.sep) + 1)


def documents_under(conn: apsw.Connection, directory: str) -> dict[str, DocState]:
    """Documents whose path is below `directory` (not the directory itself), by path."""
    lo, hi = _under_bounds(directory)
    rows = conn.execute(
        f"SELECT {_DOC_STATE} FROM documents WHERE path >= ? AND path < ?",
        (lo, hi),
    )
    states = (_doc_state(r) for r in rows)
    return {d.path: d for d in states}


def move_documents_under(conn: apsw.Connection, old_dir: str, new_dir: str, folder_id: int) -> int:
    """A folder renamed or moved: every document below `old_dir` gets the same path below `new_dir`.

    One transaction (readers see all of the folder at its old place or all at its new one); chunks and vectors
    stay, FTS rows get the new path. Returns how many documents moved.
    """
    old_base, new_base = old_dir.rstrip(os.sep), new_dir.rstrip(os.sep)
    with conn:
        docs = documents_under(conn, old_base)
        for path, doc in sorted(docs.items()):
            new_path = new_base + path[len(old_base) :]
            move_document(conn, doc.id, new_path, folder_id, doc.size, doc.mtime_ns)  # nested: a savepoint
    return len(docs)
