"""Tests for almanac.core.extractors: every format from files built here, and the time-boxed worker."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import docx
import pytest
from almanac.core.errors import ExtractionError
from almanac.core.extractors import Extracted, ExtractionWorker, Section, extract, is_binary, kind_of
from almanac.core.extractors.worker import SLEEP_ENV
from pdfgen import make_pdf
from pypdf import PdfReader, PdfWriter

THREE_PAGES = [
    ["Alpha page one", "The first page."],
    ["Bravo page two has an exam-", "ple of a hyphenated word.", "A well-   spaced   line."],
    ["Charlie page three"],
]


@pytest.fixture
def pdf_path(tmp_path: Path) -> Path:
    path = tmp_path / "paper.pdf"
    path.write_bytes(make_pdf(THREE_PAGES, title="A Study of Things"))
    return path


# --- PDF -------------------------------------------------------------------------------------------------


def test_pdf_pages_text_and_title(pdf_path: Path) -> None:
    assert len(PdfReader(pdf_path).pages) == 3  # the hand-made file is valid on its own
    result = extract(pdf_path)
    assert result.kind == "pdf"
    assert result.title == "A Study of Things"
    assert [s.page for s in result.sections] == [1, 2, 3]
    assert all(s.heading == "" for s in result.sections)
    assert "Alpha page one" in result.sections[0].text
    assert "an example of a hyphenated word" in result.sections[1].text
    assert "A well- spaced line." in result.sections[1].text
    assert result.sections[2].text == "Charlie page three"


def test_pdf_empty_pages_dropped_and_title_from_first_line(tmp_path: Path) -> None:
    path = tmp_path / "gaps.pdf"
    path.write_bytes(make_pdf([["Heading Line", "body"], [], ["Last page"]]))
    result = extract(path)
    assert [s.page for s in result.sections] == [1, 3]
    assert result.title == "Heading Line"


def test_pdf_without_text_is_reported_as_scanned(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[], []]))
    with pytest.raises(ExtractionError, match="no extractable text"):
        extract(path)


def _encrypt(source: Path, target: Path, user_password: str) -> None:
    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner")
    with target.open("wb") as fh:
        writer.write(fh)


def test_pdf_encrypted_with_password(pdf_path: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked.pdf"
    _encrypt(pdf_path, locked, user_password="secret")
    assert PdfReader(locked).is_encrypted
    with pytest.raises(ExtractionError, match="PDF is encrypted"):
        extract(locked)


def test_pdf_encrypted_with_empty_user_password_opens(pdf_path: Path, tmp_path: Path) -> None:
    restricted = tmp_path / "restricted.pdf"
    _encrypt(pdf_path, restricted, user_password="")
    assert [s.page for s in extract(restricted).sections] == [1, 2, 3]


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n" + bytes(range(256)) * 8,
        b"not a pdf at all",
        b"",
    ],
    ids=["garbage", "not-pdf", "empty"],
)
def test_pdf_damaged(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    with pytest.raises(ExtractionError):
        extract(path)


def test_pdf_truncated(pdf_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.pdf"
    path.write_bytes(pdf_path.read_bytes()[:150])
    with pytest.raises(ExtractionError):
        extract(path)


# --- Markdown --------------------------------------------------------------------------------------------

MARKDOWN = """\
---
layout: post
tags: [a, b]
---
Intro paragraph.

# Guide

Welcome.

## Install

### Linux ###

Use apt.

```sh
# not a heading
echo hi
```

## Advanced

### Timeouts

Set it high.

~~~
## also not a heading
~~~

