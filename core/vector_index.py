"""Which sqlite-vec index holds the chunk vectors, and moving vectors between indexes without re-embedding.

Two layouts, chosen by library size (bench/latency.py measures both; docs/benchmarks.md has the numbers):

- ``flat``: vec0's exact scan. Exact by construction, cheap inserts and deletes; its query time grows
  linearly with the library (about 0.5 µs per vector on this class of CPU).
- ``diskann``: vec0's DiskANN graph (sqlite-vec 0.1.10's ``indexed by diskann``), 1-bit neighbour codes and
  exact rescoring from the stored float vectors. Milliseconds per query at any size, recall tunable at query
  time, but each insert costs milliseconds and each delete scans the graph (upstream's design), so it only
  pays off for large libraries.

The active table's name and layout live in `meta`, so a reader always finds the table the writer finished.
Moving to the other layout ("rebuild") copies the stored float vectors in batches into a new table, in the
writer, resumable after a crash or a Ctrl+C (the cursor is in `meta` too); searches keep using the old table
until the new one is complete, then one transaction switches and drops the old one. No chunk is re-embedded.
"""

from __future__ import annotations

from collections.abc import Callable

import apsw

from . import db

FLAT, DISKANN = "flat", "diskann"
LEGACY_TABLE = "vec_chunks"  # every index made before layouts existed holds a flat table by this name
_TABLES = {FLAT: "vec_chunks", DISKANN: "vec_chunks_ann"}

# Embedded chunks from which the graph is faster than the exact scan at a recall@10 of about 0.95 or more.
# Quiet machine, readers mapping the file (docs/benchmarks.md, "Where the graph pays"): at 100k the scan takes
# 44 ms and the graph 52 ms at L=1024 (0.977); at 300k the scan 130 ms, the graph 77 ms at L=1536 (0.967).
ANN_MIN_CHUNKS = 200_000
# DiskANN search list size at query time (L): sqlite-vec searches with max(k, L), so asking for k = L rows
# sets it per query, with no per-connection command (readers are query_only). sqlite-vec 0.1.10a4's search
# costs about L^2, so L is the smallest that keeps recall: at 300k L=1536 gives 0.967 (L=2048: 0.970 at the
# scan's time); at 1M L=2048 gives 0.890 at 0.27x the scan (0.95 would need L of about 5,000, slower than
# the scan). (embedded chunks from, L) pairs; the first applies to graphs kept by a library that shrank:
ANN_SEARCH_LISTS = ((0, 1024), (250_000, 1536), (600_000, 2048))
REBUILD_BATCH = 256  # vectors copied per transaction: each is a few seconds of graph inserts at most
# A DiskANN delete scans every node of the graph (about 1 s per vector at 100k in bench/latency.py), so a
# deleted chunk's vector stays in the graph and its id goes into vec_deleted, which searches skip; once the
# dead are this share of the graph, a rebuild copies the live vectors into a fresh graph.
DEAD_SHARE = 0.2


def table_ddl(table: str, layout: str, dim: int) -> str:
    index = " indexed by diskann(neighbor_quantizer=binary)" if layout == DISKANN else ""
    return f"CREATE VIRTUAL TABLE {table} USING vec0(embedding float[{dim}] distance_metric=cosine{index})"


def search_list(n_chunks: int) -> int:
    """The graph's search list size (L) for a library of `n_chunks` embedded chunks."""
    return max(size for start, size in ANN_SEARCH_LISTS if n_chunks >= start)


def wanted_layout(n_chunks: int) -> str:
    return DISKANN if n_chunks >= ANN_MIN_CHUNKS else FLAT


def _exists(conn: apsw.Connection, table: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone())


def active_table(conn: apsw.Connection) -> str | None:
    """The vec0 table searches read, or None before the first embedding."""
    table = db.get_meta(conn, "vec_table") or LEGACY_TABLE
    return table if _exists(conn, table) else None


def layout(conn: apsw.Connection) -> str:
    return db.get_meta(conn, "vec_layout") or FLAT


def rebuild_target(conn: apsw.Connection) -> tuple[str, str, int] | None:
    """(table, layout, cursor) of a rebuild under way: every embedded chunk id <= cursor is copied."""
    table = db.get_meta(conn, "vec_rebuild_table")
    if not table:
        return None
    cursor = int(db.get_meta(conn, "vec_rebuild_cursor") or 0)
    return table, db.get_meta(conn, "vec_rebuild_layout") or FLAT, cursor


def _tables(conn: apsw.Connection) -> list[tuple[str, str]]:
    """(table, layout) of every vector table in use: the active one and a rebuild's target."""
    out = []
    if table := active_table(conn):
        out.append((table, layout(conn)))
    if target := rebuild_target(conn):
        out.append((target[0], target[1]))
    return out


def _write_delete_trigger(conn: apsw.Connection) -> None:
    """A deleted chunk leaves every flat table at once and is marked dead for every graph."""
    conn.execute("CREATE TABLE IF NOT EXISTS vec_deleted(id INTEGER PRIMARY KEY)")
    conn.execute("DROP TRIGGER IF EXISTS chunks_vec_delete")
    tables = _tables(conn)
    body = [f"DELETE FROM {t} WHERE rowid = old.id;" for t, lay in tables if lay == FLAT]
    if any(lay == DISKANN for _, lay in tables):
        body.append("INSERT OR IGNORE INTO vec_deleted(id) VALUES (old.id);")
    if body:
        conn.execute(
            "CREATE TRIGGER chunks_vec_delete AFTER DELETE ON chunks WHEN old.embedded = 1"
            f" BEGIN {' '.join(body)} END"
        )


