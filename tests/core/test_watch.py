"""Folder watching with real file-system events (inotify here), real SQLite and the fast fake embedder."""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from almanac.core import store, watch
from almanac.core.cancel import CancelToken
from almanac.core.errors import Cancelled
from almanac.core.library import Library
from almanac.core.settings import Settings
from almanac.core.watch import FolderWatcher, watch_forever
from counting import CountingEmbedder
from indexcheck import problems

DEBOUNCE = 0.2


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "docs"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "garden.md").write_text("# Garden\n\nTomatoes need full sun and deep watering.\n")
    (root / "recipe.txt").write_text("Pancakes: flour, eggs, milk. Whisk and fry in butter.\n")
    return root


@pytest.fixture
def lib(tmp_path, hash_embedder, root):
    library = Library(
        tmp_path / "index.db",
        settings=Settings(chunk_tokens=40, chunk_overlap=5),
        embedder=CountingEmbedder(hash_embedder),
    )
    library.add_folder(root)
    library.index()
    yield library
    library.close()


@pytest.fixture
def indexed(monkeypatch):
    """How many times each path was (re)written with fresh chunks."""
    counts: Counter[str] = Counter()
    real = store.replace_document

    def counting(conn, **kw):
        counts[kw["path"]] += 1
        return real(conn, **kw)

    monkeypatch.setattr(store, "replace_document", counting)
    return counts


@pytest.fixture
def make_watcher(lib):
    made: list[FolderWatcher] = []

    def make(**kw) -> FolderWatcher:
        opts = dict(debounce_s=DEBOUNCE, settle_s=0.2, poll_interval_s=0.3, check_interval_s=0.2) | kw
        w = FolderWatcher(lib.folders(), lib.indexer.rules_for, **opts)
        w.start()
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def wait_until(lib, watcher, cond, timeout=10.0):
    """Run the writer loop (apply ready changes, then embed) until `cond()` holds."""
    deadline = time.monotonic() + timeout
    while True:
        watcher.apply_ready(lib, embed=True)
        if cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; states: {watcher.states()}")
        time.sleep(0.05)


def fts(lib, word):
    """Documents whose chunks match `word` (each once)."""
    return sorted(
        {
            r[0]
            for r in lib.conn.execute(
                "SELECT d.path FROM chunks_fts f JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
                " WHERE chunks_fts MATCH ?",
                (f'"{word}"',),
            )
        }
    )


def doc_paths(lib):
    return {r[0] for r in lib.conn.execute("SELECT path FROM documents")}