# Appendix
Last words.
"""


def test_markdown_heading_paths(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    result = extract(path)
    assert result.kind == "markdown"
    assert result.title == "Guide"
    headings = [s.heading for s in result.sections]
    # "Install" and "Advanced" have no text of their own, so they appear only in their children's paths.
    assert headings == ["", "Guide", "Guide > Install > Linux", "Guide > Advanced > Timeouts", "Appendix"]
    linux = result.sections[2]
    assert "# not a heading" in linux.text and "echo hi" in linux.text
    assert "## also not a heading" in result.sections[3].text
    assert "layout" not in result.sections[0].text
    assert result.sections[0].text == "Intro paragraph."
    assert all(s.page is None for s in result.sections)


def test_markdown_front_matter_title_and_stem_fallback(tmp_path: Path) -> None:
    with_title = tmp_path / "a.markdown"
    with_title.write_text("---\ntitle: 'My Notes'\n---\n## Sub\ntext\n", encoding="utf-8")
    assert extract(with_title).title == "My Notes"
    plain = tmp_path / "plain-notes.MD"
    plain.write_text("just text, #hashtag\n", encoding="utf-8")
    result = extract(plain)
    assert result.title == "plain-notes"
    assert result.sections == [Section(text="just text, #hashtag", page=None, heading="")]


def test_ligatures_are_read_as_their_letters(tmp_path: Path) -> None:
    # As LaTeX sets them in papers' PDFs: one glyph for "fi", which search would read as another word.
    path = tmp_path / "paper.md"
    path.write_text("# Conﬁguration\n\nThe ﬁle ﬂag is eﬃcient, and the \ufb00ect baﬄes.\n", encoding="utf-8")
    result = extract(path)
    assert result.title == "Configuration"
    assert result.sections == [
        Section(text="# Configuration\n\nThe file flag is efficient, and the ffect baffles.", page=None, heading="Configuration")
    ]


# --- Plain text and code ---------------------------------------------------------------------------------


def test_text_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffcafé\r\nline two\r\n".encode())
    result = extract(path)
    assert result == Extracted(title="notes", kind="text", sections=[Section("café\nline two\n", None, "")])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_text_utf16_and_utf32_with_bom(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "wide.txt"
    data = "Grüße aus Köln".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    assert not is_binary(path)
    assert extract(path).sections[0].text == "Grüße aus Köln"


def test_text_latin1(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    text = "Le café était déjà fermé; la crème brûlée, très appréciée, attendra.\n" * 3
    path.write_bytes(text.encode("latin-1"))
    assert extract(path).sections[0].text == text


def test_text_overstrike_removed(tmp_path: Path) -> None:
    path = tmp_path / "ls.1.txt"
    # nroff: bold is X\bX, underline is _\bX.
    path.write_bytes(b"N\x08NA\x08AM\x08ME\x08E\n     ls - list _\x08f_\x08i_\x08l_\x08e_\x08s\n")
    assert extract(path).sections[0].text == "NAME\n     ls - list files\n"


def test_code_kind_and_binary_content_rejected(tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text("def main():\n    return 1\n", encoding="utf-8")
    result = extract(source)
    assert (result.kind, result.title) == ("code", "main")
    fake = tmp_path / "fake.txt"
    fake.write_bytes(b"abc\x00\x01\x02" * 100)
    with pytest.raises(ExtractionError, match="binary"):
        extract(fake)


def test_whitespace_only_file_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\n", encoding="utf-8")
    with pytest.raises(ExtractionError, match="No text found"):
        extract(path)


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="Unsupported"):
        extract(tmp_path / "song.mp3")
    with pytest.raises(ExtractionError, match="Could not open file"):
        extract(tmp_path / "missing.txt")


# --- HTML ------------------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title> Release
  Notes </title><style>body { color: red }</style>
<script>var secret = 1;</script></head>
<body>
<noscript>Enable JS</noscript><template><p>template text</p></template>
<p>Intro   text
spread over lines.</p>
<!-- a comment -->
<h1>Version 2</h1>
<p>First&nbsp;paragraph.</p><div hidden>hidden text</div>
<h2>Fixes</h2>
<ul><li>One</li><li>Two</li></ul>
<pre>def f():
    return 1</pre>
<script>alert("x")</script>
<h2>Known <em>issues</em></h2>
<table><tr><td>a</td><td>b</td></tr></table>
</body></html>
"""


def test_html_visible_text_title_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "notes.html"
    path.write_text(HTML, encoding="utf-8")
    result = extract(path)
    assert result.kind == "html"
    assert result.title == "Release Notes"
    everything = "\n".join(s.text for s in result.sections)
    invisible = ["color: red", "secret", "alert", "Enable JS", "template text", "comment", "hidden text"]
    assert [word for word in invisible if word in everything] == []
    assert [s.heading for s in result.sections] == [
        "",
        "Version 2",
        "Version 2 > Fixes",
        "Version 2 > Known issues",
    ]
    assert result.sections[0].text == "Intro text spread over lines."
    assert result.sections[1].text == "Version 2\n\nFirst paragraph."
    assert "One\nTwo" in result.sections[2].text
    assert "def f():\n    return 1" in result.sections[2].text
    assert "a b" in result.sections[3].text


