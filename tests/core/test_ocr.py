"""OCR of scanned PDF pages and image files through the real pipeline: worker child, RapidOCR, SQLite, FTS5.

The scans are made here: a PDF page drawn by tests/pdfgen.py is rendered by PDFium into a PNG, and PNGs are
saved as an image-only PDF (Pillow), so no page has a text layer.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from almanac.core.errors import ExtractionError
from almanac.core.extractors import OcrOptions, OcrRun, extract, ocr
from almanac.core.extractors.ocr import FAIL_ENV, SharedRecogniser, reading_order
from almanac.core.extractors.ocr_cache import OcrLine
from almanac.core.library import Library
from almanac.core.settings import Settings
from pdfgen import make_pdf
from PIL import Image
from pypdf import PdfReader, PdfWriter

# Generous: on a loaded CI machine one page can take tens of seconds; the time box is per page.
SETTINGS = dict(extract_timeout_s=600.0, chunk_tokens=60, chunk_overlap=5)


def scan(lines: list[str]) -> Image.Image:
    """One page of text as a 150 dpi grey image, cut to the text (a smaller image is a faster test)."""
    pdf = pdfium.PdfDocument(make_pdf([lines]))
    try:
        image = pdf[0].render(scale=150 / 72).to_pil().convert("L")
    finally:
        pdf.close()
    return image.crop((0, 0, image.width, 150 + 30 * len(lines)))


def image_only_pdf(pages: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=pages[1:])
    return out.getvalue()


def keyword_hits(lib: Library, word: str):
    searcher = lib.searcher()
    try:
        return searcher.search(word, k=5, mode="keyword").hits
    finally:
        searcher.close()


@pytest.fixture
def make_lib(tmp_path, hash_embedder):
    opened = []

    def make(name: str = "index.db", **overrides) -> Library:
        lib = Library(tmp_path / name, settings=Settings(**{**SETTINGS, **overrides}), embedder=hash_embedder)
        opened.append(lib)
        return lib

    yield make
    for lib in opened:
        lib.close()


@pytest.mark.slow
def test_png_scan_is_found_and_a_renamed_copy_is_not_ocrd_again(tmp_path, make_lib, monkeypatch):
    first = tmp_path / "inbox"
    first.mkdir()
    scan(["Invoice from Zanzibar Traders", "Total due: ninety pounds"]).save(first / "receipt.png")
    (first / "note.txt").write_text("A note about tea.\n")
    lib = make_lib()
    lib.add_folder(first)
    report = lib.index()
    assert report.failed == 0 and report.indexed == 2
    assert (report.ocr_pages, report.ocr_cached_pages) == (1, 0)
    hits = keyword_hits(lib, "Zanzibar")
    assert [Path(h.path).name for h in hits] == ["receipt.png"]
    assert hits[0].page is None and "ninety" in hits[0].text.lower()
    assert lib.conn.execute("SELECT kind FROM documents WHERE path LIKE '%receipt.png'").fetchone()[0] == "image"

    # The same bytes under another name, in another library: the OCR cache answers, the engine is never asked
    # (the hook makes any OCR in the new worker fail, which would fail the file).
    second = tmp_path / "archive"
    second.mkdir()
    shutil.copy(first / "receipt.png", second / "scan-0001.png")
    monkeypatch.setenv(FAIL_ENV, "1")
    other = make_lib("other.db")
    other.add_folder(second)
    report = other.index()
    assert report.failures == [] and report.indexed == 1
    assert (report.ocr_pages, report.ocr_cached_pages) == (0, 1)
    assert [Path(h.path).name for h in keyword_hits(other, "Zanzibar")] == ["scan-0001.png"]


@pytest.mark.slow
def test_image_only_pdf_keeps_page_numbers_and_reports_each_page(tmp_path, make_lib):
    root = tmp_path / "scans"
    root.mkdir()
    # The first line is the title, which every chunk's keyword row carries: the words looked for come after it.
    pages = [scan(["Ship log", "Morning in the harbour"]), scan(["Lighthouse keepers"]), scan(["Appendix on kelp"])]
    (root / "book.pdf").write_bytes(image_only_pdf(pages))
    lib = make_lib()
    lib.add_folder(root)
    seen = []
    report = lib.index(progress=lambda p: seen.append((p.pages_done, p.pages_total)) if p.pages_total else None)
    assert report.failures == [] and report.ocr_pages == 3
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert lib.conn.execute("SELECT title FROM documents").fetchone()[0] == "Ship log"
    for word, page in (("harbour", 1), ("lighthouse", 2), ("kelp", 3)):
        hits = keyword_hits(lib, word)
        assert [(Path(h.path).name, h.page) for h in hits] == [("book.pdf", page)], word


@pytest.mark.slow
def test_page_limit_leaves_the_rest_out_and_says_so(tmp_path, make_lib):
    root = tmp_path / "scans"
    root.mkdir()
    (root / "two.pdf").write_bytes(image_only_pdf([scan(["Walrus census"]), scan(["Narwhal census"])]))
    lib = make_lib(ocr_max_pages=1)
    lib.add_folder(root)
    report = lib.index()
    assert report.ocr_pages == 1 and report.failed == 0
    assert [h.page for h in keyword_hits(lib, "walrus")] == [1]
    assert keyword_hits(lib, "narwhal") == []
    assert len(report.notes) == 1 and "limited to 1 page a file (ocr_max_pages); 1 scanned page left out" in report.notes[0][1]


def test_ocr_off_leaves_images_out_and_names_the_scan(tmp_path, make_lib):
    root = tmp_path / "scans"
    root.mkdir()
    page = scan(["Walrus census"])
    page.save(root / "photo.png")
    (root / "scan.pdf").write_bytes(image_only_pdf([page]))
    lib = make_lib(ocr=False)
    lib.add_folder(root)
    report = lib.index()
    assert report.indexed == 0 and report.ocr_pages == 0
    assert [(Path(p).name, "scanned" in r) for p, r in report.failures] == [("scan.pdf", True)]  # no photo.png


def mixed_pdf(typed: str, scanned: list[str]) -> bytes:
    """A typed page with a text layer, then scanned pages without one."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make_pdf([[typed]]))))
    writer.append(PdfReader(io.BytesIO(image_only_pdf([scan([line]) for line in scanned]))))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.slow
