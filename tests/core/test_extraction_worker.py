"""The extraction child's memory cap (RLIMIT_AS) and its abort from another thread."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from almanac.core.errors import ExtractionError
from almanac.core.extractors.worker import ALLOC_ENV, SLEEP_ENV, ExtractionWorker

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")


@linux_only
def test_a_file_that_needs_more_memory_than_the_cap_fails_alone(tmp_path: Path, monkeypatch) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello", encoding="utf-8")
    # The child allocates 2 GiB before reading (the test hook stands in for a decompression bomb); its cap
    # is 1 GiB, so the allocation fails in the child, not in this process or the machine.
    monkeypatch.setenv(ALLOC_ENV, str(2 * 1024**3))
    with ExtractionWorker(timeout_s=60, memory_limit_mb=1024) as worker:
        with pytest.raises(ExtractionError, match="more than the 1024 MB memory limit"):
            worker.extract(note)
        pid = worker._process.pid
        monkeypatch.delenv(ALLOC_ENV)
    # Under the cap everything works: a fresh child (the hook is read at spawn) reads the file.
    with ExtractionWorker(timeout_s=60, memory_limit_mb=1024) as worker:
        assert worker.extract(note).sections[0].text == "hello"
        assert worker._process.pid != pid


@linux_only
def test_the_cap_is_set_in_the_child_only(tmp_path: Path) -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    note = tmp_path / "note.txt"
    note.write_text("hello", encoding="utf-8")
    with ExtractionWorker(timeout_s=60, memory_limit_mb=1024) as worker:
        worker.extract(note)
        with open(f"/proc/{worker._process.pid}/limits", encoding="ascii") as fh:
            line = next(row for row in fh if row.startswith("Max address space"))
        assert str(1024 * 1024 * 1024) in line
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_abort_ends_a_running_extraction_at_once(tmp_path: Path, monkeypatch) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello", encoding="utf-8")
    monkeypatch.setenv(SLEEP_ENV, "30")  # a file that takes "forever"
    worker = ExtractionWorker(timeout_s=60)
    try:
        worker._start()
        threading.Timer(0.3, worker.abort).start()  # from another thread, as the window closing does
        started = time.monotonic()
        with pytest.raises(ExtractionError):
            worker.extract(note)
        assert time.monotonic() - started < 5
        with pytest.raises(ExtractionError, match="stopped"):  # and it takes no more work
            worker.extract(note)
    finally:
        worker.close()
    assert worker._process is None
