"""Exact BM25 for big libraries, scored with numpy over posting arrays instead of by FTS5.

FTS5 scores every chunk that matches any query word, at about 1.5 µs each: a question whose words hold
650,000 postings in a 1M-chunk library takes over a second. This index keeps, per term, its postings as
arrays (chunk id, weighted term frequency) in rows of 2**BLOCK_BITS chunk ids, beside one array of chunk
lengths per block, so a query reads a few blobs per word and scores all of them in one vectorized pass: the
same numbers FTS5's `bm25(chunks_fts, 1.0, 0.5, 0.2)` gives (same IDF, document frequency, average length and
column weights; the candidates near the cut are re-scored in float64), ranked best first.

Writes go through the single writer. A new FTS row is tokenized with FTS5's own tokenizer and waits in
`kw_pending` (one row per term and chunk); a deleted chunk is listed in `kw_removed` by a trigger and masked
at query time. When either grows past FOLD_POSTINGS / FOLD_REMOVED, the writer folds them into the blocks,
rewriting only the rows they touch. A library that existed before this index is filled in the background by
`catch_up` (resumable, one block of chunk ids per transaction); until it is complete, searches use FTS5.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

import apsw
import numpy as np

from . import db

# FTS5's bm25 constants and our column weights (chunks_fts: text, title, path), as search.py ranks with them.
K1, B = 1.2, 0.75
COLUMN_WEIGHTS = (1.0, 0.5, 0.2)
_TF_SCALE = 10  # weighted term frequencies are stored as integers: 10 a match in text, 5 in title, 2 in path
_WEIGHTS10 = tuple(round(w * _TF_SCALE) for w in COLUMN_WEIGHTS)
TOKENIZER = ("porter", ["unicode61", "remove_diacritics", "2"])  # as chunks_fts is declared (migration 1)

BLOCK_BITS = 14  # 16,384 chunk ids per stored row (at most 16: ids are kept as uint16 offsets in the block)
FOLD_POSTINGS = 200_000  # pending postings (~1,800 chunks) before the writer folds them into the blocks
# Removed chunks masked at query time before the writer purges them. Purging rewrites every block they are
# in (the chunks' terms are gone with their text), so it waits for many.
FOLD_REMOVED = 20_000
# A fold the writer makes while indexing purges blocks for about this long, then leaves the rest masked for
# the next folds (spread deletes at 1M chunks took one 23 s transaction to purge: the watcher waited on it).
PURGE_BUDGET_S = 0.5
META_KEY = "keyword_index"  # "ready", or "building N": chunks with ids <= N are in the index
_FLOAT_SLACK = 1e-4  # float32 scores this close to the cut are re-scored in float64


_DDL = """
        DROP TRIGGER IF EXISTS kw_forget;
        DROP TABLE IF EXISTS kw_blocks;
        DROP TABLE IF EXISTS kw_lengths;
        DROP TABLE IF EXISTS kw_pending;
        DROP TABLE IF EXISTS kw_removed;
        CREATE TABLE kw_blocks(
            term TEXT NOT NULL,
            block INTEGER NOT NULL,
            ids BLOB NOT NULL,   -- uint16 chunk id - (block << BLOCK_BITS), ascending
            tfs BLOB NOT NULL,   -- uint16 weighted term frequency x 10
            PRIMARY KEY(term, block)
        ) WITHOUT ROWID;
        CREATE INDEX kw_blocks_block ON kw_blocks(block);
        -- uint16 length in tokens (all columns) of each chunk id of the block, 0 for none
        CREATE TABLE kw_lengths(block INTEGER PRIMARY KEY, lens BLOB NOT NULL);
        CREATE TABLE kw_pending(
            term TEXT NOT NULL,
            chunk_id INTEGER NOT NULL,
            tf INTEGER NOT NULL,
            len INTEGER NOT NULL,
            PRIMARY KEY(term, chunk_id)
        ) WITHOUT ROWID;
        CREATE INDEX kw_pending_chunk ON kw_pending(chunk_id);
        CREATE TABLE kw_removed(chunk_id INTEGER PRIMARY KEY);
        -- Every way a chunk goes (replaced, failed, deleted, cascaded from its document) passes here.
        CREATE TRIGGER kw_forget AFTER DELETE ON chunks BEGIN
            INSERT OR IGNORE INTO kw_removed(chunk_id) VALUES (old.id);
            DELETE FROM kw_pending WHERE chunk_id = old.id;
        END;
        """


_TABLES = ("kw_blocks", "kw_lengths", "kw_pending", "kw_removed")


def install(conn: apsw.Connection) -> None:
    """The tables, trigger and state, replacing any earlier ones (inside a migration's transaction). An index
    with chunks already is filled later by `catch_up`."""
    conn.execute(_DDL)
    has_chunks = conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is not None
    db.set_meta(conn, META_KEY, "building 0" if has_chunks else "ready")


# -- state ------------------------------------------------------------------------------------------------


def built_to(conn: apsw.Connection) -> float:
    """Chunk ids up to this one are in the index (inf when complete; 0 when absent)."""
    state = db.get_meta(conn, META_KEY)
    if state is None:
        return 0
    if state == "ready":
        return math.inf
    return int(state.split()[1])


def ready(conn: apsw.Connection) -> bool:
    return built_to(conn) == math.inf


# -- tokens -----------------------------------------------------------------------------------------------


class Tokens:
    """FTS5's tokenizer on one connection, as the index and the query see terms."""

    def __init__(self, conn: apsw.Connection) -> None:
        self._tok = conn.fts5_tokenizer(*TOKENIZER)
        self._memo: dict[tuple[str, int], dict[str, int]] = {}  # titles and paths repeat chunk after chunk

    def document(self, text: str) -> list[str]:
        return [t[2] for t in self._tok(text.encode("utf-8"), apsw.FTS5_TOKENIZE_DOCUMENT, None)]

    def query(self, word: str) -> list[str]:
        return [t[2] for t in self._tok(word.encode("utf-8"), apsw.FTS5_TOKENIZE_QUERY, None)]

    def _weighted(self, text: str, weight: int) -> dict[str, int]:
        tokens = self.document(text)
        tf = {t: weight * n for t, n in Counter(tokens).items()}
        tf[""] = len(tokens)  # the column's length rides along (no token is empty)
        return tf

    def postings(self, rows: Iterable[tuple[int, str, str, str]]) -> Postings:
        """Weighted term frequencies (x10) of FTS rows (chunk id ascending, text, title, path) and their
        lengths in tokens over all columns."""
        terms: list[str] = []
        ids: list[int] = []
        tfs: list[int] = []
        lens: list[int] = []
        if len(self._memo) > 10_000:
            self._memo.clear()
        for chunk_id, text, title, path in rows:
            tf = self._weighted(text, _WEIGHTS10[0])
            for column, weight in ((title, _WEIGHTS10[1]), (path, _WEIGHTS10[2])):
                memo = self._memo.get((column, weight))
                if memo is None:
                    memo = self._memo[(column, weight)] = self._weighted(column, weight)
                for t, f in memo.items():
                    tf[t] = tf.get(t, 0) + f
            length = tf.pop("")
            terms += tf
            tfs += tf.values()
            ids += repeat(chunk_id, len(tf))
            lens += repeat(length, len(tf))
        return Postings.of(terms, ids, tfs, lens)


@dataclass
class Postings:
    """Postings grouped by term, ids ascending within each term."""

    terms: list[str]
    starts: np.ndarray  # term i holds entries starts[i]:starts[i + 1]
    ids: np.ndarray
    tfs: np.ndarray
    lens: np.ndarray

    @classmethod
    def of(cls, terms: list[str], ids: Sequence[int], tfs: Sequence[int], lens: Sequence[int]) -> Postings:
        codes: dict[str, int] = {}
        coded = np.array([codes.setdefault(t, len(codes)) for t in terms], np.int64)
        order = np.argsort(coded, kind="stable")  # keeps each term's ids ascending, as they came
        coded = coded[order]
        firsts = np.flatnonzero(np.diff(coded, prepend=-1))
        names = list(codes)
        return cls(
            terms=[names[c] for c in coded[firsts].tolist()],
            starts=np.append(firsts, len(coded)),
            ids=np.asarray(ids, np.int64)[order],
            tfs=np.minimum(np.asarray(tfs, np.int64)[order], 65_535),
            lens=np.minimum(np.asarray(lens, np.int64)[order], 65_535),
        )

    def groups(self) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        for i, term in enumerate(self.terms):
            a, b = self.starts[i], self.starts[i + 1]
            yield term, self.ids[a:b], self.tfs[a:b], self.lens[a:b]


# -- writes (the writer connection, inside its transactions) -------------------------------------------


def add(conn: apsw.Connection, rows: Iterable[tuple[int, str, str, str]]) -> None:
    """New FTS rows (chunk id, text, title, path): their postings wait in kw_pending until folded."""
    limit = built_to(conn)
    new = Tokens(conn).postings(sorted(r for r in rows if r[0] <= limit))  # above: catch_up reads them later
    conn.executemany(
        "INSERT OR REPLACE INTO kw_pending(term, chunk_id, tf, len) VALUES (?, ?, ?, ?)",
        (
            (term, *row)
            for term, ids, tfs, lens in new.groups()
            for row in zip(ids.tolist(), tfs.tolist(), lens.tolist(), strict=True)
        ),
    )
    if len(new.ids):
        maybe_fold(conn)


def forget(conn: apsw.Connection, chunk_ids: Iterable[int]) -> None:
    """FTS rows rewritten in place (a moved document's path): the old postings stop counting."""
    for chunk_id in chunk_ids:
        conn.execute("INSERT OR IGNORE INTO kw_removed(chunk_id) VALUES (?)", (chunk_id,))
        conn.execute("DELETE FROM kw_pending WHERE chunk_id = ?", (chunk_id,))


def maybe_fold(conn: apsw.Connection) -> None:
    pending = conn.execute("SELECT count(*) FROM kw_pending").fetchone()[0]
    removed = conn.execute("SELECT count(*) FROM kw_removed").fetchone()[0]
    if pending > FOLD_POSTINGS or removed > FOLD_REMOVED:
        fold(conn, budget_s=PURGE_BUDGET_S)


def _arrays(row: tuple, block: int) -> tuple[np.ndarray, np.ndarray]:
    """A stored row's (chunk ids, weighted tfs)."""
    ids = np.frombuffer(row[0], np.uint16).astype(np.int64) + (block << BLOCK_BITS)
    return ids, np.frombuffer(row[1], np.uint16)


def _write_block(conn: apsw.Connection, term: str, block: int, ids: np.ndarray, tfs: np.ndarray) -> None:
    if len(ids) == 0:
        conn.execute("DELETE FROM kw_blocks WHERE term = ? AND block = ?", (term, block))
        return
    order = np.argsort(ids, kind="stable")
    conn.execute(
        "INSERT OR REPLACE INTO kw_blocks(term, block, ids, tfs) VALUES (?, ?, ?, ?)",
        (
            term,
            block,
            (ids[order] - (block << BLOCK_BITS)).astype(np.uint16).tobytes(),
            np.asarray(tfs)[order].astype(np.uint16).tobytes(),
        ),
    )


def _write_lengths(conn: apsw.Connection, ids: np.ndarray, lens: np.ndarray) -> None:
    """Record chunk lengths (ids ascending, one length per id) in their blocks' length rows."""
    if not len(ids):
        return
    blocks = ids >> BLOCK_BITS
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(blocks)) + 1, [len(ids)]]).tolist()
    for a, b in itertools.pairwise(cuts):
        block = int(blocks[a])
        row = conn.execute("SELECT lens FROM kw_lengths WHERE block = ?", (block,)).fetchone()
        table = np.frombuffer(row[0], np.uint16).copy() if row else np.zeros(1 << BLOCK_BITS, np.uint16)
        table[ids[a:b] - (block << BLOCK_BITS)] = lens[a:b]
        conn.execute("INSERT OR REPLACE INTO kw_lengths(block, lens) VALUES (?, ?)", (block, table.tobytes()))