def test_html_title_falls_back_to_h1(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_bytes(b"<html><body><h1>Main Title</h1><p>text</p></body></html>")
    result = extract(path)
    assert result.title == "Main Title"
    assert result.sections[0].heading == "Main Title"


# --- DOCX ------------------------------------------------------------------------------------------------


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Before any heading.")
    document.add_heading("Install", level=1)
    document.add_paragraph("Pick a platform.")
    document.add_heading("Linux", level=2)
    document.add_paragraph("Use the package.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Distro", "Command"
    table.cell(1, 0).text, table.cell(1, 1).text = "Debian", "apt install almanac"
    document.add_heading("Usage", level=1)
    document.add_paragraph("Run it.")
    path = tmp_path / "manual.docx"
    document.save(str(path))

    result = extract(path)
    assert result.kind == "docx"
    assert result.title == "Install"
    assert [s.heading for s in result.sections] == ["", "Install", "Install > Linux", "Usage"]
    linux = result.sections[2].text
    assert linux.startswith("Linux\nUse the package.")
    assert "Debian | apt install almanac" in linux


def test_docx_invalid(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip file")
    with pytest.raises(ExtractionError, match="File is not valid DOCX"):
        extract(path)


# --- kind_of and is_binary -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.pdf", "pdf"),
        ("A.PDF", "pdf"),
        ("x.md", "markdown"),
        ("x.Markdown", "markdown"),
        ("x.mdx", "markdown"),
        ("x.txt", "text"),
        ("x.rst", "text"),
        ("x.log", "text"),
        ("x.tex", "text"),
        ("README", "text"),
        ("LICENSE", "text"),
        ("Makefile", "text"),
        ("x.html", "html"),
        ("x.HTM", "html"),
        ("x.xhtml", "html"),
        ("x.docx", "docx"),
        ("x.py", "code"),
        ("x.tsx", "code"),
        ("x.R", "code"),
        ("x.yaml", "code"),
        ("x.csv", "code"),
        ("x.doc", None),
        ("x.png", "image"),  # read by OCR
        ("x.JPEG", "image"),
        ("x.tiff", "image"),
        ("x.webp", "image"),
        ("x.gif", None),
        ("x.tar.gz", None),
        ("randomname", None),
        (".env", None),
    ],
)
def test_kind_of(name: str, kind: str | None) -> None:
    assert kind_of(Path("/some/dir") / name) == kind


def test_is_binary(tmp_path: Path) -> None:
    cases = {
        "text.txt": ("plain ascii\n" * 10).encode(),
        "utf8.txt": "ünïcødé ✓\n".encode(),
        "latin1.txt": "déjà vu\n".encode("latin-1"),
        "empty.txt": b"",
        "nul.bin": b"abc\x00def",
        "controls.bin": bytes(range(1, 32)) * 10,
        "nul-late.bin": b"a" * 8000 + b"\x00",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert {name: is_binary(tmp_path / name) for name in cases} == {
        name: name.endswith(".bin") for name in cases
    }
    # The start, middle and end are judged: text with a binary payload appended is binary. Between the
    # samples nothing is read, so the cost stays at 24 KiB a file.
    late = tmp_path / "nul-at-the-end.txt"
    late.write_bytes(b"a" * 100_000 + b"\x00")
    assert is_binary(late)
    between = tmp_path / "nul-between-samples.txt"
    between.write_bytes(b"a" * 20_000 + b"\x00" + b"a" * 100_000)
    assert not is_binary(between)


# --- ExtractionWorker ------------------------------------------------------------------------------------


def _assert_reaped(pid: int) -> None:
    # A zombie still answers signal 0; a reaped process does not exist any more.
    if sys.platform != "win32":
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_worker_extracts_and_reports_errors(tmp_path: Path, pdf_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"garbage")
    with ExtractionWorker(timeout_s=30) as worker:
        result = worker.extract(pdf_path)
        assert [s.page for s in result.sections] == [1, 2, 3]
        with pytest.raises(ExtractionError, match="PDF is damaged"):
            worker.extract(bad)
        # The same child keeps serving after an error.
        pid = worker._process.pid
        assert extract(pdf_path) == worker.extract(pdf_path)
        assert worker._process.pid == pid
    _assert_reaped(pid)
    worker.close()  # idempotent
    with pytest.raises(RuntimeError):
        worker.extract(pdf_path)


def test_worker_timeout_kills_and_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello", encoding="utf-8")
    # The child reads the variable from the environment it was spawned with, so it must be set before the
    # first extract() (the child starts lazily) and removed before the replacement child starts.
    monkeypatch.setenv(SLEEP_ENV, "5")
    worker = ExtractionWorker(timeout_s=1)
    try:
        worker._start()  # start up front so the measured time is the timeout, not Python's start-up
        slow_pid = worker._process.pid
        started = time.monotonic()
        with pytest.raises(ExtractionError, match="Took longer than 1 s"):
            worker.extract(note)
        assert time.monotonic() - started < 3
        assert worker._process is None
        _assert_reaped(slow_pid)

        monkeypatch.delenv(SLEEP_ENV)
        assert worker.extract(note).sections[0].text == "hello"
        assert worker._process.pid != slow_pid
    finally:
        worker.close()


def test_worker_reports_a_crashed_child(tmp_path: Path, pdf_path: Path) -> None:
    with ExtractionWorker(timeout_s=30) as worker:
        worker.extract(pdf_path)
        worker._process.kill()  # stands in for a segfault or the OOM killer
        worker._process.join()
        # A child that died between files is replaced, not blamed on the next file.
        assert worker.extract(pdf_path).title == "A Study of Things"


def test_worker_child_dying_mid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello", encoding="utf-8")
    monkeypatch.setenv(SLEEP_ENV, "5")  # keeps the child busy on the file while we kill it
    with ExtractionWorker(timeout_s=30) as worker:
        worker._start()
        dying_pid = worker._process.pid
        killer = threading.Timer(0.3, worker._process.kill)  # stands in for a segfault mid-parse
        killer.start()
        started = time.monotonic()
        with pytest.raises(ExtractionError, match="crashed the reader"):
            worker.extract(note)
        killer.join()
        assert time.monotonic() - started < 5
        _assert_reaped(dying_pid)
        monkeypatch.delenv(SLEEP_ENV)
        assert worker.extract(note).sections[0].text == "hello"
