"""keyword_index gives exactly FTS5's bm25 ranking, through every kind of change, on real SQLite + FTS5."""

from __future__ import annotations

import random

import pytest
from almanac.core import db, keyword_index, search, store
from almanac.core.chunking import Chunk
from almanac.core.embedding import HashEmbedder
from almanac.core.errors import Cancelled
from almanac.core.library import Library
from almanac.core.settings import Settings

VOCAB = (
    "kettle vinegar descale boiling water tea green leaves brew cup chain bicycle gear oil quiet wheel spoke"
    " garden soil compost seed tomato basil river bridge stone arch winter snow frost morning evening"
).split()
QUERIES = [
    "kettle vinegar",
    "green tea brewing in the morning",
    "bicycle chain oil wheel spoke gear",
    "tomatoes seeds compost garden soil basil",
    "stone bridge arch over the river in winter snow",
    "frost",
    "descaled kettles boil",  # stems: descal, kettl, boil
    "notes",  # in every path
    "water water",  # one word said twice counts once (the query parser keeps distinct words)
]


@pytest.fixture(autouse=True)
def small_index(monkeypatch):
    """Blocks of 8 chunk ids and folds every few documents, so every path runs on a small library."""
    monkeypatch.setattr(keyword_index, "BLOCK_BITS", 3)
    monkeypatch.setattr(keyword_index, "FOLD_POSTINGS", 400)
    monkeypatch.setattr(keyword_index, "FOLD_REMOVED", 15)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCAB) + rng.choice(["", "s", "ing", "ed"]) for _ in range(words))


def _put(conn, folder_id: int, path: str, rng: random.Random) -> int:
    chunks = []
    for i in range(rng.randint(1, 4)):
        text = _text(rng, rng.randint(3, 40))
        chunks.append(store.NewChunk(Chunk(text, 0, len(text), 0), None, "Heading" if i == 1 else ""))
    return store.replace_document(
        conn,
        folder_id=folder_id,
        path=path,
        size=1,
        mtime_ns=1,
        digest=f"{rng.random()}",
        kind="text",
        title=_text(rng, rng.randint(0, 3)),
        chunks=chunks,
    )


def _terms(conn, query: str) -> list[str]:
    tokens = keyword_index.Tokens(conn)
    return [t for w in search.KeywordQuery.parse(query).words for t in tokens.query(w)]


def assert_same_as_fts(conn) -> None:
    """Every chunk that matches, with FTS5's score (the whole ranking, so ties cannot hide a difference)."""
    for query in QUERIES:
        match = search.fts_query(query)
        fts = conn.execute(
            "SELECT rowid, bm25(chunks_fts, 1.0, 0.5, 0.2) FROM chunks_fts WHERE chunks_fts MATCH ?", (match,)
        ).fetchall()
        mine = keyword_index.search(conn, _terms(conn, query), depth=100_000)
        assert len(mine) == len(fts), query
        assert dict(mine) == pytest.approx(dict(fts), rel=1e-9, abs=1e-12), query
        scores = [s for _, s in mine]
        assert scores == sorted(scores), query


def _library(tmp_path):
    conn = db.open_writer(tmp_path / "kw.db")
    a = store.add_folder(conn, str(tmp_path / "a"))
    b = store.add_folder(conn, str(tmp_path / "b"))
    return conn, a, b


