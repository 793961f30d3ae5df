"""Downloads against a real HTTP server on 127.0.0.1 serving the bundled GGUF, with cut connections."""

from __future__ import annotations

import hashlib
import shutil
import threading

import pytest
from almanac.core import download
from almanac.core.cancel import CancelToken
from almanac.core.download import ChecksumMismatch, DownloadError, Expected
from almanac.core.errors import Cancelled
from almanac.core.llm import bundled_llm_path
from servers import file_server


@pytest.fixture(scope="module")
def gguf(tmp_path_factory):
    """A copy of the bundled model (~100 MB) in a served folder, with its size and SHA-256."""
    folder = tmp_path_factory.mktemp("served")
    path = folder / "model.gguf"
    shutil.copyfile(bundled_llm_path(), path)
    data = path.read_bytes()
    return folder, path, len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


def test_cut_connection_is_resumed_with_range_and_verified(gguf, tmp_path):
    folder, _, size, sha, _ = gguf
    dest = tmp_path / "out" / "model.gguf"
    with file_server(folder) as (url, state):
        cut = size // 3
        state.cut_after = [cut]
        with pytest.raises(DownloadError, match="interrupted"):
            download.download(f"{url}/model.gguf", dest, Expected(size, sha), retries=0)
        assert not dest.exists()
        assert download.partial_bytes(dest) == cut  # the bytes that arrived are kept

        # A later run (another process, after a restart) continues from the partial file.
        seen = []
        got = download.download(f"{url}/model.gguf", dest, Expected(size, sha), progress=seen.append)
    assert got == sha
    assert dest.stat().st_size == size
    assert state.ranges == [None, f"bytes={cut}-"]
    assert seen[0].resumed_from == cut and seen[-1].done == size and seen[-1].total == size
    assert not download.part_path(dest).exists()


def test_retries_within_one_call_resume_from_where_each_cut_stopped(gguf, tmp_path):
    folder, _, size, sha, md5 = gguf
    dest = tmp_path / "model.gguf"
    with file_server(folder) as (url, state):
        state.cut_after = [1_000_000, 2_000_000]
        assert download.download(f"{url}/model.gguf", dest, Expected(size, None, md5), backoff_s=0.01) == sha
    assert state.ranges == [None, "bytes=1000000-", "bytes=3000000-"]


def test_checksum_mismatch_deletes_the_partial_file_and_says_why(gguf, tmp_path):
    folder, _, size, _, _ = gguf
    dest = tmp_path / "model.gguf"
    wrong = "0" * 64
    with file_server(folder) as (url, _), pytest.raises(ChecksumMismatch, match="SHA-256") as err:
        download.download(f"{url}/model.gguf", dest, Expected(size, wrong))
    assert wrong in str(err.value) and "deleted" in str(err.value)
    assert not dest.exists() and download.partial_bytes(dest) == 0


def test_a_corrupted_partial_file_fails_verification_after_resume(gguf, tmp_path):
    folder, _, size, sha, _ = gguf
    dest = tmp_path / "model.gguf"
    with file_server(folder) as (url, state):
        state.cut_after = [500_000]
        with pytest.raises(DownloadError):
            download.download(f"{url}/model.gguf", dest, Expected(size, sha), retries=0)
        part = download.part_path(dest)
        damaged = bytearray(part.read_bytes())
        damaged[100] ^= 0xFF
        part.write_bytes(bytes(damaged))
        with pytest.raises(ChecksumMismatch):
            download.download(f"{url}/model.gguf", dest, Expected(size, sha))
    assert not dest.exists() and download.partial_bytes(dest) == 0


def test_server_ignoring_range_restarts_from_zero(gguf, tmp_path):
    folder, _, size, sha, _ = gguf
    dest = tmp_path / "model.gguf"
    with file_server(folder) as (url, state):
        state.cut_after = [700_000]
        state.honour_range = False
        assert download.download(f"{url}/model.gguf", dest, Expected(size, sha), backoff_s=0.01) == sha


def test_partial_from_another_url_is_not_continued(gguf, tmp_path):
    folder, _, size, sha, _ = gguf
    dest = tmp_path / "model.gguf"
    with file_server(folder) as (url, state):
        state.cut_after = [400_000]
        with pytest.raises(DownloadError):
            download.download(f"{url}/model.gguf", dest, Expected(size, sha), retries=0)
        (folder / "other.gguf").write_bytes((folder / "model.gguf").read_bytes())
        download.download(f"{url}/other.gguf", dest, Expected(size, sha))
        assert state.ranges[-1] is None  # started over


def test_not_enough_disk_space_is_refused_before_starting(tmp_path):
    with pytest.raises(DownloadError, match="free disk space"):
        download.download("http://127.0.0.1:9/never", tmp_path / "huge.gguf", Expected(size=1 << 62))


def test_cancel_keeps_the_partial_file_and_pause_blocks(gguf, tmp_path):
    folder, _, size, sha, _ = gguf
    dest = tmp_path / "model.gguf"
    token = CancelToken()
    chunks = []

    def on_progress(p):
        chunks.append(p.done)
        if len(chunks) == 3:
            token.pause()
            # Resumed and then cancelled from another thread while the download waits.
            threading.Timer(0.3, token.cancel).start()

    with file_server(folder) as (url, _), pytest.raises(Cancelled):
        download.download(f"{url}/model.gguf", dest, Expected(size, sha), progress=on_progress, cancel=token)
    assert download.partial_bytes(dest) == chunks[-1] > 0
    assert len(chunks) == 3  # nothing was read while paused
