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


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """One machine-wide cache for the whole run (the embedder's ONNX export is made once, not per test)."""
    folder = tmp_path_factory.mktemp("almanac-cache")
    previous = os.environ.get("ALMANAC_CACHE")
    os.environ["ALMANAC_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("ALMANAC_CACHE", None)
    else:
        os.environ["ALMANAC_CACHE"] = previous


@pytest.fixture
def hash_embedder():
    return HashEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from almanac.core.embedding import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder()
    e.load()
    return e