def test_same_ranking_as_fts5_through_every_change(tmp_path):
    rng = random.Random(7)
    conn, a, b = _library(tmp_path)
    try:
        assert keyword_index.ready(conn)  # a new library is indexed from its first chunk
        paths = [
            (a if i % 2 else b, f"{tmp_path}/{'a' if i % 2 else 'b'}/notes {i}/doc{i}.txt") for i in range(80)
        ]
        for folder, path in paths:
            _put(conn, folder, path, rng)
        assert conn.execute("SELECT count(*) FROM kw_blocks").fetchone()[0] > 0  # folds happened
        assert_same_as_fts(conn)

        docs = [r[0] for r in conn.execute("SELECT id FROM documents ORDER BY id")]
        for folder, path in paths[:15]:
            _put(conn, folder, path, rng)  # changed files: chunks replaced
        store.delete_documents(conn, docs[20:30])
        for doc_id in docs[30:36]:
            old = conn.execute("SELECT path FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
            store.move_document(conn, doc_id, old.replace("notes", "garden kettle"), a, 1, 1)
        store.record_failure(
            conn, folder_id=a, path=paths[41][1], size=1, mtime_ns=1, digest="x", reason="bad"
        )
        assert conn.execute("SELECT count(*) FROM kw_removed").fetchone()[0] > 0  # masked, not yet purged
        assert_same_as_fts(conn)

        keyword_index.fold(conn)
        assert conn.execute("SELECT count(*) FROM kw_pending").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM kw_removed").fetchone()[0] == 0
        assert_same_as_fts(conn)

        store.remove_folder(conn, b)
        assert_same_as_fts(conn)
        keyword_index.fold(conn)
        assert_same_as_fts(conn)
        for _, ids in conn.execute("SELECT term, ids FROM kw_blocks"):
            assert ids  # emptied rows are deleted, not kept empty
    finally:
        conn.close()


def test_a_fold_with_a_time_budget_purges_a_block_at_a_time(tmp_path, monkeypatch):
    """The writer's folds purge the blocks with most removed chunks first and stop at the budget; the rest
    stay masked, and the ranking is FTS5's at every step."""
    rng = random.Random(5)
    conn, a, _ = _library(tmp_path)
    try:
        for i in range(60):
            _put(conn, a, f"{tmp_path}/a/notes/doc{i}.txt", rng)
        keyword_index.fold(conn)
        monkeypatch.setattr(keyword_index, "FOLD_REMOVED", 10**9)  # from here, folds only when asked
        monkeypatch.setattr(keyword_index, "FOLD_POSTINGS", 10**9)
        docs = [r[0] for r in conn.execute("SELECT id FROM documents ORDER BY id")]
        store.delete_documents(conn, docs[::3])  # chunks removed across many blocks
        # A moved document keeps its chunk ids: removed and pending at once, so its blocks always go.
        moved = docs[1]
        old = conn.execute("SELECT path FROM documents WHERE id = ?", (moved,)).fetchone()[0]
        store.move_document(conn, moved, old.replace("notes", "garden kettle"), a, 1, 1)
        bits = keyword_index.BLOCK_BITS
        moved_blocks = {r[0] >> bits for r in conn.execute("SELECT id FROM chunks WHERE document_id = ?", (moved,))}

        def masked_blocks() -> set[int]:
            return {r[0] >> bits for r in conn.execute("SELECT chunk_id FROM kw_removed")}

        before = masked_blocks()
        assert moved_blocks <= before and len(before - moved_blocks) > 3
        assert_same_as_fts(conn)
        keyword_index.fold(conn, budget_s=0.0)  # the moved document's blocks, and nothing more
        assert masked_blocks() == before - moved_blocks
        assert_same_as_fts(conn)
        while left := masked_blocks():
            keyword_index.fold(conn, budget_s=0.0)  # over budget at once: one block, the most removed
            assert len(masked_blocks()) == len(left) - 1
            assert_same_as_fts(conn)
    finally:
        conn.close()


def test_an_older_library_is_filled_in_resumably(tmp_path):
    rng = random.Random(11)
    conn, a, _ = _library(tmp_path)
    for i in range(40):
        _put(conn, a, f"{tmp_path}/a/doc{i}.txt", rng)
    _downgrade(conn)
    conn.close()
    conn = db.open_writer(tmp_path / "kw.db")
    try:
        assert not keyword_index.ready(conn)
        reader = search.Searcher(tmp_path / "kw.db", HashEmbedder())
        try:  # FTS5 answers until the index is complete
            assert reader._index_terms(reader.conn, ["kettle"]) is None
        finally:
            reader.close()
        # Changes while it fills: a new document (above the cursor: read later), deleted ones (the first
        # block of ids left empty).
        _put(conn, a, f"{tmp_path}/a/new.txt", rng)
        first = conn.execute("SELECT DISTINCT document_id FROM chunks WHERE id <= 8").fetchall()
        store.delete_documents(conn, [r[0] for r in first])
        steps = 0

        def stop_after_two() -> None:
            nonlocal steps
            steps += 1
            if steps == 3:
                raise Cancelled

        with pytest.raises(Cancelled):
            keyword_index.catch_up(conn, checkpoint=stop_after_two)
        assert keyword_index.built_to(conn) == 15  # two blocks of 8 ids
        _put(conn, a, f"{tmp_path}/a/doc3.txt", rng)  # replaced below the cursor and above it
        keyword_index.catch_up(conn)
        assert keyword_index.ready(conn)
        assert_same_as_fts(conn)
    finally:
        conn.close()


def test_the_first_format_is_made_again(tmp_path):
    """Migration 4 replaces migration 3's layout (ids as uint32, a length per posting) and refills it."""
    rng = random.Random(2)
    conn, a, _ = _library(tmp_path)
    for i in range(20):
        _put(conn, a, f"{tmp_path}/a/doc{i}.txt", rng)
    keyword_index.fold(conn)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    conn = db.open_writer(tmp_path / "kw.db")
    try:
        assert db.get_meta(conn, keyword_index.META_KEY) == "building 0"
        assert conn.execute("SELECT count(*) FROM kw_blocks").fetchone()[0] == 0
        keyword_index.catch_up(conn)
        assert_same_as_fts(conn)
    finally:
        conn.close()


def test_searcher_uses_it_with_the_same_results(tmp_path, monkeypatch):
    root = tmp_path / "lib"
    root.mkdir()
    rng = random.Random(3)
    for i in range(30):
        (root / f"n{i}.txt").write_text(_text(rng, 60))
    (root / "incident.txt").write_text("Ticket WOMBAT-OK-14 closed after the kettle rollback.")
    emb = HashEmbedder()
    with Library(tmp_path / "i.db", settings=Settings(), embedder=emb) as lib:
        lib.add_folder(root)
        lib.index()
    s = search.Searcher(tmp_path / "i.db", emb)
    try:
        for query in [*QUERIES, "WOMBAT-OK-14 kettle", '"green tea" kettle']:
            monkeypatch.setattr(search, "KEYWORD_INDEX_MIN_CHUNKS", 10**9)
            fts = s.search(query, k=200, mode="keyword").hits
            monkeypatch.setattr(search, "KEYWORD_INDEX_MIN_CHUNKS", 0)
            assert s._index_terms(s.conn, search.KeywordQuery.parse(query).words) is not None
            mine = s.search(query, k=200, mode="keyword").hits
            # Every match with its score; two different sums can tie to the last bit, so not the tie order.
            assert {h.chunk_id: h.keyword_score for h in mine} == pytest.approx(
                {h.chunk_id: h.keyword_score for h in fts}, rel=1e-12
            ), query
            assert len(s.search(query, k=10, mode="hybrid").hits) == 10
        hits = s.search("WOMBAT-OK-14", k=3, mode="keyword").hits
        assert hits[0].path.endswith("incident.txt") and hits[0].keyword_rank == 1
    finally:
        s.close()


def _downgrade(conn) -> None:
    """Make the library look as it did before migration 3: no keyword index."""
    conn.execute(
        "DROP TRIGGER kw_forget; DROP TABLE kw_blocks; DROP TABLE kw_lengths; DROP TABLE kw_pending;"
        " DROP TABLE kw_removed; DELETE FROM meta WHERE key = 'keyword_index'; PRAGMA user_version = 2"
    )


def test_indexing_fills_in_an_older_library(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    rng = random.Random(5)
    for i in range(12):
        (root / f"n{i}.txt").write_text(_text(rng, 80))
    emb = HashEmbedder()
    with Library(tmp_path / "i.db", settings=Settings(), embedder=emb) as lib:
        lib.add_folder(root)
        lib.index()
    conn = db.open_writer(tmp_path / "i.db")
    _downgrade(conn)
    conn.close()
    with Library(tmp_path / "i.db", settings=Settings(), embedder=emb) as lib:
        assert not keyword_index.ready(lib.indexer.conn)  # migrated, not filled yet
        lib.index()  # nothing changed on disk: the run only fills the keyword index in
        assert keyword_index.ready(lib.indexer.conn)
        assert_same_as_fts(lib.indexer.conn)
