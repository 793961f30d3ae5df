"""Indexing with the real SQLite + FTS5 + sqlite-vec and a fast fake embedder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from almanac.core import db, store
from almanac.core.library import Library
from almanac.core.settings import Settings
from counting import CountingEmbedder
from indexcheck import problems
from pdfgen import make_pdf


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "garden.md").write_text("# Garden\n\n## Tomatoes\n\nTomatoes need full sun and deep watering.\n")
    (root / "recipe.txt").write_text("Pancakes: flour, eggs, milk. Whisk and fry in butter.\n")
    (root / "paper.pdf").write_bytes(
        make_pdf([["Quantum gravity is hard."], ["Page two talks about zebras."], ["Page three: yaks."]])
    )
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (root / "image.bin").write_bytes(bytes(range(256)) * 10)
    (root / ".env").write_text("SECRET_TOKEN=hunter2\n")
    (root / "server.pem").write_text("-----BEGIN PRIVATE KEY----- secretkeymaterial\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.md").write_text("dependency readme about lodash\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "diary.md").write_text("private diary entry\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside content must never be indexed\n")
    os.symlink(outside, root / "link-out.txt")
    return root


@pytest.fixture
def lib(tmp_path, hash_embedder):
    embedder = CountingEmbedder(hash_embedder)
    library = Library(tmp_path / "index.db", settings=Settings(chunk_tokens=40, chunk_overlap=5), embedder=embedder)
    yield library
    library.close()


def fts(lib, word):
    return [
        r[0]
        for r in lib.conn.execute(
            "SELECT d.path FROM chunks_fts f JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
            " WHERE chunks_fts MATCH ?",
            (f'"{word}"',),
        )
    ]


def test_first_index(lib, folder):
    lib.add_folder(folder)
    report = lib.index()
    s = lib.status()
    paths = {Path(p).name for (p,) in lib.conn.execute("SELECT path FROM documents WHERE status = 'indexed'")}
    assert paths == {"garden.md", "recipe.txt", "paper.pdf"}
    assert s.failed == 1 and Path(s.failures[0][0]).name == "broken.pdf" and s.failures[0][1]
    assert report.failed == 1
    assert s.chunks == s.embedded > 0
    for secret in ("hunter2", "secretkeymaterial", "lodash", "diary", "outside"):
        assert fts(lib, secret) == []
    pages = dict(lib.conn.execute("SELECT text, page FROM chunks WHERE text LIKE '%zebras%'").fetchall())
    assert list(pages.values()) == [2]
    heading = lib.conn.execute("SELECT heading FROM chunks WHERE text LIKE '%Tomatoes need%'").fetchone()[0]
    assert heading == "Garden > Tomatoes"
    assert problems(lib.conn) == []


def test_second_run_skips_unchanged(lib, folder):
    lib.add_folder(folder)
    lib.index()
    embedded_before = len(lib.embedder.texts)
    report = lib.index()
    assert report.indexed == 0 and report.unchanged >= 3
    assert len(lib.embedder.texts) == embedded_before
    # touched but identical: skipped by hash, and the new mtime is remembered
    os.utime(folder / "recipe.txt", ns=(1, 1))
    report = lib.index()
    assert report.indexed == 0
    assert lib.index().unchanged >= 3


def test_modify_replaces_chunks(lib, folder):
    lib.add_folder(folder)
    lib.index()
    (folder / "recipe.txt").write_text("Waffles need a hot iron and patience.\n")
    report = lib.index()
    assert report.indexed == 1
    assert fts(lib, "pancakes") == [] and len(fts(lib, "waffles")) == 1
    assert problems(lib.conn) == []


def test_an_edit_embeds_only_the_text_that_changed(lib, folder):
    animals = "otters herons badgers voles newts stoats hares larks moles toads owls".split()
    paragraphs = [f"Paragraph {i} is about {word} and nothing else at all." for i, word in enumerate(animals)]
    (folder / "long.md").write_text("\n\n".join(paragraphs) + "\n")
    lib.add_folder(folder)
    lib.index()
    chunks = lib.conn.execute("SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id"
                              " WHERE d.path LIKE '%long.md'").fetchone()[0]
    assert chunks >= 3
    before = len(lib.embedder.texts)
    paragraphs[-1] = "Paragraph 10 is about wrens now, and nothing else at all."
    (folder / "long.md").write_text("\n\n".join(paragraphs) + "\n")
    assert lib.index().indexed == 1
    new = lib.embedder.texts[before:]
    assert new and all("wrens" in t for t in new)  # the unchanged chunks kept their vectors
    assert lib.conn.execute("SELECT count(*) FROM chunks WHERE embedded = 0").fetchone()[0] == 0
    assert [Path(p).name for p in fts(lib, "otters")] == ["long.md"] and fts(lib, "owls") == []
    assert problems(lib.conn) == []


def test_delete_leaves_no_rows(lib, folder):
    lib.add_folder(folder)
    lib.index()
    (folder / "paper.pdf").unlink()
    (folder / "broken.pdf").unlink()
    report = lib.index()
    assert report.deleted == 2
    assert lib.conn.execute("SELECT count(*) FROM documents WHERE path LIKE '%.pdf'").fetchone()[0] == 0
    assert fts(lib, "zebras") == []
    assert problems(lib.conn) == []


def test_rename_and_move_keep_vectors(lib, folder):
    lib.add_folder(folder)
    lib.index()
    ids_before = lib.conn.execute("SELECT id FROM chunks WHERE text LIKE '%Tomatoes need%'").fetchall()
    embedded_before = len(lib.embedder.texts)
    (folder / "archive").mkdir()
    shutil.move(folder / "notes" / "garden.md", folder / "archive" / "vegetables.md")
    report = lib.index()
    assert report.moved == 1 and report.indexed == 0
    assert len(lib.embedder.texts) == embedded_before  # nothing re-embedded
    ids_after = lib.conn.execute("SELECT id FROM chunks WHERE text LIKE '%Tomatoes need%'").fetchall()
    assert ids_after == ids_before
    assert [Path(p).name for p in fts(lib, "vegetables")] == ["vegetables.md"]  # path is searchable
    assert problems(lib.conn) == []


def test_identical_content_embedded_once(lib, folder):
    text = "Identical paragraph about lighthouses and their keepers. " * 3
    (folder / "a.txt").write_text(text)
    (folder / "b.txt").write_text(text)
    lib.add_folder(folder)
    lib.index()
    assert sum("lighthouses" in t for t in lib.embedder.texts) == 1
    n = lib.conn.execute("SELECT count(*) FROM chunks WHERE text LIKE '%lighthouses%' AND embedded = 1").fetchone()[0]
    assert n == 2
    assert problems(lib.conn) == []


def test_embedding_model_change_reembeds_cleanly(tmp_path, folder, hash_embedder):
    db = tmp_path / "index.db"
    with Library(db, settings=Settings(), embedder=CountingEmbedder(hash_embedder)) as lib:
        lib.add_folder(folder)
        lib.index()
        assert store.vector_model(lib.conn) == ("test-hash-embedder", 64)
    other = CountingEmbedder(hash_embedder, name="other-model", dim=32)
    with Library(db, settings=Settings(), embedder=other) as lib:
        lib.index()  # no dimension-mismatch crash: vectors are dropped and made again
        s = lib.status()
        assert s.embedding_model == "other-model" and s.embedding_dim == 32
        assert s.chunks == s.embedded and len(other.texts) > 0
        assert problems(lib.conn) == []


def test_per_folder_ignore_file(lib, folder):
    (folder / ".almanacignore").write_text("notes/\n*.pdf\n")
    lib.add_folder(folder)
    lib.index()
    names = {Path(p).name for (p,) in lib.conn.execute("SELECT path FROM documents")}
    assert names == {"recipe.txt"}


def test_size_limit_is_a_recorded_failure(tmp_path, folder, hash_embedder):
    (folder / "big.txt").write_text("word " * 300_000)
    with Library(tmp_path / "i.db", settings=Settings(max_file_mb=1), embedder=hash_embedder) as lib:
        lib.add_folder(folder)
        lib.index()
        reasons = dict(lib.status().failures)
        assert "MB limit" in reasons[str(folder / "big.txt")]


def test_remove_folder_leaves_nothing(lib, folder):
    lib.add_folder(folder)
    lib.index()
    lib.remove_folder(folder)
    for table in ("documents", "chunks", "chunks_fts", "vec_chunks"):
        assert lib.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_chunk_size_change_rechunks_every_file(tmp_path, folder, hash_embedder):
    (folder / "long.txt").write_text(" ".join(f"w{i}" for i in range(400)))
    db = tmp_path / "index.db"
    with Library(db, settings=Settings(chunk_tokens=100, chunk_overlap=0), embedder=hash_embedder) as lib:
        lib.add_folder(folder)
        lib.index()
        assert lib.conn.execute("SELECT count(*) FROM chunks WHERE text LIKE 'w%'").fetchone()[0] == 4
    with Library(db, settings=Settings(chunk_tokens=50, chunk_overlap=0), embedder=hash_embedder) as lib:
        report = lib.index()
        assert report.indexed == 4  # every indexed file, though none changed
        assert lib.conn.execute("SELECT count(*) FROM chunks WHERE text LIKE 'w%'").fetchone()[0] == 8
        assert problems(lib.conn) == []
        assert lib.index().indexed == 0  # and only once


def test_a_library_of_schema_4_gets_the_scan_columns(tmp_path):
    conn = db.connect(tmp_path / "old.db")
    for step in db.MIGRATIONS[:4]:
        step(conn)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("INSERT INTO folders(path, added_at) VALUES ('/docs', 0)")
    conn.execute(
        "INSERT INTO documents(folder_id, path, size, mtime_ns, content_hash, status, indexed_at)"
        " VALUES (1, '/docs/a.pdf', 1, 1, 'h', 'indexed', 0)"
    )
    db.migrate(conn)
    assert db.schema_version(conn) == len(db.MIGRATIONS)
    assert store.document(conn, "/docs/a.pdf").unread_scans == 0  # taken as having none
    conn.close()


def test_text_read_with_ligatures_is_read_again_once(tmp_path, folder, hash_embedder):
    db_path = tmp_path / "index.db"
    with Library(db_path, settings=Settings(), embedder=hash_embedder) as lib:
        lib.add_folder(folder)
        lib.index()
        # As a library read before ligatures were letters: "ﬂour" for "flour", and not yet mended.
        with lib.conn:
            lib.conn.execute("UPDATE chunks SET text = replace(text, 'flour', 'ﬂour')")
            lib.conn.execute("DELETE FROM meta WHERE key = ?", (store.LIGATURES_META,))
    with Library(db_path, settings=Settings(), embedder=hash_embedder) as lib:
        report = lib.index()
        assert report.indexed == 1  # recipe.txt alone; the others keep their chunks
        assert lib.conn.execute("SELECT count(*) FROM chunks WHERE text LIKE '%ﬂ%'").fetchone()[0] == 0
        assert fts(lib, "flour") and lib.index().indexed == 0


class ColdEmbedder(CountingEmbedder):
    """An embedder that must be loaded first, as the real one is (its first load can take a minute)."""

    loaded = False

    def load(self):
        self.loaded = True


def test_a_cold_embedding_model_is_reported_while_it_loads(tmp_path, folder, hash_embedder):
    embedder = ColdEmbedder(hash_embedder)
    seen: list[tuple[str, bool]] = []
    with Library(tmp_path / "index.db", settings=Settings(chunk_tokens=40), embedder=embedder) as library:
        library.add_folder(folder)
        library.index(progress=lambda p: seen.append((p.phase, embedder.loaded)))
        library.index(progress=lambda p: seen.append((p.phase, embedder.loaded)))  # loaded: said once
    phases = [phase for phase, _ in seen]
    assert phases.count("preparing") == 1
    first = phases.index("preparing")
    assert seen[first] == ("preparing", False) and "embedding" in phases[first:]
    assert all(loaded for phase, loaded in seen if phase == "embedding")
