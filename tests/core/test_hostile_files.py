"""Odd and hostile files, made here for real: undecodable names, random bytes, a 5 MB word, quadratic-regex
bait, a zip bomb, huge and unsupported files. Each must fail alone with a reason, or index; never stop a run."""

from __future__ import annotations

import io
import os
import random
import time
import zipfile
from pathlib import Path

import docx
import pytest
from almanac.core import store
from almanac.core.chunking import CHARS_PER_TOKEN
from almanac.core.errors import ExtractionError
from almanac.core.extractors import extract, is_binary
from almanac.core.extractors.docx import MAX_UNPACKED_BYTES
from almanac.core.indexer import SyncReport
from almanac.core.library import Library
from almanac.core.settings import Settings
from indexcheck import problems

ODD_NAME = b"caf\xe9.txt"  # Latin-1 "café.txt", as old zips and Windows shares leave it: not UTF-8


def make_odd_file(folder: Path, name: bytes, data: bytes) -> str:
    """Create a file whose name is not valid UTF-8 (through a bytes path); returns Python's str for it."""
    raw = os.path.join(os.fsencode(folder), name)
    try:
        fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as err:  # macOS (APFS) and some file systems refuse such names outright
        pytest.skip(f"this file system refuses non-UTF-8 names: {err}")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return os.fsdecode(raw)


def search_paths(lib: Library, word: str) -> list[str]:
    rows = lib.conn.execute(
        "SELECT d.path FROM chunks_fts f JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
        " WHERE chunks_fts MATCH ?",
        (f'"{word}"',),
    )
    return [store.path_from_db(p) for (p,) in rows]


@pytest.fixture
def lib(tmp_path, hash_embedder):
    library = Library(tmp_path / "index.db", settings=Settings(), embedder=hash_embedder)
    yield library
    library.close()


# --- 1. file names that are not UTF-8 ------------------------------------------------------------------------


def test_stored_path_form_is_lossless_and_keeps_prefixes():
    names = [
        "/docs/plain.txt",
        os.fsdecode(b"/docs/caf\xe9.txt"),
        os.fsdecode(b"/docs/\xff\xfe/x.md"),
        "/docs/real\ufdd0noncharacter.txt",  # the escape character itself, really in a name
        "/docs/real\ufdd0E9.txt",  # ... followed by what looks like an escaped byte
        os.fsdecode(b"/docs/\xe9") + "\ufdd0",  # both at once
    ]
    stored = [store.path_to_db(n) for n in names]
    assert stored[0] == names[0]  # ordinary names are stored exactly as before
    for name, s in zip(names, stored, strict=True):
        s.encode("utf-8")  # valid UTF-8: SQLite and apsw take it
        assert store.path_from_db(s) == name
    assert len(set(stored)) == len(stored)
    folder = os.fsdecode(b"/docs/\xff\xfe")
    assert store.path_to_db(names[2]).startswith(store.path_to_db(folder) + "/")
    assert store.display_path(names[1]) == "/docs/caf\ufffd.txt"
    assert store.display_path(stored[1]) == "/docs/caf\ufffd.txt"


def test_undecodable_name_is_indexed_and_the_run_goes_on(lib, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "alpha.txt").write_text("Apples and apricots.\n")
    odd = make_odd_file(root, ODD_NAME, b"Croissants au beurre, fresh every morning.\n")
    odd_binary = make_odd_file(root, b"d\xe9j\xe0.txt", random.Random(1).randbytes(20_000))
    (root / "zulu.txt").write_text("Zebras in the zoo.\n")
    lib.add_folder(root)
    report = lib.index()
    assert report.indexed == 3 and report.failed == 1
    assert search_paths(lib, "apricots") == [str(root / "alpha.txt")]
    assert search_paths(lib, "zebras") == [str(root / "zulu.txt")]
    assert search_paths(lib, "croissants") == [odd]  # the stored name leads back to the very file
    assert Path(search_paths(lib, "croissants")[0]).read_bytes().startswith(b"Croissants")
    status = lib.status()
    assert (status.documents, status.failed) == (3, 1)
    assert status.failures == [(store.display_path(odd_binary), "Looks like binary data, not text")]
    assert report.failures == status.failures
    assert problems(lib.conn) == []

    again = lib.index()  # found again under the same name: nothing to do
    assert (again.indexed, again.unchanged) == (0, 4)
    os.rename(os.fsencode(odd), os.path.join(os.fsencode(root), b"\xe9t\xe9.txt"))
    moved = lib.index()
    assert moved.moved == 1 and moved.indexed == 0
    os.unlink(os.path.join(os.fsencode(root), b"\xe9t\xe9.txt"))
    assert lib.index().deleted == 1
    assert search_paths(lib, "croissants") == []
    assert problems(lib.conn) == []


