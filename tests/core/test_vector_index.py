"""Vector index layouts on the real sqlite-vec (flat and DiskANN) and the rebuild between them."""

from __future__ import annotations

import numpy as np
import pytest
from almanac.core import db, store, vector_index
from almanac.core.cancel import CancelToken
from almanac.core.embedding import HashEmbedder
from almanac.core.errors import Cancelled
from almanac.core.library import Library
from almanac.core.search import Searcher
from almanac.core.settings import Settings
from indexcheck import problems

WORDS = "kettle tea bicycle chain garden shed vinegar boiling tokyo capital river bridge lamp oil paper".split()


def write_docs(root, n, start=0):
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        words = rng.choice(WORDS, size=12)
        (root / f"d{i:03d}.txt").write_text(" ".join(words) + f" note{i}")


def stored_vectors(conn) -> dict[int, bytes]:
    table = vector_index.active_table(conn)
    return dict(conn.execute(f"SELECT rowid, embedding FROM {table}").fetchall())


@pytest.fixture
def library(tmp_path, monkeypatch):
    monkeypatch.setattr(vector_index, "REBUILD_BATCH", 8)
    root = tmp_path / "lib"
    root.mkdir()
    write_docs(root, 60)
    lib = Library(tmp_path / "i.db", settings=Settings(), embedder=HashEmbedder())
    lib.add_folder(root)
    yield lib, root
    lib.close()


def test_small_library_is_flat_and_grows_into_the_graph_without_re_embedding(library, monkeypatch):
    lib, root = library
    lib.index()
    assert vector_index.layout(lib.conn) == vector_index.FLAT
    before = stored_vectors(lib.conn)
    assert len(before) == 60

    monkeypatch.setattr(vector_index, "ANN_MIN_CHUNKS", 50)
    embedded = []
    monkeypatch.setattr(lib.embedder, "embed", lambda texts: embedded.append(texts) or HashEmbedder().embed(texts))
    lib.index()
    assert embedded == []  # the copy re-used every stored vector
    assert vector_index.layout(lib.conn) == vector_index.DISKANN
    assert vector_index.active_table(lib.conn) == "vec_chunks_ann"
    assert stored_vectors(lib.conn) == before
    assert not lib.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'vec_chunks'").fetchone()
    assert problems(lib.conn) == []


def test_interrupted_rebuild_resumes_and_keeps_changes_made_meanwhile(library, monkeypatch):
    lib, root = library
    lib.index()
    monkeypatch.setattr(vector_index, "ANN_MIN_CHUNKS", 50)
    token = CancelToken()
    seen = []

    def stop_after_two_batches(p):
        seen.append(p)
        if p.chunks_total and p.chunks_done >= 16 and len(seen) > 3:
            token.cancel()

    with pytest.raises(Cancelled):
        lib.index(progress=stop_after_two_batches, cancel=token)
    target = vector_index.rebuild_target(lib.conn)
    assert target and target[2] > 0  # part copied
    # Searches still read the complete flat table meanwhile.
    s = Searcher(lib.db_path, lib.embedder)
    assert len(s.search("kettle tea", k=100, mode="vector").hits) == 60
    s.close()

    # Changes while the rebuild waits: a copied file deleted, one changed, one added.
    (root / "d000.txt").unlink()
    (root / "d001.txt").write_text("completely new words about lamps and oil")
    write_docs(root, 1, start=100)
    lib.index()
    assert vector_index.layout(lib.conn) == vector_index.DISKANN
    assert vector_index.rebuild_target(lib.conn) is None
    assert problems(lib.conn) == []
    dead = {r[0] for r in lib.conn.execute("SELECT id FROM vec_deleted")}  # d000 and d001's old chunk
    assert len(dead) == 2
    assert len(set(stored_vectors(lib.conn)) - dead) == 60


def test_graph_search_and_exact_mode_agree_with_numpy(library, monkeypatch):
    lib, root = library
    monkeypatch.setattr(vector_index, "ANN_MIN_CHUNKS", 50)
    lib.index()  # 60 chunks: the first table is already the graph
    assert vector_index.layout(lib.conn) == vector_index.DISKANN
    vecs = stored_vectors(lib.conn)
    ids = np.array(list(vecs))
    x = np.stack([np.frombuffer(b, dtype=np.float32) for b in vecs.values()])
    s = Searcher(lib.db_path, lib.embedder)
    try:
        for query in ("kettle tea garden", "river bridge lamp", "note7 paper oil"):
            q = HashEmbedder().embed([query])[0]
            sims = x @ q
            order = np.argsort(-sims, kind="stable")[:10]
            exact = s.search(query, k=10, mode="vector", exact=True).hits
            assert [h.vector_distance for h in exact] == pytest.approx(list(1 - sims[order]), abs=1e-5)
            ann = s.search(query, k=10, mode="vector").hits
            assert len({h.chunk_id for h in ann} & set(ids[order])) >= 8  # 60 nodes: the graph is near exact
            scoped = s.search(query, k=5, mode="vector", folders=[str(root / "d003.txt")]).hits
            assert [h.path.rsplit("/", 1)[1] for h in scoped] == ["d003.txt"]
    finally:
        s.close()