def fold(conn: apsw.Connection, budget_s: float | None = None) -> None:
    """Purge removed chunks from the blocks, then move the pending postings in (one transaction).

    With `budget_s`, purging stops once it has taken that long, the blocks with most removed chunks first;
    the others stay masked at query time until a later fold. A block where a pending chunk reuses a removed
    id is always purged: once merged, the new postings would be masked with the old.
    """
    with conn:
        removed = _removed(conn)
        pending = np.array([r[0] for r in conn.execute("SELECT DISTINCT chunk_id FROM kw_pending")], np.int64)
        must = set((np.intersect1d(removed, pending) >> BLOCK_BITS).tolist())
        blocks, counts = np.unique(removed >> BLOCK_BITS, return_counts=True)
        start = time.monotonic()
        order = sorted(range(len(blocks)), key=lambda i: (blocks[i] not in must, -counts[i]))
        for purged, i in enumerate(order):
            block = int(blocks[i])
            over = budget_s is not None and time.monotonic() - start > budget_s
            if over and purged and block not in must:
                break
            _purge(conn, block, removed)
            conn.execute(
                "DELETE FROM kw_removed WHERE chunk_id >= ? AND chunk_id < ?",
                (block << BLOCK_BITS, (block + 1) << BLOCK_BITS),
            )
        rows = conn.execute("SELECT term, chunk_id, tf, len FROM kw_pending").fetchall()  # by term, chunk
        if rows:
            terms, ids, tfs, lens = zip(*rows, strict=True)
            _merge_all(conn, Postings.of(list(terms), ids, tfs, lens))
        conn.execute("DELETE FROM kw_pending")