def test_undecodable_folder_name(lib, tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"Pr\xe9sentations")
    try:
        os.mkdir(raw)
    except OSError as err:
        pytest.skip(f"this file system refuses non-UTF-8 names: {err}")
    folder = Path(os.fsdecode(raw))
    (folder / "talk.md").write_text("# Talk\n\nSlides about lighthouses.\n")
    lib.add_folder(folder)
    assert lib.index().indexed == 1
    assert [f.path for f in lib.folders()] == [str(folder)]
    assert search_paths(lib, "lighthouses") == [str(folder / "talk.md")]
    assert store.documents_under(lib.conn, str(folder)).keys() == {str(folder / "talk.md")}


@pytest.mark.slow
def test_cli_index_exits_0_with_an_undecodable_name(capsys, tmp_path):
    from almanac.cli.main import main

    root = tmp_path / "notes"
    root.mkdir()
    (root / "espresso.md").write_text("# Espresso\n\nGrind fine, 25 seconds at 9 bar.\n")
    make_odd_file(root, ODD_NAME, b"Sourdough starter, fed daily.\n")
    make_odd_file(root, b"r\xe9sum\xe9.txt", random.Random(2).randbytes(30_000))
    assert main(["index", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 indexed" in out and "1 failed" in out and "r\ufffdsum\ufffd.txt" in out
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "r\ufffdsum\ufffd.txt" in out and "binary" in out
    assert main(["search", "sourdough starter", "--mode", "keyword"]) == 0
    assert "caf\ufffd.txt" in capsys.readouterr().out


# --- 2. binary content -----------------------------------------------------------------------------------------


def _random_bytes(n: int, seed: int, low: int = 1) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(low, 256) for _ in range(n))


BINARY = {
    "random.txt": lambda: random.Random(3).randbytes(300_000),  # 300 KB of random bytes named .txt
    "random-no-nul.txt": lambda: _random_bytes(300_000, 4),  # no NUL byte, few control bytes
    "random-printable.txt": lambda: _random_bytes(300_000, 5, low=0x20),  # no control byte at all
    "random-high.txt": lambda: _random_bytes(300_000, 6, low=0x80),  # charset-normalizer calls this Korean
    "installer.sh": lambda: b"#!/bin/sh\nexec tail -c +200 $0 | tar x\n" * 200 + _random_bytes(200_000, 7),
}
EMMA = "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition.\n"
TEXT = {
    "latin1.txt": ("Le café était déjà fermé; la crème brûlée attendra.\n" * 4000).encode("latin-1"),
    "utf16.txt": ("Grüße aus Köln und München.\n" * 4000).encode("utf-16"),
    "emma.txt": b"\xef\xbb\xbf" + (EMMA * 4000).encode(),
    "cp1251.txt": ("Съешь же ещё этих мягких французских булок, да выпей чаю.\n" * 4000).encode("cp1251"),
    "shiftjis.txt": ("日本語のテキストです。これはテストの文章になります。\n" * 4000).encode("shift_jis"),
    "gb2312.txt": ("这是一个中文文本的例子，用于测试编码检测。\n" * 4001).encode("gb2312"),
    "big5.txt": ("這是一個中文文本的例子，用於測試編碼檢測。\n" * 4001).encode("big5"),
    "korean.txt": ("다람쥐 헌 쳇바퀴에 타고파. 키스의 고유조건은 입술끼리 만나야 한다.\n" * 3000).encode(
        "cp949"
    ),
    "polish.txt": ("Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.\n" * 3000).encode("cp1250"),
    "main.py": ("def main() -> int:\n    return sum(range(10))  # ünïcode comment\n" * 3000).encode(),
}


def test_binary_content_fails_with_a_reason_and_real_text_indexes(lib, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    for name, make in BINARY.items():
        (root / name).write_bytes(make())
    for name, data in TEXT.items():
        (root / name).write_bytes(data)
    for name in BINARY:
        assert is_binary(root / name), name
        with pytest.raises(ExtractionError, match="binary"):
            extract(root / name)
    for name in TEXT:
        assert not is_binary(root / name), name
    lib.add_folder(root)
    report = lib.index()
    failures = dict(lib.status().failures)
    assert failures == {str(root / name): "Looks like binary data, not text" for name in BINARY}
    assert report.indexed == len(TEXT)
    assert (
        lib.conn.execute(
            "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE d.path LIKE '%random%' OR d.path LIKE '%installer%'"
        ).fetchone()[0]
        == 0
    )
    # (FTS5's unicode61 tokenizer reads a run of CJK characters up to punctuation as one token)
    for word in (
        "fermé",
        "München",
        "Woodhouse",
        "булок",
        "日本語のテキストです",
        "这是一个中文文本的例子",
        "main",
        "這是一個中文文本的例子",
        "다람쥐",
        "gęślą",
    ):
        assert search_paths(lib, word), word
    assert problems(lib.conn) == []


# --- 3. a 5 MB word ------------------------------------------------------------------------------------------


def test_five_megabyte_word_becomes_bounded_chunks(lib, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    word = "x" * 5_000_000
    (root / "blob.txt").write_text(f"Before the blob.\n{word}\nAfter the blob.\n")
    lib.add_folder(root)
    lib.index()
    cap = min(lib.settings.chunk_tokens, lib.embedder.max_tokens) * CHARS_PER_TOKEN
    lengths = [n for (n,) in lib.conn.execute("SELECT length(text) FROM chunks")]
    assert len(lengths) > 5_000_000 // cap and max(lengths) <= cap
    texts = [t for (t,) in lib.conn.execute("SELECT text FROM chunks ORDER BY ord")]
    assert "".join(t for t in texts if set(t) == {"x"}) == word  # every character kept, in order
    assert search_paths(lib, "before") and search_paths(lib, "after")


# --- 4. kind and size before reading ---------------------------------------------------------------------------


def test_unsupported_and_oversized_files_are_never_read(lib, tmp_path, monkeypatch):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "song.mp3").write_bytes(os.urandom(100_000))
    (root / "notes.txt").write_text("Plain notes.\n")
    for name in ("huge.txt", "disk.iso"):  # sparse: 60 MB that cost nothing to make
        with open(root / name, "wb") as fh:
            fh.truncate(60_000_000)
    hashed: list[str] = []
    real_hash = store.file_hash
    monkeypatch.setattr(store, "file_hash", lambda p: hashed.append(Path(p).name) or real_hash(p))
    folder = lib.add_folder(root)
    report = lib.index()
    assert hashed == ["notes.txt"]
    assert report.indexed == 1
    # (the disk image is not a document at all: too big or not, there is nothing to tell)
    assert dict(lib.status().failures) == {str(root / "huge.txt"): "Larger than the 50 MB limit"}
    for _ in range(2):  # and at every later sync: the mp3 is still never read
        lib.index()
    assert hashed == ["notes.txt"]
    # The watcher's way in (one path at a time) has the same limit.
    (root / "grown.txt").write_text("small at first\n")
    with open(root / "grown.txt", "r+b") as fh:
        fh.truncate(51_000_000)
    r = SyncReport()
    lib.indexer.index_file(folder, root / "grown.txt", r)
    assert r.failures == [(str(root / "grown.txt"), "Larger than the 50 MB limit")]
    assert hashed == ["notes.txt"]


def test_the_watcher_applies_the_same_limits(lib, tmp_path):
    from almanac.core.watch.apply import apply_changes
    from almanac.core.watch.changes import ChangeSet, FolderChanges

    root = tmp_path / "docs"
    root.mkdir()
    folder = lib.add_folder(root)
    lib.index()
    with open(root / "huge.md", "wb") as fh:  # appeared while watching: never read, recorded as too big
        fh.truncate(60_000_000)
    (root / "movie.mkv").write_bytes(os.urandom(1000))
    (root / "noise.txt").write_bytes(random.Random(8).randbytes(50_000))
    odd = make_odd_file(root, ODD_NAME, b"Watched croissants.\n")
    paths = [str(root / n) for n in ("huge.md", "movie.mkv", "noise.txt")] + [odd]
    report = apply_changes(lib, ChangeSet([FolderChanges(folder, paths=paths)]))
    assert {(c.action, Path(c.path).name) for c in report.changes} == {
        ("failed", "huge.md"),
        ("failed", "noise.txt"),
        ("added", Path(odd).name),
    }
    failures = dict(lib.status().failures)
    assert failures[str(root / "huge.md")] == "Larger than the 50 MB limit"
    assert failures[str(root / "noise.txt")] == "Looks like binary data, not text"
    assert search_paths(lib, "croissants") == [odd]
    assert problems(lib.conn) == []


def test_fifo_is_never_opened(lib, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    os.mkfifo(root / "pipe.txt")  # opening it would block forever
    (root / "ok.txt").write_text("fine\n")
    lib.add_folder(root)
    assert lib.index().indexed == 1
    r = SyncReport()
    assert lib.indexer.index_file(lib.folders()[0], root / "pipe.txt", r) is None
    assert (r.indexed, r.failed) == (0, 0)


# --- 5. quadratic regexes and the zip bomb ---------------------------------------------------------------------
# Before the fix, 100,000 spaces took 44.6 s in markdown's heading pattern alone (measured, see the report);
# the bound below is only a regression guard, far above what the linear code needs (milliseconds).

SPACES = " " * 100_000


def test_markdown_long_runs_of_spaces_are_linear(tmp_path):
    path = tmp_path / "spaces.md"
    path.write_text(f"# Title{SPACES}x\n\n## Closing ##{SPACES}\n\ntext{SPACES}#\n\n# C#\n\nbody\n")
    start = time.perf_counter()
    result = extract(path)
    assert time.perf_counter() - start < 2.0
    assert [s.heading for s in result.sections] == [f"Title{SPACES}x > Closing", "C#"]
    front = tmp_path / "front.md"
    front.write_text(f"---\ntitle: 'A{SPACES}b'\n---\nbody\n")
    start = time.perf_counter()
    assert extract(front).title == "A b"
    assert time.perf_counter() - start < 2.0


def test_html_long_runs_of_spaces_are_linear(tmp_path):
    path = tmp_path / "spaces.html"
    cells = "<td></td>" * 30_000
    path.write_text(
        f"<html><body><p>one</p><pre>a{SPACES}b</pre><table><tr>{cells}</tr></table>"
        f"<p>two  </p></body></html>"
    )
    start = time.perf_counter()
    result = extract(path)
    assert time.perf_counter() - start < 5.0  # parsing 30,000 cells with lxml is most of it
    assert result.sections[0].text == f"one\n\na{SPACES}b\n\ntwo"


def _docx_bytes() -> bytes:
    document = docx.Document()
    document.add_paragraph("An ordinary paragraph.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _with_member(data: bytes, name: str, size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(info, "w", force_zip64=True) as fh:
            block = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                fh.write(block)
    return out.getvalue()


def test_docx_zip_bomb_fails_with_a_reason(tmp_path):
    ok = tmp_path / "ok.docx"
    ok.write_bytes(_docx_bytes())
    assert "ordinary paragraph" in extract(ok).sections[0].text
    dense = tmp_path / "dense.docx"  # 64 MB of zeros in a few tens of KB: the ratio gives it away
    dense.write_bytes(_with_member(_docx_bytes(), "word/media/image1.bin", 64 << 20))
    assert dense.stat().st_size < 1_000_000
    with pytest.raises(ExtractionError, match="compressed .* to 1: not read, it may be a zip bomb"):
        extract(dense)
    big = tmp_path / "big.docx"  # past the total limit
    big.write_bytes(_with_member(_docx_bytes(), "word/media/image2.bin", MAX_UNPACKED_BYTES + (1 << 20)))
    with pytest.raises(ExtractionError, match="would unpack to .* zip bomb"):
        extract(big)


def test_docx_zip_bomb_through_the_indexer(lib, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "bomb.docx").write_bytes(_with_member(_docx_bytes(), "word/document2.xml", 64 << 20))
    (root / "fine.docx").write_bytes(_docx_bytes())
    lib.add_folder(root)
    report = lib.index()
    assert report.indexed == 1
    assert "zip bomb" in dict(lib.status().failures)[str(root / "bomb.docx")]
