"""Shared test setup: a private data directory for every test, and a fast deterministic embedder."""

from __future__ import annotations

import os

import pytest
from almanac.core.embedding import HashEmbedder

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Tests never touch the real home directory."""
    from almanac.core import paths

    home = tmp_path / "almanac-home"
    monkeypatch.setenv("ALMANAC_HOME", str(home))
    paths.set_data_dir(None)
    yield home
    paths.set_data_dir(None)


@pytest.fixture
def hash_embedder():
    return HashEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from almanac.core.embedding import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder()
    e.load()
    return e
