"""Database and settings problems reach the user as plain `AlmanacError`s, never as "this is a bug"."""

from __future__ import annotations

import json
import logging

import apsw
import pytest
from almanac.core.errors import DatabaseError
from almanac.core.library import Library
from almanac.core.settings import Settings


def test_a_database_busy_in_another_process_is_a_clear_error(tmp_path, hash_embedder):
    db_path = tmp_path / "i.db"
    folder = tmp_path / "docs"
    folder.mkdir()
    with Library(db_path, settings=Settings(), embedder=hash_embedder) as lib:
        lib.conn.set_busy_timeout(50)
        # Another program (a backup tool, sqlite3 in a terminal) holds a write lock on the file.
        other = apsw.Connection(str(db_path))
        other.execute("BEGIN IMMEDIATE")
        try:
            for call in (lambda: lib.add_folder(folder), lib.index):
                with pytest.raises(DatabaseError, match="locked by another program"):
                    call()
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert lib.add_folder(folder).path == str(folder)  # and it works again once the lock is gone


def test_a_damaged_index_file_is_a_clear_error(tmp_path, hash_embedder):
    db_path = tmp_path / "i.db"
    db_path.write_bytes(b"this is not an SQLite database, just some text" * 100)
    with pytest.raises(DatabaseError, match="damaged"):
        Library(db_path, settings=Settings(), embedder=hash_embedder)
    with pytest.raises(DatabaseError, match="damaged"):
        Library(db_path, settings=Settings(), embedder=hash_embedder, read_only=True)


def test_settings_out_of_range_load_as_defaults_with_a_message(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps({"top_k": 0, "chunk_tokens": 10**9, "rrf_k": 20, "extract_timeout_s": "soon", "threads": 4})
    )
    with caplog.at_level(logging.WARNING, logger="almanac.core.settings"):
        s = Settings.load(path)
    assert (s.top_k, s.chunk_tokens, s.extract_timeout_s) == (Settings.top_k, Settings.chunk_tokens, 60.0)
    assert (s.rrf_k, s.threads) == (20, 4)  # valid values are kept
    text = caplog.text
    assert "top_k = 0 is outside 1 to 50" in text and "chunk_tokens" in text and "extract_timeout_s" in text


def test_settings_overlap_must_be_below_chunk_size(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"chunk_tokens": 64, "chunk_overlap": 64}))
    s = Settings.load(path)
    assert s.chunk_tokens == 64 and s.chunk_overlap < 64


@pytest.mark.parametrize("content", ["[1, 2, 3]", "{not json", '"just a string"'])
def test_a_settings_file_that_is_not_settings_loads_defaults(tmp_path, content, caplog):
    path = tmp_path / "settings.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="almanac.core.settings"):
        assert Settings.load(path) == Settings()
    assert str(path) in caplog.text