def _purge(conn: apsw.Connection, block: int, removed: np.ndarray) -> None:
    """Drop `removed` chunks from one block's rows. Which terms they held is unknown (their text is gone), so
    every row of the block is checked, in one vectorized pass; only the rows holding one are rewritten."""
    base = block << BLOCK_BITS
    gone = np.zeros(1 << BLOCK_BITS, bool)
    gone[removed[(removed >> BLOCK_BITS) == block] - base] = True
    rows = conn.execute("SELECT term, ids FROM kw_blocks WHERE block = ?", (block,)).fetchall()
    if not rows:
        return
    offsets = np.frombuffer(b"".join(r[1] for r in rows), np.uint16)
    starts = np.cumsum([0] + [len(r[1]) // 2 for r in rows[:-1]])
    for i in np.flatnonzero(np.logical_or.reduceat(gone[offsets], starts)).tolist():
        term = rows[i][0]
        row = conn.execute("SELECT ids, tfs FROM kw_blocks WHERE term = ? AND block = ?", (term, block))
        old_ids, tfs = _arrays(row.fetchone(), block)
        keep = ~gone[old_ids - base]
        _write_block(conn, term, block, old_ids[keep], tfs[keep])


def _merge_all(conn: apsw.Connection, new: Postings) -> None:
    for term, ids, tfs, _ in new.groups():
        blocks = ids >> BLOCK_BITS
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(blocks)) + 1, [len(ids)]])
        for a, b in itertools.pairwise(cuts.tolist()):
            _merge(conn, term, int(blocks[a]), ids[a:b], tfs[a:b])
    chunks, first = np.unique(new.ids, return_index=True)
    _write_lengths(conn, chunks, new.lens[first])