def dead_filter(conn: apsw.Connection, column: str) -> str:
    """SQL that keeps `column` (a chunk id) out of the dead, or "" when nothing was ever marked dead."""
    return f"{column} NOT IN (SELECT id FROM vec_deleted)" if _exists(conn, "vec_deleted") else ""


def revive(conn: apsw.Connection, chunk_id: int) -> None:
    """Before a vector is stored under a reused dead id: remove the stale one from the graphs for real."""
    if not _exists(conn, "vec_deleted"):
        return
    if conn.execute("SELECT 1 FROM vec_deleted WHERE id = ?", (chunk_id,)).fetchone():
        for table, _ in _tables(conn):
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (chunk_id,))
        conn.execute("DELETE FROM vec_deleted WHERE id = ?", (chunk_id,))


def create_fresh(conn: apsw.Connection, dim: int, n_chunks: int) -> None:
    """Drop every vector table; make an empty one in the layout that fits `n_chunks` (in a transaction)."""
    for table in {LEGACY_TABLE, *_TABLES.values()}:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("DROP TABLE IF EXISTS vec_bits")  # 1-bit copies kept by an earlier version
    conn.execute("DROP TABLE IF EXISTS vec_deleted")
    for key in ("vec_rebuild_table", "vec_rebuild_layout", "vec_rebuild_cursor"):
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))
    chosen = wanted_layout(n_chunks)
    conn.execute(table_ddl(_TABLES[chosen], chosen, dim))
    db.set_meta(conn, "vec_table", _TABLES[chosen])
    db.set_meta(conn, "vec_layout", chosen)
    _write_delete_trigger(conn)


# --- rebuild ------------------------------------------------------------------------------------------------


def needs_rebuild(conn: apsw.Connection) -> bool:
    """True when the library has outgrown its layout (or a rebuild is under way). Layouts only grow: a
    library that shrinks keeps its graph (still correct, merely slower to change)."""
    if rebuild_target(conn):
        return True
    if active_table(conn) is None:
        return False
    n = conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1").fetchone()[0]
    if layout(conn) == DISKANN:
        dead = 0
        if _exists(conn, "vec_deleted"):
            dead = conn.execute("SELECT count(*) FROM vec_deleted").fetchone()[0]
        return dead > DEAD_SHARE * (n + dead)
    return wanted_layout(n) == DISKANN


def rebuild(
    conn: apsw.Connection,
    dim: int,
    *,
    to: str = DISKANN,
    batch: int = REBUILD_BATCH,
    checkpoint: Callable[[], None] = lambda: None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> bool:
    """Copy every stored vector into a new table of layout `to`, then switch searches to it.

    Runs in the writer, one transaction per batch; `checkpoint()` runs between batches and may raise
    (`Cancelled`): the copy resumes from its cursor next time. Returns True when the switch happened.
    """
    source = active_table(conn)
    if source is None:
        return False
    target = rebuild_target(conn)
    if target is None or target[1] != to:
        new_table = _TABLES[to] if _TABLES[to] != source else f"{_TABLES[to]}_next"
        with conn:
            if target:
                conn.execute(f"DROP TABLE IF EXISTS {target[0]}")
            conn.execute(f"DROP TABLE IF EXISTS {new_table}")
            conn.execute(table_ddl(new_table, to, dim))
            db.set_meta(conn, "vec_rebuild_table", new_table)
            db.set_meta(conn, "vec_rebuild_layout", to)
            db.set_meta(conn, "vec_rebuild_cursor", "0")
            _write_delete_trigger(conn)
        target = (new_table, to, 0)
    table, _, cursor = target
    total = conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1").fetchone()[0]
    done = conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1 AND id <= ?", (cursor,)).fetchone()[0]
    while True:
        checkpoint()
        with conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM chunks WHERE embedded = 1 AND id > ? ORDER BY id LIMIT ?", (cursor, batch)
                )
            ]
            if not ids:
                _switch(conn, source, table, to)
                progress(total, total)
                return True
            copy_vectors(conn, source, table, ids)
            cursor = ids[-1]
            db.set_meta(conn, "vec_rebuild_cursor", str(cursor))
        done += len(ids)
        progress(done, max(total, done))


def copy_vectors(conn: apsw.Connection, source: str, target: str, ids: list[int]) -> None:
    """Copy the stored float vectors of `ids` from one vec0 table to another (no re-embedding)."""
    for chunk_id in ids:
        # Point reads: vec0 answers `rowid = ?` without a scan.
        conn.execute(
            f"INSERT INTO {target}(rowid, embedding) SELECT rowid, embedding FROM {source} WHERE rowid = ?",
            (chunk_id,),
        )


def _switch(conn: apsw.Connection, old: str, new: str, to: str) -> None:
    """Inside the writer's transaction: searches move to `new` at commit, `old` is dropped."""
    conn.execute(f"DROP TABLE {old}")
    final = _TABLES[to]
    if new != final:
        conn.execute(f"ALTER TABLE {new} RENAME TO {final}")
    for key in ("vec_rebuild_table", "vec_rebuild_layout", "vec_rebuild_cursor"):
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))
    # Dead ids the new table never held are forgotten; those copied and deleted since stay dead.
    conn.execute(
        "DELETE FROM vec_deleted WHERE id NOT IN"
        f" (SELECT d.id FROM vec_deleted d JOIN {final} v ON v.rowid = d.id)"
    )
    db.set_meta(conn, "vec_table", final)
    db.set_meta(conn, "vec_layout", to)
    _write_delete_trigger(conn)