def test_turning_ocr_on_reads_the_scans_indexed_without_it(tmp_path, make_lib):
    root = tmp_path / "scans"
    root.mkdir()
    (root / "mixed.pdf").write_bytes(mixed_pdf("A typed page about otters.", ["Seals on the rocks"]))
    (root / "scan.pdf").write_bytes(image_only_pdf([scan(["Walrus census"])]))
    (root / "two.pdf").write_bytes(mixed_pdf("Typed census notes.", ["Puffin count", "Narwhal count"]))
    (root / "note.txt").write_text("Kelp grows fast.\n")
    off = make_lib(ocr=False)
    off.add_folder(root)
    report = off.index()
    assert report.indexed == 3 and report.failed == 1 and report.ocr_pages == 0  # scan.pdf: no text without OCR
    assert keyword_hits(off, "seals") == [] and keyword_hits(off, "otters")
    off.close()

    # On, with room for one scanned page a file: the files read without OCR are read again, nothing else.
    one = make_lib(ocr_max_pages=1)
    report = one.index()
    assert (report.indexed, report.failed, report.unchanged, report.ocr_pages) == (3, 0, 1, 3)
    assert [Path(h.path).name for h in keyword_hits(one, "seals")] == ["mixed.pdf"]
    assert [Path(h.path).name for h in keyword_hits(one, "walrus")] == ["scan.pdf"]
    assert keyword_hits(one, "narwhal") == []  # past the limit
    assert one.index().indexed == 0  # read under this limit already: not again
    one.close()

    # A higher limit reads again only the file that had pages past the old one (the rest come from the cache).
    two = make_lib(ocr_max_pages=2)
    report = two.index()
    assert (report.indexed, report.unchanged) == (1, 3) and report.ocr_pages + report.ocr_cached_pages == 2
    assert [Path(h.path).name for h in keyword_hits(two, "narwhal")] == ["two.pdf"]
    assert two.index().indexed == 0


def test_failed_ocr_fails_that_file_alone(tmp_path, make_lib, monkeypatch):
    root = tmp_path / "mixed"
    root.mkdir()
    scan(["Walrus census"]).save(root / "broken-ocr.png")
    (root / "not-an-image.jpg").write_bytes(b"\xff\xd8 this is no JPEG")
    (root / "note.txt").write_text("Walruses haul out on ice.\n")
    monkeypatch.setenv(FAIL_ENV, "1")
    lib = make_lib()
    lib.add_folder(root)
    report = lib.index()
    assert report.indexed == 1 and report.failed == 2
    reasons = {Path(p).name: r for p, r in report.failures}
    assert "OCR" in reasons["broken-ocr.png"]
    assert "Not a readable image" in reasons["not-an-image.jpg"]
    assert [Path(h.path).name for h in keyword_hits(lib, "walruses")] == ["note.txt"]


def test_two_columns_are_read_left_then_right():
    def line(text, left, top):
        return OcrLine(text, (left, top, left + 0.4, top + 0.02))

    full = OcrLine("Title across the page", (0.1, 0.05, 0.9, 0.08))
    lines = [line("L1", 0.08, 0.2), line("R1", 0.55, 0.2), line("L2", 0.08, 0.25), line("R2", 0.55, 0.25)]
    footer = OcrLine("Footnote across", (0.1, 0.9, 0.9, 0.92))
    assert [x.text for x in reading_order([footer, *lines, full])] == [
        "Title across the page", "L1", "L2", "R1", "R2", "Footnote across"
    ]


