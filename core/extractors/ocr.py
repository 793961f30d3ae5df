"""OCR for scanned PDF pages and image files, run inside the extraction worker (worker.py) like any parser.

Engine: RapidOCR (PP-OCR models on ONNX Runtime). Its `rapidocr` wheel ships the models, so it installs from
PyPI with the project and never downloads anything at run time. bench/ocr.py chose it over Tesseract; the
figures are in docs/benchmarks.md ("OCR"). When the engine cannot be imported, scanned pages are skipped
with a reason and everything else is still read.

Cost control: each file's results are kept by content hash (ocr_cache.py), page by page, so an unchanged
scan is never OCR'd twice, also under another name; and at most `max_pages` pages of one file are OCR'd.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError
from .model import OcrStats
from .ocr_cache import OcrCache, OcrLine

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

RENDER_DPI = 150  # bench/ocr.py: the word error rate at 150 dpi is within the target; 300 dpi costs ~3x
MAX_RENDER_SIDE = 4000  # pixels: a hostile page size must not become a multi-gigabyte bitmap
MIN_PAGE_CHARS = 20  # a PDF page with less text than this (and an image on it) is treated as a scan
ENGINE_ID = "rapidocr-3/PP-OCRv6-small/150dpi"  # part of the cache key: another engine or dpi re-OCRs
NOT_INSTALLED = "the OCR engine (rapidocr) is not installed"
# Test hook, read in the worker child: OCR fails when this is set (to prove a cached scan is not re-OCR'd).
FAIL_ENV = "ALMANAC_TEST_OCR_FAIL"

# The angle classifier is for rotated text lines; scans are upright, and it costs ~10% per page.
# One line per recognition batch: a batch pads its lines to its widest line's width, work that a line read
# alone is spared (0.83x the CPU of batches of six, the engine's default, for the same words: bench/ocr.py
# --batch 6).
ENGINE_PARAMS: dict[str, object] = {
    "Global.log_level": "warning",
    "Global.use_cls": False,
    "Rec.rec_batch_num": 1,
}
# The recogniser reads each text line scaled to 48 px high, so its cost goes with the lines' width over their
# height: a page read at this share of its width costs that much less to recognise (and to detect text on),
# for the same words (bench/ocr.py --squeeze; docs/benchmarks.md "OCR").
SQUEEZE = 0.7
WORD_BOXES = True  # each word's left and right edge, for the preview's marks (bench/ocr.py --no-words)
# ONNX Runtime's threads spin while they wait for the next piece of work; on a busy two-core machine that
# spinning takes the CPU from the thread with the work (bench/ocr.py --spin). Set on the sessions RapidOCR
# makes, which it gives no config entries of its own.
SESSION_CONFIG: dict[str, str] = {"session.intra_op.allow_spinning": "0"}
# Recognition is ~84% of a page. Two batches are read at once, on two sessions with half the cores each (one
# each on two cores), where the engine's one session shares each batch's small operations among a thread per
# core: 0.93x the wall time (bench/ocr.py --recognisers 1). Not more: each batch in flight holds its own
# working memory (with batches of six, four sessions took the peak address space of six pages from 2.2 to 2.9
# GB, against the extraction child's 3 GB cap; with one line a batch, two sessions take 1.7 GB and one 1.6:
# bench/ocr.py --memory). 1 keeps the engine's own session.
RECOGNISERS = 2

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class OcrOptions:
    """What the user allowed; handed to the worker child when it starts."""

    enabled: bool = True
    max_pages: int = 50  # per file; the pages past it are left out (the first ones are usually the content)
    cache_dir: str = ""  # "" keeps no cache


class OcrUnavailable(ExtractionError):
    """The engine cannot be imported: scanned pages are skipped, the rest of a file is still read."""


@dataclass
class OcrRun:
    """One file's OCR: the options, the per-page progress callback, and what it cost."""

    options: OcrOptions
    progress: ProgressFn | None = None
    stats: OcrStats = field(default_factory=OcrStats)


_engine: Any = None