def test_model_change_on_a_big_library_makes_the_graph_directly(library, monkeypatch):
    lib, _ = library
    lib.index()
    monkeypatch.setattr(vector_index, "ANN_MIN_CHUNKS", 50)
    assert store.ensure_vector_tables(lib.conn, "another-model", 64) is True
    assert vector_index.layout(lib.conn) == vector_index.DISKANN
    assert stored_vectors(lib.conn) == {}
    assert lib.conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1").fetchone()[0] == 0
    assert db.get_meta(lib.conn, "embed_model") == "another-model"


def test_deleted_vectors_are_skipped_then_dropped_by_a_rebuild(library, monkeypatch):
    """A DiskANN delete scans the whole graph, so deleted chunks are marked dead; searches skip them, and a
    rebuild once they are DEAD_SHARE of the graph drops them for good."""
    lib, root = library
    monkeypatch.setattr(vector_index, "ANN_MIN_CHUNKS", 50)
    lib.index()
    gone = ["d010.txt", "d011.txt", "d012.txt"]
    gone_ids = {
        r[0]
        for r in lib.conn.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.path LIKE '%d01_.txt'"
        )
    }
    assert len(gone_ids) == 10
    for name in gone:
        (root / name).unlink()
    lib.indexer.sync()
    dead = {r[0] for r in lib.conn.execute("SELECT id FROM vec_deleted")}
    assert len(dead) == 3 and dead < gone_ids
    assert dead <= set(stored_vectors(lib.conn))  # still in the graph
    assert problems(lib.conn) == []
    s = Searcher(lib.db_path, lib.embedder)
    try:
        for exact in (False, True):
            hits = s.search("kettle tea garden river lamp", k=100, mode="vector", exact=exact).hits
            assert hits and not {h.chunk_id for h in hits} & dead
    finally:
        s.close()
    assert not vector_index.needs_rebuild(lib.conn)  # 3 of 60: below DEAD_SHARE
    monkeypatch.setattr(vector_index, "DEAD_SHARE", 0.01)
    lib.index()
    assert lib.conn.execute("SELECT count(*) FROM vec_deleted").fetchone()[0] == 0
    assert not set(stored_vectors(lib.conn)) & dead
    assert len(stored_vectors(lib.conn)) == 57
    assert vector_index.active_table(lib.conn) == "vec_chunks_ann"
    assert problems(lib.conn) == []


@pytest.mark.parametrize(("lists", "expected"), [(((0, 16), (60, 48)), 48), (((0, 16), (61, 48)), 16)])
def test_the_graph_search_list_grows_with_the_library(library, monkeypatch, lists, expected):
    lib, _ = library
    monkeypatch.setattr(vector_index, "ANN_MIN_CHUNKS", 50)
    lib.index()
    assert vector_index.layout(lib.conn) == vector_index.DISKANN
    monkeypatch.setattr(vector_index, "ANN_SEARCH_LISTS", lists)
    asked = []

    def trace(_cursor, sql, bindings):
        if "vec_chunks_ann WHERE embedding MATCH" in sql:
            asked.append(bindings[1])
        return True

    s = Searcher(lib.db_path, lib.embedder)
    s.conn.exec_trace = trace
    try:
        assert s.search("kettle tea", mode="vector", k=5).hits
    finally:
        s.close()
    assert asked == [expected]  # 60 chunks embedded: the graph is searched with that size's L


def test_growing_into_the_graph_is_reported_as_building_the_vector_index(library, monkeypatch):
    lib, _ = library
    lib.index()
    monkeypatch.setattr(vector_index, "ANN_MIN_CHUNKS", 50)
    seen = []
    lib.index(progress=seen.append)
    building = [p for p in seen if p.phase == "building"]
    assert building and {p.current for p in building} == {"vector index"}
    assert building[-1].chunks_done == building[-1].chunks_total == 60