@pytest.mark.slow
def test_ocr_past_the_time_box_fails_that_file_alone(tmp_path, make_lib, data_dir):
    root = tmp_path / "slow"
    root.mkdir()
    # A full page: loading the engine and reading 30 lines cannot fit in half a second on any CPU.
    scan([f"Line {i} of a long and closely typed ledger page" for i in range(30)]).save(root / "a-ledger.png")
    (root / "b-note.txt").write_text("Walruses haul out on ice.\n")
    lib = make_lib(extract_timeout_s=0.5)
    lib.add_folder(root)
    report = lib.index()
    assert [(Path(p).name, r) for p, r in report.failures] == [("a-ledger.png", "Took longer than 0.5 s to read")]
    assert report.indexed == 1 and [Path(h.path).name for h in keyword_hits(lib, "walruses")] == ["b-note.txt"]
    assert not list(data_dir.glob("ocr-cache/**/*.json"))  # no page was done: nothing cached


def test_without_the_engine_scanned_pages_are_skipped_and_the_rest_is_read(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import fails, as in a broken install
    monkeypatch.setattr(ocr, "_engine", None)
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make_pdf([["A typed page about otters."]]))))
    writer.append(PdfReader(io.BytesIO(image_only_pdf([scan(["A scanned page about seals"])]))))
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as fh:
        writer.write(fh)
    run = OcrRun(OcrOptions())
    result = extract(mixed, run)
    assert [(s.page, s.text) for s in result.sections] == [(1, "A typed page about otters.")]
    assert run.stats.skipped == [f"Scanned pages are skipped: {ocr.NOT_INSTALLED}"]
    png = tmp_path / "seals.png"
    scan(["Seals"]).save(png)
    with pytest.raises(ExtractionError, match="not installed"):
        extract(png, OcrRun(OcrOptions()))


@pytest.mark.slow
def test_a_sideways_photo_is_read_upright_with_its_word_edges_cached(tmp_path, make_lib, data_dir):
    root = tmp_path / "photos"
    root.mkdir()
    # Stored turned a quarter to the left, with the EXIF orientation a phone writes for it (6: turn it 90°
    # clockwise to view it).
    exif = Image.Exif()
    exif[0x0112] = 6
    scan(["Ferry timetable for Oslo", "Departures every hour"]).rotate(90, expand=True).save(
        root / "photo.jpg", exif=exif
    )
    lib = make_lib()
    lib.add_folder(root)
    report = lib.index()
    assert report.failures == [] and report.ocr_pages == 1
    assert [Path(h.path).name for h in keyword_hits(lib, "timetable")] == ["photo.jpg"]
    from almanac.core.extractors.ocr_cache import OcrCache

    lines = OcrCache.open(str(data_dir / "ocr-cache"), root / "photo.jpg", ocr.ENGINE_ID).get(1)
    line = next(line for line in lines if "Oslo" in line.text)
    words = line.word_boxes()
    assert len(line.words) == len(words) == len(line.text.split())  # the engine's edges, not a guess
    edges = [(box[0], box[2]) for _, box in words]
    assert all(a < b <= c for (a, b), (c, _) in zip(edges, edges[1:], strict=False))  # left to right
    assert line.box[0] <= edges[0][0] and edges[-1][1] <= line.box[2] + 0.01


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 6])  # the product's one line a batch, and the engine's default
def test_lines_recognised_at_once_are_read_as_the_single_recogniser_reads_them(monkeypatch, batch):
    # 14 lines shared out between two sessions (with batches of six: three, each cut as the engine cuts them,
    # so each line is padded as with the engine's own recogniser).
    cargo = ["tea", "rope", "salt", "tin", "wool", "coal", "rice", "iron", "silk", "oats", "lime", "wine", "hemp"]
    page = scan([f"Entry {i}: {word} for the harbour master" for i, word in enumerate(cargo, start=10)] + ["Signed"])
    monkeypatch.setitem(ocr.ENGINE_PARAMS, "Rec.rec_batch_num", batch)
    monkeypatch.setattr(ocr, "_cores", lambda: 2)  # two sessions on any machine
    read = {}
    for count in (1, 2):
        monkeypatch.setattr(ocr, "_engine", None)
        monkeypatch.setattr(ocr, "RECOGNISERS", count)
        assert isinstance(ocr._get_engine().text_rec, SharedRecogniser) == (count == 2)
        read[count] = ocr.recognise(page)
    assert read[2] == read[1]  # text, box and word edges of every line, in the same order
    assert [line.text for line in read[2]][-2:] == ["Entry 22: hemp for the harbour master", "Signed"]
    assert all(len(line.words) == len(line.text.split()) for line in read[2])


@pytest.mark.slow
def test_a_rapidocr_without_the_recogniser_internals_still_reads(monkeypatch, caplog):
    """The shared recogniser builds on rapidocr's internals; another version's must not stop OCR."""

    def missing(engine, count):
        raise AttributeError("'RapidOCR' object has no attribute 'cfg'")

    monkeypatch.setattr(ocr, "_shared_recogniser", missing)
    monkeypatch.setattr(ocr, "_cores", lambda: 2)
    monkeypatch.setattr(ocr, "_engine", None)
    assert not isinstance(ocr._get_engine().text_rec, SharedRecogniser)
    assert [line.text for line in ocr.recognise(scan(["Harbour dues paid in full"]))] == ["Harbour dues paid in full"]
    assert "one batch of lines at a time" in caplog.text
    monkeypatch.setattr(ocr, "_engine", None)  # the next test gets the product's engine