def _get_engine() -> Any:
    global _engine
    if _engine is None:
        try:
            from rapidocr import RapidOCR
        except Exception as err:
            raise OcrUnavailable(f"Scanned pages are skipped: {NOT_INSTALLED}") from err
        _configure_sessions()
        engine = RapidOCR(params=dict(ENGINE_PARAMS))
        count = min(RECOGNISERS, _cores())
        if count > 1:
            try:
                engine.text_rec = _shared_recogniser(engine, count)  # RapidOCR then never makes its own
            except (ImportError, AttributeError, TypeError) as err:  # another rapidocr's internals
                log.warning("OCR reads one batch of lines at a time: %s", err)
        _engine = engine
    return _engine


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _shared_recogniser(engine: Any, count: int) -> SharedRecogniser:
    """`count` recognisers made as RapidOCR makes its one (RapidOCR._load_rec_model), each with its share of
    the cores."""
    from rapidocr.ch_ppocr_rec import TextRecognizer

    cfg = copy.deepcopy(engine.cfg.Rec)
    cfg.engine_cfg = copy.deepcopy(engine.cfg.EngineConfig[cfg.engine_type.value])
    cfg.engine_cfg.intra_op_num_threads = max(1, _cores() // count)
    cfg.font_path = engine.cfg.Global.font_path
    cfg.model_root_dir = engine.cfg.Global.model_root_dir
    return SharedRecogniser([TextRecognizer(cfg) for _ in range(count)])


class SharedRecogniser:
    """RapidOCR's text recogniser with its batches of lines run at once, each on whichever of the recognisers
    is free (each has its own ONNX Runtime session, so they never wait on one another).

    The lines are sorted by width over height and cut into batches as the engine cuts them, so each line is
    padded to the same width and read as it would be by one recogniser. The widest batches go first, so the
    last one to finish is a short one.
    """

    def __init__(self, recognisers: Sequence[Any]) -> None:
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for recogniser in recognisers:
            self._free.put(recogniser)
        self._batch = int(recognisers[0].rec_batch_num)
        self._pool = ThreadPoolExecutor(len(recognisers), thread_name_prefix="ocr-recognise")

    def __call__(self, request: Any) -> Any:
        import numpy as np
        from rapidocr.ch_ppocr_rec import TextRecInput, TextRecOutput

        start = time.perf_counter()
        images = [request.img] if isinstance(request.img, np.ndarray) else list(request.img)
        # The engine's own sort, not a stable one: justified lines tie, and ties must fall the same way.
        order = np.argsort(np.array([image.shape[1] / float(image.shape[0]) for image in images]))
        batches = [order[at : at + self._batch] for at in range(0, len(order), self._batch)][::-1]

        def read(batch: Any) -> Any:
            recogniser = self._free.get()
            try:
                lines = [images[i] for i in batch]
                return recogniser(TextRecInput(img=lines, return_word_box=request.return_word_box))
            finally:
                self._free.put(recogniser)

        txts, scores, words = [""] * len(images), [0.0] * len(images), [None] * len(images)
        for batch, out in zip(batches, self._pool.map(read, batches), strict=True):
            for i, txt, score, word in zip(batch, out.txts, out.scores, out.word_results, strict=True):
                txts[i], scores[i], words[i] = txt, score, word
        elapse = time.perf_counter() - start
        return TextRecOutput(images, tuple(txts), tuple(scores), tuple(words), elapse)  # type: ignore[arg-type]


def _configure_sessions() -> None:
    """Have RapidOCR's ONNX Runtime sessions take SESSION_CONFIG's entries (read when each is made)."""
    try:
        from rapidocr.inference_engine.onnxruntime.main import OrtInferSession
    except ImportError:  # another layout (another rapidocr): its sessions keep their own options
        return
    make = getattr(OrtInferSession, "_init_sess_opts", None)
    if make is None or getattr(make, "almanac", False):
        return  # options made another way (another rapidocr), or already configured

    def options(cfg: Any) -> Any:
        made = make(cfg)
        for key, value in SESSION_CONFIG.items():
            made.add_session_config_entry(key, value)
        return made

    options.almanac = True  # type: ignore[attr-defined]
    OrtInferSession._init_sess_opts = staticmethod(options)  # type: ignore[method-assign]


def recognise(image: Image, squeeze: float = SQUEEZE) -> list[OcrLine]:
    """The text lines on one image in reading order, with boxes as fractions of the image."""
    if os.environ.get(FAIL_ENV):
        raise ExtractionError("OCR was asked for (test hook)")
    import numpy as np
    from PIL.Image import Resampling

    if squeeze != 1.0:  # boxes are fractions of the image, the same on the narrower copy
        image = image.resize((max(1, round(image.width * squeeze)), image.height), Resampling.BILINEAR)
    width, height = image.size
    result = _get_engine()(np.asarray(image.convert("RGB")), return_word_box=WORD_BOXES)
    if result.boxes is None or not result.txts:
        return []
    # The engine leaves out the word results of a line it found no word in: they are matched to the lines
    # by their letters, not by position.
    words, at = list(result.word_results or ()), 0
    lines = []
    for quad, text in zip(result.boxes, result.txts, strict=True):
        if not text.strip():
            continue
        xs, ys = [float(p[0]) for p in quad], [float(p[1]) for p in quad]
        box = (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
        edges: tuple[tuple[float, float], ...] = ()
        if at < len(words) and "".join(str(w[0]) for w in words[at]) == "".join(text.split()):
            edges = _word_edges(text.strip(), words[at], width)
            at += 1
        lines.append(OcrLine(text.strip(), tuple(round(v, 4) for v in box), edges))  # type: ignore[arg-type]
    return reading_order(lines)


def _word_edges(text: str, pieces: Sequence, width: int) -> tuple[tuple[float, float], ...]:
    """Left and right edges of each whitespace-separated word of `text` from the engine's words for it (a
    word it split at a wide gap is joined again); () when they do not add up to the line's words."""
    edges, queue = [], list(pieces)
    for word in text.split():
        got, left, right = "", float("inf"), 0.0
        while queue and len(got) < len(word):
            content, _score, quad = queue.pop(0)
            got += str(content)
            xs = [float(p[0]) for p in quad]
            left, right = min(left, *xs), max(right, *xs)
        if got != word:
            return ()
        edges.append((round(left / width, 4), round(right / width, 4)))
    return tuple(edges)


def reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Top to bottom, and in two-column stretches the left column before the right one.

    The engine returns lines sorted by height only, which interleaves the columns of a paper. A line that
    spans the middle of the page (a title, a full-width figure caption) ends a two-column stretch.
    """

    def side(line: OcrLine) -> int:
        left, _, right, _ = line.box
        if right <= 0.52:
            return 0
        if left >= 0.48:
            return 1
        return -1  # full width

    ordered: list[OcrLine] = []
    stretch: list[OcrLine] = []
    for line in sorted(lines, key=lambda line: (line.box[1], line.box[0])):
        if side(line) == -1:
            ordered += sorted(stretch, key=lambda line: (side(line), line.box[1]))
            stretch = []
            ordered.append(line)
        else:
            stretch.append(line)
    ordered += sorted(stretch, key=lambda line: (side(line), line.box[1]))
    return ordered


def page_text(lines: Sequence[OcrLine]) -> str:
    return "\n".join(line.text for line in lines)


def ocr_pages(
    path: Path, numbers: Sequence[int], render: Callable[[int], Image], run: OcrRun
) -> dict[int, list[OcrLine]]:
    """OCR the given 1-based pages of one file; cached pages are taken from the cache, not re-read.

    Progress is reported before the first page and after each one: the worker restarts its time box at
    every report, so `extract_timeout_s` bounds one page, and `max_pages` bounds the file.
    """
    limit = run.options.max_pages
    if len(numbers) > limit:
        left = len(numbers) - limit
        limited = f"OCR is limited to {limit} {_pages(limit)} a file (ocr_max_pages)"
        run.stats.skipped.append(f"{limited}; {left} scanned {_pages(left)} left out")
        numbers = numbers[:limit]
    cache = OcrCache.open(run.options.cache_dir, path, ENGINE_ID)
    found: dict[int, list[OcrLine]] = {}
    total = len(numbers)
    if run.progress:
        run.progress(0, total)
    for done, number in enumerate(numbers, start=1):
        lines = cache.get(number)
        if lines is None:
            lines = recognise(render(number))
            cache.put(number, lines)  # page by page: a file stopped halfway resumes where it was
            run.stats.pages_ocr += 1
        else:
            run.stats.pages_cached += 1
        found[number] = lines
        if run.progress:
            run.progress(done, total)
    return found


def _pages(n: int) -> str:
    return "page" if n == 1 else "pages"


def fit_scale(width_pt: float, height_pt: float, dpi: int = RENDER_DPI) -> float:
    """Points-to-pixels scale for rendering a page at `dpi`, bounded by MAX_RENDER_SIDE."""
    scale = dpi / 72
    longest = max(width_pt, height_pt, 1.0) * scale
    return scale if longest <= MAX_RENDER_SIDE else MAX_RENDER_SIDE / max(width_pt, height_pt, 1.0)


def render_pdf_page(path: Path, number: int) -> Image:
    """One 1-based PDF page as an image, rendered by PDFium (the same pages pypdf read)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        page = pdf[number - 1]
        width, height = page.get_size()
        return page.render(scale=fit_scale(width, height)).to_pil()
    finally:
        pdf.close()