def _merge(conn: apsw.Connection, term: str, block: int, ids: np.ndarray, tfs: np.ndarray) -> None:
    row = conn.execute(
        "SELECT ids, tfs FROM kw_blocks WHERE term = ? AND block = ?", (term, block)
    ).fetchone()
    if row is not None:
        old_ids, old_tfs = _arrays(row, block)
        keep = _absent(old_ids, np.sort(ids))  # a row written twice keeps its newest postings
        ids = np.concatenate([old_ids[keep], ids])
        tfs = np.concatenate([old_tfs[keep], tfs])
    _write_block(conn, term, block, ids, tfs)


def catch_up(
    conn: apsw.Connection,
    *,
    checkpoint: Callable[[], None] = lambda: None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Fill the index for chunks that were there before it (resumable: one block of ids per transaction;
    `checkpoint` may raise Cancelled between blocks). Returns how many chunks it read."""
    done = 0
    tokens = Tokens(conn)
    while not ready(conn):
        checkpoint()
        with conn:
            start = int(built_to(conn)) + 1
            top = conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
            end = ((start >> BLOCK_BITS) + 1) << BLOCK_BITS  # up to the end of start's block
            rows = conn.execute(
                "SELECT c.id, CASE WHEN c.heading != '' THEN c.heading || char(10) || c.text ELSE c.text END,"
                " d.title, d.path FROM chunks c JOIN documents d ON d.id = c.document_id"
                " WHERE c.id >= ? AND c.id < ? ORDER BY c.id",
                (start, end),
            ).fetchall()
            # Removals above the cursor were never in the blocks.
            conn.execute("DELETE FROM kw_removed WHERE chunk_id >= ? AND chunk_id < ?", (start, end))
            new = tokens.postings((i, text, title, _display(path)) for i, text, title, path in rows)
            _merge_all(conn, new)
            db.set_meta(conn, META_KEY, "ready" if end > top else f"building {end - 1}")
        done += len(rows)
        progress(done, top)
    return done


def _display(stored_path: str) -> str:
    from .store import display_path  # store imports this module for its hooks

    return display_path(stored_path)


# -- queries ----------------------------------------------------------------------------------------------


@dataclass
class _Term:
    ids: np.ndarray  # int32 chunk ids with a live posting, ascending
    tfs: np.ndarray  # uint16 weighted term frequency x 10
    lens: np.ndarray  # uint16 chunk length

    @property
    def df(self) -> int:
        return len(self.ids)

    def weights(
        self, n: int, avgdl: float, dtype: type = np.float32, at: np.ndarray | None = None
    ) -> np.ndarray:
        """Each posting's bm25 term (FTS5's formula), or only those at positions `at`."""
        tfs = (self.tfs if at is None else self.tfs[at]).astype(dtype) / dtype(_TF_SCALE)
        lens = (self.lens if at is None else self.lens[at]).astype(dtype)
        idf = dtype(_idf(n, self.df))
        if dtype is np.float64:  # FTS5's expression, operation by operation
            return idf * ((tfs * (K1 + 1.0)) / (tfs + K1 * (1 - B + B * lens / avgdl)))
        # In place: this runs over every posting of the query's words.
        lens *= dtype(K1 * B / avgdl)
        lens += dtype(K1 * (1 - B))
        lens += tfs
        np.divide(tfs, lens, out=lens)
        lens *= idf * dtype(K1 + 1)
        return lens


def totals(conn: apsw.Connection) -> tuple[int, float]:
    """(rows, average row length in tokens) from FTS5's own totals record, as bm25() reads them."""
    row = conn.execute("SELECT block FROM chunks_fts_data WHERE id = 1").fetchone()
    values = _varints(row[0]) if row and row[0] else [0]
    n = values[0]
    return n, (sum(values[1:]) / n if n else 0.0)