def settle(lib, watcher, seconds=3 * DEBOUNCE):
    """Keep applying for a while (to show that something does NOT happen)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        watcher.apply_ready(lib, embed=True)
        time.sleep(0.05)


def test_create_modify_delete(lib, root, make_watcher):
    w = make_watcher()
    assert w.states()[str(root)].state == "watching"
    f = root / "notes" / "new.md"
    f.write_text("Zucchini grow fast in summer.\n")
    wait_until(lib, w, lambda: fts(lib, "zucchini") == [str(f)])
    assert lib.status().chunks == lib.status().embedded  # vectors too, with embed=True
    assert "added docs/notes/new.md" in w.states()[str(root)].last_change

    f.write_text("Aubergines like heat.\n")
    wait_until(lib, w, lambda: fts(lib, "aubergines") == [str(f)])
    assert fts(lib, "zucchini") == []
    assert w.states()[str(root)].last_change.startswith("updated docs/notes/new.md")

    f.unlink()
    wait_until(lib, w, lambda: str(f) not in doc_paths(lib))
    assert fts(lib, "aubergines") == []
    assert problems(lib.conn) == []


def test_move_and_rename_folder_keep_vectors(lib, root, make_watcher, indexed):
    w = make_watcher()
    embedded = len(lib.embedder.texts)
    chunk_ids = {r[0] for r in lib.conn.execute("SELECT id FROM chunks")}

    os.rename(root / "recipe.txt", root / "notes" / "pancakes.txt")
    wait_until(lib, w, lambda: fts(lib, "pancakes") == [str(root / "notes" / "pancakes.txt")])

    os.rename(root / "notes", root / "journal")
    moved = {str(root / "journal" / "garden.md"), str(root / "journal" / "pancakes.txt")}
    wait_until(lib, w, lambda: doc_paths(lib) == moved)
    assert fts(lib, "tomatoes") == [str(root / "journal" / "garden.md")]
    assert fts(lib, "journal") == sorted(moved)  # the path column of the FTS rows follows
    assert len(lib.embedder.texts) == embedded and not indexed  # nothing re-read, nothing re-embedded
    assert {r[0] for r in lib.conn.execute("SELECT id FROM chunks")} == chunk_ids
    assert "moved docs/notes -> docs/journal (2 files)" in w.states()[str(root)].last_change

    # A move whose content changed meanwhile is indexed again.
    os.rename(root / "journal" / "garden.md", root / "garden.md")
    (root / "garden.md").write_text("Beans climb poles.\n")
    wait_until(lib, w, lambda: fts(lib, "beans") == [str(root / "garden.md")])
    assert fts(lib, "tomatoes") == [] and str(root / "journal" / "garden.md") not in doc_paths(lib)
    assert problems(lib.conn) == []


def test_folder_moved_in_and_out(lib, root, tmp_path, make_watcher):
    w = make_watcher()
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "quince.md").write_text("Quince jelly recipe.\n")
    os.rename(outside, root / "imported")
    wait_until(lib, w, lambda: fts(lib, "quince") == [str(root / "imported" / "deep" / "quince.md")])
    os.rename(root / "notes", tmp_path / "gone-notes")
    wait_until(lib, w, lambda: fts(lib, "tomatoes") == [])
    assert doc_paths(lib) == {str(root / "recipe.txt"), str(root / "imported" / "deep" / "quince.md")}
    assert problems(lib.conn) == []


def test_editor_atomic_save(lib, root, make_watcher, indexed):
    w = make_watcher()
    target = root / "notes" / "garden.md"
    for tmp_name in ("garden.md.tmp", ".#garden.md", "garden.md~"):
        tmp = root / "notes" / tmp_name
        with open(tmp, "w") as fh:
            for i in range(5):
                fh.write(f"Basil {tmp_name} line {i} about pesto.\n")
                fh.flush()
        os.replace(tmp, target)
        wait_until(
            lib, w, lambda name=tmp_name: fts(lib, "pesto") == [str(target)] and indexed[str(target)] >= 1
        )
        settle(lib, w)
        assert indexed[str(target)] == 1, "one save, one modification"
        indexed.clear()
        assert all(Path(p).parent.name != "notes" or Path(p).name == "garden.md" for p in doc_paths(lib))
    assert fts(lib, "tomatoes") == []
    assert problems(lib.conn) == []


def test_storm_of_2000_files_indexed_once_each(lib, root, make_watcher, indexed):
    w = make_watcher()
    storm = root / "storm"
    storm.mkdir()
    for i in range(2000):
        (storm / f"f{i:04d}.txt").write_text(f"file number{i} in the storm\n")
    wait_until(lib, w, lambda: len(store.documents_under(lib.conn, str(storm))) == 2000, timeout=30)
    settle(lib, w)
    assert len(store.documents_under(lib.conn, str(storm))) == 2000
    assert len(indexed) == 2000 and set(indexed.values()) == {1}
    assert fts(lib, "number1234") == [str(storm / "f1234.txt")]
    assert lib.status().chunks == lib.status().embedded
    assert problems(lib.conn) == []


def test_file_being_written_is_indexed_once_complete(lib, root, make_watcher, indexed):
    w = make_watcher(debounce_s=0.5)
    big = root / "big.txt"

    def write_slowly():
        with open(big, "w") as fh:
            for i in range(16):  # a chunk every 0.1 s for 1.5 s: never quiet for 0.5 s until done
                fh.write(f"part{i} " * 50 + "\n")
                fh.flush()
                time.sleep(0.1)
            fh.write("theend\n")

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        wait_until(lib, w, lambda: str(big) in doc_paths(lib))
    finally:
        writer.join()
    settle(lib, w, 1.0)
    assert indexed[str(big)] == 1
    assert fts(lib, "theend") == [str(big)] and fts(lib, "part15") == [str(big)]
    assert problems(lib.conn) == []


def test_ignore_rules_apply_to_events(lib, root, make_watcher):
    w = make_watcher()
    (root / ".env").write_text("SECRET_TOKEN=hunter2\n")
    (root / "node_modules" / "dep").mkdir(parents=True)
    (root / "node_modules" / "dep" / "readme.md").write_text("lodash readme\n")
    (root / "draft.md.swp").write_text("swapfile junk\n")
    (root / "secret.md").write_text("Confidential plans for mars.\n")
    wait_until(lib, w, lambda: fts(lib, "mars") == [str(root / "secret.md")])
    settle(lib, w)
    assert fts(lib, "hunter2") == [] and fts(lib, "lodash") == [] and fts(lib, "junk") == []

    (root / ".almanacignore").write_text("secret.md\n")
    wait_until(lib, w, lambda: fts(lib, "mars") == [])
    assert "ignore rules changed" in w.states()[str(root)].last_change
    (root / "secret.md").write_text("Confidential plans for venus.\n")
    settle(lib, w)
    assert fts(lib, "venus") == []

    (root / ".almanacignore").unlink()
    wait_until(lib, w, lambda: fts(lib, "venus") == [str(root / "secret.md")])
    assert problems(lib.conn) == []


def test_watch_limit_falls_back_to_polling(lib, root, make_watcher):
    def exhausted():
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    w = make_watcher(native_observer=exhausted)
    state = w.states()[str(root)]
    assert state.state == "polling" and "watch limit reached" in state.label
    (root / "notes" / "polled.md").write_text("Rhubarb crumble.\n")
    wait_until(lib, w, lambda: fts(lib, "rhubarb") == [str(root / "notes" / "polled.md")])
    (root / "notes" / "polled.md").unlink()
    wait_until(lib, w, lambda: fts(lib, "rhubarb") == [])
    assert problems(lib.conn) == []


def test_folder_disappears_and_comes_back(lib, root, tmp_path, make_watcher):
    w = make_watcher()
    before = doc_paths(lib)
    shutil.move(root, tmp_path / "unplugged")  # like a drive going away: the path no longer exists
    wait_until(lib, w, lambda: w.states()[str(root)].state == "missing")
    settle(lib, w)
    assert doc_paths(lib) == before, "a folder that went away keeps its index"
    assert "index is kept" in w.states()[str(root)].detail

    shutil.rmtree(tmp_path / "unplugged" / "notes")
    (tmp_path / "unplugged" / "plums.md").write_text("Plum tart.\n")
    shutil.move(tmp_path / "unplugged", root)
    wait_until(lib, w, lambda: fts(lib, "plum") == [str(root / "plums.md")])
    assert w.states()[str(root)].state == "watching"
    assert doc_paths(lib) == {str(root / "recipe.txt"), str(root / "plums.md")}
    (root / "later.md").write_text("Watched again: figs.\n")
    wait_until(lib, w, lambda: fts(lib, "figs") == [str(root / "later.md")])

    shutil.rmtree(root)  # deleted for good: still kept (the user removes the folder from the library)
    wait_until(lib, w, lambda: w.states()[str(root)].state == "missing")
    assert len(doc_paths(lib)) == 3
    assert problems(lib.conn) == []


def test_pause_and_resume(lib, root, make_watcher):
    w = make_watcher()
    w.pause()
    (root / "paused.md").write_text("Olives wait.\n")
    settle(lib, w)
    assert fts(lib, "olives") == []
    state = w.states()[str(root)]
    assert state.state == "paused" and state.pending >= 1
    w.resume()
    wait_until(lib, w, lambda: fts(lib, "olives") == [str(root / "paused.md")])
    assert w.states()[str(root)].state == "watching"


def test_watch_forever_until_cancelled(lib, root, monkeypatch):
    monkeypatch.setattr(watch, "TICK_S", 0.05)
    (root / "before.md").write_text("Written while nothing watched: kale.\n")
    cancel, out = CancelToken(), io.StringIO()
    rc: list[int] = []
    runner = threading.Thread(
        target=lambda: rc.append(watch_forever(lib, cancel, out, debounce_s=DEBOUNCE, tick_s=0.05))
    )
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while "watching for changes" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.05)
        (root / "during.md").write_text("Written while watched: chard.\n")
        while "added docs/during.md" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.05)
    finally:
        cancel.cancel()
        runner.join(10)
    assert rc == [0]
    text = out.getvalue()
    assert "reconciled" in text and "1 indexed" in text and "stopped watching" in text
    assert "docs: watching" in text or f"{root}: watching" in text
    assert fts(lib, "kale") == [str(root / "before.md")] and fts(lib, "chard") == [str(root / "during.md")]
    assert problems(lib.conn) == []


def test_interrupted_apply_loses_nothing(lib, root, make_watcher):
    w = make_watcher()
    (root / "interrupted.md").write_text("Parsnips in winter.\n")
    cancelled = CancelToken()
    cancelled.cancel()
    deadline = time.monotonic() + 10
    with pytest.raises(Cancelled):
        while time.monotonic() < deadline:  # until the file is ready and applying it is cancelled
            w.apply_ready(lib, cancel=cancelled)
            time.sleep(0.05)
    assert fts(lib, "parsnips") == []
    wait_until(lib, w, lambda: fts(lib, "parsnips") == [str(root / "interrupted.md")])
    assert "an update was interrupted" in w.states()[str(root)].last_change


def test_lost_kernel_events_trigger_a_rescan(lib, root, make_watcher):
    w = make_watcher()
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost"
    )
    wait_until(lib, w, lambda: "dropped file events" in (w.states()[str(root)].last_change or ""))
    assert problems(lib.conn) == []
