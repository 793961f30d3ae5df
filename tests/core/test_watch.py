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


def pending(lib):
    return lib.conn.execute("SELECT count(*) FROM chunks WHERE embedded = 0").fetchone()[0]


def test_the_small_embedding_step_embeds_only_what_the_change_made(lib, root, make_watcher):
    # A backlog left by an index run that never embedded (the app closed during embedding, say).
    for i in range(5):
        (root / f"backlog{i}.txt").write_text(f"Backlog note {i} about lanterns and harbours.\n")
    lib.indexer.sync()
    backlog = pending(lib)
    assert backlog >= 5
    w = make_watcher()
    embedder = lib.embedder
    embedder.texts.clear()
    (root / "fresh.txt").write_text("A fresh note about glaciers.\n")
    wait_until(lib, w, lambda: fts(lib, "glaciers") == [str(root / "fresh.txt")])
    assert any("glaciers" in t for t in embedder.texts)
    assert not any("Backlog" in t for t in embedder.texts)  # the backlog is an index run's job
    assert pending(lib) == backlog
    assert problems(lib.conn) == []


def test_apply_ready_hands_back_rescans_and_large_embedding_when_asked(lib, root, make_watcher):
    w = make_watcher()
    w.request_rescan(str(root), "because the test says so")
    report = w.apply_ready(lib, embed=True, defer_rescans=True, now=time.monotonic() + 10)
    assert report.rescans == [str(root)] and not report.changes  # not reconciled here

    (root / "big.txt").write_text("\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(20)))
    deadline = time.monotonic() + 10
    while not (report := w.apply_ready(lib, embed=True, embed_limit=3, defer_rescans=True)).changes:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert report.totals.chunks_added > 3 and report.embed_deferred and report.embedded == 0
    assert report.documents == [store.document(lib.conn, str(root / "big.txt")).id]


def test_a_cancelled_embedding_step_stops_and_keeps_the_change(lib, root, make_watcher):
    w = make_watcher()
    token = CancelToken()
    lib.embedder.embed = lambda texts: (token.cancel(), lib.embedder.inner.embed(texts))[1]
    (root / "long.txt").write_text("\n\n".join(f"Section {i} " + "tide " * 30 for i in range(80)))  # > 2 batches
    deadline = time.monotonic() + 10
    while True:
        try:
            w.apply_ready(lib, embed=True, cancel=token)
        except Cancelled:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert store.document(lib.conn, str(root / "long.txt")) is not None  # applied; embedding resumes later
    assert pending(lib) > 0
    assert problems(lib.conn) == []


def test_take_ready_looks_at_files_outside_the_lock(lib, root, make_watcher, monkeypatch):
    """The GUI thread calls states() every 400 ms: a slow disk must not block it."""
    from almanac.core.watch import watcher as watcher_module

    w = make_watcher()
    looking, release = threading.Event(), threading.Event()
    real_look = watcher_module._look

    def slow_look(path):
        looking.set()
        release.wait(10)
        return real_look(path)

    monkeypatch.setattr(watcher_module, "_look", slow_look)
    (root / "slow.txt").write_text("On a slow network drive.\n")
    deadline = time.monotonic() + 10
    while not w.states()[str(root)].pending:  # the event is recorded
        assert time.monotonic() < deadline
        time.sleep(0.02)
    taker = threading.Thread(target=w.take_ready, args=(time.monotonic() + 5,))
    taker.start()
    assert looking.wait(10)
    started = time.monotonic()
    states = w.states()  # while take_ready waits on the disk
    assert time.monotonic() - started < 0.5
    assert states[str(root)].pending == 1
    release.set()
    taker.join(10)


def test_a_bad_line_in_almanacignore_is_named_and_the_rest_still_applies(lib, root, make_watcher):
    (root / ".almanacignore").write_text("*.log\n!\nsecret/\n")
    (root / "secret").mkdir()
    (root / "secret" / "plan.txt").write_text("The hidden plan.\n")
    (root / "debug.log").write_text("log line\n")
    lib.indexer.forget_rules()
    report = lib.index()  # not a crash, not a failed run
    where = str(root / ".almanacignore")
    assert any(path == where and "line 2" in why for path, why in report.failures), report.failures
    paths = doc_paths(lib)
    assert str(root / "secret" / "plan.txt") not in paths and str(root / "debug.log") not in paths
    w = make_watcher()  # the watcher obeys the same valid lines, and says the same thing about the bad one
    (root / "secret" / "more.txt").write_text("More of the hidden plan.\n")
    (root / "ok.txt").write_text("Visible note.\n")
    wait_until(lib, w, lambda: str(root / "ok.txt") in doc_paths(lib))
    assert str(root / "secret" / "more.txt") not in doc_paths(lib)


def test_rescans_handed_back_are_not_lost_when_applying_fails(lib, root, tmp_path, make_watcher):
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("Another folder.\n")
    lib.add_folder(other)
    w = make_watcher()
    w.request_rescan(str(other), "because the test says so")
    (root / "new.txt").write_text("A new note.\n")
    deadline = time.monotonic() + 10
    while not w.states()[str(root)].pending:  # the file's event is recorded
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)  # and the file has settled (settle_s)
    cancelled = CancelToken()
    cancelled.cancel()
    with pytest.raises(Cancelled):  # applying the file is cancelled (the app is closing, say)
        w.apply_ready(lib, embed=True, defer_rescans=True, cancel=cancelled, now=time.monotonic() + 10)
    report = w.apply_ready(lib, embed=True, defer_rescans=True, now=time.monotonic() + 20)
    assert sorted(report.rescans) == sorted([str(root), str(other)])  # both still to reconcile