def _varints(data: bytes) -> list[int]:
    """SQLite varints one after another (FTS5 records use them; 9-byte ones do not occur in these)."""
    out, value = [], 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            out.append(value)
            value = 0
    return out


def _absent(ids: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """Mask of `ids` (ascending) not in `gone` (ascending, usually small): O(len(gone) log len(ids))."""
    keep = np.ones(len(ids), bool)
    if len(gone) and len(ids):
        at = np.searchsorted(ids, gone)
        at = at[at < len(ids)]
        keep[at[np.isin(ids[at], gone)]] = False
    return keep


def _removed(conn: apsw.Connection) -> np.ndarray:
    """Ids in kw_removed, ascending (one string: tens of thousands of rows read one by one cost ms)."""
    text = conn.execute("SELECT group_concat(chunk_id) FROM (SELECT chunk_id FROM kw_removed ORDER BY 1)")
    ids = text.fetchone()[0]
    return np.array(ids.split(","), np.int64) if ids else np.zeros(0, np.int64)


def _lengths(conn: apsw.Connection) -> np.ndarray:
    """Every chunk's length in tokens, indexed by chunk id (0 where none), from the blocks' length rows."""
    rows = conn.execute("SELECT block, lens FROM kw_lengths").fetchall()
    size = 1 << BLOCK_BITS
    out = np.zeros(((rows[-1][0] + 1) if rows else 0) * size, np.uint16)
    for block, lens in rows:
        out[block * size : (block + 1) * size] = np.frombuffer(lens, np.uint16)
    return out


def _read_term(conn: apsw.Connection, term: str, removed: np.ndarray | None, lengths: np.ndarray) -> _Term:
    rows = conn.execute("SELECT block, ids, tfs FROM kw_blocks WHERE term = ? ORDER BY block", (term,))
    rows = rows.fetchall()
    # int32 ids (half the memory traffic of int64: most of a query's time is passes over these arrays)
    ids = np.frombuffer(b"".join(r[1] for r in rows), np.uint16).astype(np.int32)
    ids += np.repeat(np.array([r[0] << BLOCK_BITS for r in rows], np.int32), [len(r[1]) // 2 for r in rows])
    tfs = np.frombuffer(b"".join(r[2] for r in rows), np.uint16)
    lens = lengths[ids]
    if removed is not None and len(ids):
        keep = ~removed[np.minimum(ids, len(removed) - 1)] | (ids >= len(removed))
        ids, tfs, lens = ids[keep], tfs[keep], lens[keep]
    pending = conn.execute("SELECT chunk_id, tf, len FROM kw_pending WHERE term = ?", (term,)).fetchall()
    if pending:
        p = np.array(pending, dtype=np.int32)
        ids = np.concatenate([ids, p[:, 0]])
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        tfs = np.concatenate([tfs, p[:, 1].astype(np.uint16)])[order]
        lens = np.concatenate([lens, p[:, 2].astype(np.uint16)])[order]
    return _Term(ids, tfs, lens)


def _idf(n: int, df: int) -> float:
    idf = math.log((n - df + 0.5) / (df + 0.5))
    return idf if idf > 0 else 1e-6  # as FTS5: a word in over half the rows still counts a little


def search(
    conn: apsw.Connection, words: list[str], depth: int, within: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """(chunk id, bm25 as FTS5 gives it: negative, lower is better) for the best `depth` chunks holding any
    of `words` (index terms: each query word as FTS5 tokenizes it). One read transaction.

    `within`: only these chunk ids (a folder scope), scored with the whole library's statistics, as FTS5's
    bm25() scores a MATCH restricted by rowid."""
    with conn:
        n, avgdl = totals(conn)
        if n == 0:
            return []
        gone = _removed(conn)
        removed = None  # as a mask over chunk ids: one gather per posting, whatever their number
        if len(gone):
            removed = np.zeros(gone[-1] + 1, bool)
            removed[gone] = True
        lengths = _lengths(conn)
        cache: dict[str, _Term] = {}
        for term in words:
            if term not in cache:
                cache[term] = _read_term(conn, term, removed, lengths)
    # A word said twice (or two words with one stem) counts twice, as two phrases do in FTS5.
    terms = [cache[w] for w in words if cache[w].df]
    if not terms:
        return []
    scores = np.zeros(int(max(t.ids[-1] for t in terms)) + 1, np.float32)
    for t in terms:
        scores[t.ids] += t.weights(n, avgdl)
    if within is not None:
        outside = np.ones(len(scores), bool)
        outside[within[within < len(scores)]] = False
        scores[outside] = 0
        pool = [np.flatnonzero(scores)]
    else:
        # The depth-th best score among the rarest words' chunks is at most the depth-th best of all, so only
        # chunks scoring about that much or more can rank; those are re-scored exactly.
        pool = []
        for t in sorted(terms, key=lambda t: t.df):
            pool.append(t.ids)
            if sum(len(p) for p in pool) >= depth:
                break
    seen = scores[np.unique(np.concatenate(pool))]
    cut = np.partition(seen, len(seen) - depth)[len(seen) - depth] if len(seen) >= depth else 0.0
    candidates = np.flatnonzero(scores >= cut * (1 - _FLOAT_SLACK))
    candidates = candidates[scores[candidates] > 0]
    exact = np.zeros(len(candidates))
    for t in terms:
        at = np.searchsorted(t.ids, candidates)
        hit = at < t.df
        hit[hit] = t.ids[at[hit]] == candidates[hit]
        exact[hit] += t.weights(n, avgdl, np.float64, at[hit])
    order = np.lexsort((candidates, -exact))[:depth]
    return [(int(candidates[i]), -float(exact[i])) for i in order]


def size_bytes(conn: apsw.Connection) -> int:
    """Bytes the index's tables take (dbstat), for the benchmark's report."""
    names = json.dumps([*_TABLES, "kw_blocks_block", "kw_pending_chunk"])
    sql = "SELECT sum(pgsize) FROM dbstat WHERE name IN (SELECT value FROM json_each(?))"
    return conn.execute(sql, (names,)).fetchone()[0] or 0
