"""OCR engines compared on rendered pages of the evaluation PDFs: accuracy against the text layer, and speed.

    nice -n 10 .venv/bin/python -m bench.ocr [--engines rapidocr tesseract] [--dpi 150 300] [--pages 6]
        [--squeeze 1.0 0.6] [--det-max N] [--threads N] [--batch N] [--no-words] [--spin] [--arena] [--before]
        [--recognisers N] [--repeat N] [--memory]

Each page below is rendered by PDFium (as the product renders a scanned PDF page) at each dpi, OCR'd, and
compared with the same page's text layer read by pypdf, which is the ground truth. Both texts go through the
product's page cleanup (hyphens at line ends rejoined), NFKC, lower case; then
  CER = character edit distance / characters of the truth (whitespace collapsed to one space),
  WER = word edit distance / words of the truth (words = runs of letters and digits; punctuation dropped),
  missed = the truth's words (as a multiset) the OCR text lacks, in any order: what keyword search needs,
  and blind to reading order (a figure's labels, a two-column page read across), which WER is not.
Time: wall and CPU seconds per page (CPU includes Tesseract's child process); on a shared machine the CPU
seconds divided by the cores an engine uses are the better estimate of an idle machine's wall time. Each
page is read by every engine in turn, and the summary gives each engine's wall and CPU time as a ratio to the
first engine's in the same run; `--repeat N` reads the pages N times, the engines' order reversed every other
time.

Engines: `rapidocr` is the product's path (core/extractors/ocr.py: RapidOCR, models in its wheel, the page
read at `SQUEEZE` of its width, word edges kept, ONNX Runtime's threads not spinning, one text line a
recognition batch, two batches recognised at once on two sessions with half the cores each, the product's
column-aware line order). Variants of it compare one change at a time: `--squeeze X` reads the page at X of
its width (1.0: as rendered); `--det-max N` detects text on an image shrunk to at most N pixels a side (the
engine's default scales the short side to 736); `--threads N` gives ONNX Runtime N intra-op threads (the
default: one per core; detection's and the single recogniser's); `--recognisers N` recognises N batches at
once on N sessions (1: the engine's own single session, the path before); `--batch N` recognises N lines per
batch (the product: 1; the engine's default: 6); `--no-words` leaves out the word edges the preview uses;
`--spin` lets ONNX Runtime's threads spin while they wait (its default); `--arena` turns ONNX Runtime's memory
arena on (RapidOCR turns it off); `--before` runs the engine as the product had it before these (full width,
spinning threads, no word edges, one recogniser). `--memory` reports the peak address space (VmPeak, what the
extraction child's cap counts) of each variant alone, in a fresh process each, instead of the table.
`tesseract` needs the system package (apt: tesseract-ocr) and pytesseract; it is skipped with a note when
absent. The OCR'd texts are kept in ~/.cache/almanac-bench/ocr/ for inspection.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from almanac.core.extractors import ocr
from almanac.core.extractors.ocr import page_text, recognise
from almanac.core.extractors.pdf import normalize_page_text
from pypdf import PdfReader
from rapidfuzz.distance import Levenshtein

from .common import cache_dir, eval_dir, table
from .util import clock, header

# Body-text pages (1-based): single-column and two-column papers, a manual. Title pages, reference lists
# and pages that are mostly figures or formulas are left out: their text layer is not a reading-order truth.
PAGES = [
    ("bitcoin-whitepaper.pdf", 2),
    ("bitcoin-whitepaper.pdf", 3),
    ("beir-benchmark-2104.08663.pdf", 3),
    ("dpr-dense-passage-retrieval-2004.04906.pdf", 2),
    ("subjqa-dataset-2004.14283.pdf", 2),
    ("bash-reference-manual.pdf", 20),
]
# Its diagram's labels are read in another order than the text layer lists them: "body WER" leaves it out.
FIGURE_PAGES = {("bitcoin-whitepaper.pdf", 2)}
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", normalize_page_text(text)).lower()
    for fancy, plain in (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2014", "-")):
        text = text.replace(fancy, plain)
    return _SPACE.sub(" ", text).strip()


def error_rates(truth: str, text: str) -> tuple[float, float, float]:
    """(CER, WER, missed words in any order) of `text` against `truth`, both normalised."""
    t, o = normalise(truth), normalise(text)
    cer = Levenshtein.distance(t, o) / max(len(t), 1)
    tw, ow = _WORD.findall(t), _WORD.findall(o)
    wer = Levenshtein.distance(tw, ow) / max(len(tw), 1)
    missed = sum((Counter(tw) - Counter(ow)).values()) / max(len(tw), 1)
    return cer, wer, missed


def render(path: Path, number: int, dpi: int):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return pdf[number - 1].render(scale=dpi / 72).to_pil()
    finally:
        pdf.close()


_DEFAULT_PARAMS = dict(ocr.ENGINE_PARAMS)


_DEFAULT_SESSION = dict(ocr.SESSION_CONFIG)


def rapidocr_engine(
    squeeze: float = ocr.SQUEEZE,
    words: bool = True,
    spin: bool | None = None,
    recognisers: int = ocr.RECOGNISERS,
    **params: object,
) -> Callable:
    """The product's path with its own engine, built once with `params` over the product's settings
    (`spin`: ONNX Runtime's threads spin, or not, while they wait; None: the product's choice)."""
    ocr.RECOGNISERS = recognisers
    ocr.ENGINE_PARAMS.clear()
    ocr.ENGINE_PARAMS.update({**_DEFAULT_PARAMS, **params})
    ocr.SESSION_CONFIG.clear()
    ocr.SESSION_CONFIG.update(_DEFAULT_SESSION)
    if spin is not None:
        ocr.SESSION_CONFIG["session.intra_op.allow_spinning"] = "1" if spin else "0"
    ocr._engine = None
    engine = ocr._get_engine()

    def run(image) -> str:
        ocr._engine, ocr.WORD_BOXES = engine, words
        return page_text(recognise(image, squeeze=squeeze))

    return run


def tesseract_engine() -> Callable | None:
    if shutil.which("tesseract") is None:
        return None
    try:
        import pytesseract
    except ImportError:
        return None
    return lambda image: pytesseract.image_to_string(image, lang="eng")


ENGINES = {"rapidocr": rapidocr_engine, "tesseract": tesseract_engine}


def _read_for_memory(make: Callable, pages: list[tuple[Path, int]], dpi: int) -> tuple[float, float]:
    engine = make()
    for path, number in pages:
        engine(render(path, number, dpi))
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(int(status[key].split()[0]) / 1024 for key in ("VmPeak", "VmHWM"))  # type: ignore[return-value]


def peak_memory(make: Callable, pages: list[tuple[Path, int]], dpi: int) -> tuple[float, float]:
    """(peak address space, peak resident) in MB of a fresh process that builds the engine and reads the pages:
    the address space is what the extraction child's cap (RLIMIT_AS) counts. Linux only (/proc)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_read_for_memory, make, pages, dpi).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--dpi", nargs="+", type=int, default=[150, 300])
    parser.add_argument("--pages", type=int, default=len(PAGES), help="use the first N pages of the list")
    parser.add_argument("--det-max", type=int, default=0, help="also run rapidocr with detection at <= N px")
    parser.add_argument("--squeeze", nargs="*", type=float, default=[], help="also run rapidocr at X of the width")
    parser.add_argument("--threads", type=int, default=0, help="also run rapidocr with N ONNX Runtime threads")
    parser.add_argument("--batch", type=int, default=0, help="also run rapidocr recognising N lines a batch")
    parser.add_argument("--no-words", action="store_true", help="also run rapidocr without word edges")
    parser.add_argument("--spin", action="store_true", help="also run rapidocr with spinning threads")
    parser.add_argument("--arena", action="store_true", help="also run rapidocr with ONNX Runtime's memory arena")
    parser.add_argument(
        "--before", action="store_true", help="also run rapidocr as it was before (full width, spinning, no words)"
    )
    parser.add_argument("--recognisers", type=int, default=0, help="also run rapidocr on N recognition sessions")
    parser.add_argument("--memory", action="store_true", help="peak address space of each variant, in its own process")
    parser.add_argument("--repeat", type=int, default=1, help="read the pages N times (wall time is noisy)")
    args = parser.parse_args()
    engines: dict[str, Callable] = {name: ENGINES[name] for name in args.engines}
    for x in args.squeeze:
        engines[f"rapidocr-squeeze{x:g}"] = functools.partial(rapidocr_engine, squeeze=x)
    if args.det_max:
        det = {"Det.limit_type": "max", "Det.limit_side_len": args.det_max}
        engines[f"rapidocr-det{args.det_max}"] = functools.partial(rapidocr_engine, **det)
    if args.threads:
        threads = {"EngineConfig.onnxruntime.intra_op_num_threads": args.threads}
        engines[f"rapidocr-threads{args.threads}"] = functools.partial(rapidocr_engine, **threads)
    if args.batch:
        batch = {"Rec.rec_batch_num": args.batch}
        engines[f"rapidocr-batch{args.batch}"] = functools.partial(rapidocr_engine, **batch)
    if args.no_words:
        engines["rapidocr-nowords"] = functools.partial(rapidocr_engine, words=False)
    if args.spin:
        engines["rapidocr-spin"] = functools.partial(rapidocr_engine, spin=True)
    if args.arena:
        arena = {"EngineConfig.onnxruntime.enable_cpu_mem_arena": True}
        engines["rapidocr-arena"] = functools.partial(rapidocr_engine, **arena)
    if args.recognisers:
        engines[f"rapidocr-rec{args.recognisers}"] = functools.partial(rapidocr_engine, recognisers=args.recognisers)
    if args.before:
        before = functools.partial(rapidocr_engine, squeeze=1.0, words=False, spin=True, recognisers=1)
        engines["rapidocr-before"] = before
    keep = cache_dir("ocr")
    docs = eval_dir("docs") / "pdf"
    pages = PAGES[: args.pages]
    if args.memory:
        print(header("OCR: peak address space of each variant reading the pages, each in a fresh process"))
        rows = [[name, dpi, *peak_memory(make, [(docs / f, n) for f, n in pages], dpi)]
                for dpi in args.dpi for name, make in engines.items() if name != "tesseract"]
        print(table(["engine", "dpi", "VmPeak MB", "VmHWM MB"], rows))
        return
    truths = {(f, n): PdfReader(docs / f).pages[n - 1].extract_text() for f, n in pages}
    print(header("OCR: accuracy against the text layer, and seconds per page"))
    ready: dict[str, Callable] = {}
    for name, make in engines.items():
        engine = make()
        if engine is None:
            print(f"SKIP {name}: not installed (apt: tesseract-ocr; pip: pytesseract)")
            continue
        engine(render(docs / pages[0][0], pages[0][1], 72))  # loads the models; not timed
        ready[name] = engine
    # Each page is read by every engine in turn, so a change in the machine's load falls on all alike.
    runs: dict[tuple[str, int], list[tuple[float, float, float, float, float, bool]]] = {}
    detail = []
    for dpi in args.dpi:
        for f, n, turn in ((f, n, turn) for turn in range(args.repeat) for f, n in pages):
            image = render(docs / f, n, dpi)
            # Every other round the other way round: a variant read right after another does not always
            # inherit its caches or its neighbours' burst.
            for name, engine in list(ready.items())[:: -1 if turn % 2 else 1]:
                with clock() as c:
                    text = engine(image)
                (keep / f"{name}-{dpi}-{Path(f).stem}-p{n}.txt").write_text(text, encoding="utf-8")
                cer, wer, missed = error_rates(truths[(f, n)], text)
                runs.setdefault((name, dpi), []).append((cer, wer, missed, c.wall, c.cpu, (f, n) in FIGURE_PAGES))
                detail.append([name, dpi, f"{f[:24]} p{n}", f"{cer:.2%}", f"{wer:.2%}", f"{missed:.2%}", c.wall, c.cpu])
                print(f"  {name} {dpi} dpi {f} p{n}: CER {cer:.2%} WER {wer:.2%} missed {missed:.2%} {c.wall:.1f} s wall {c.cpu:.1f} s CPU", flush=True)
    summary = []
    for (name, dpi), rows in runs.items():
        k = len(rows)
        cers, wers, misses, walls, cpus, figure = (list(column) for column in zip(*rows, strict=True))
        body = [w for w, fig in zip(wers, figure, strict=True) if not fig]
        base = runs[(next(iter(ready)), dpi)]  # the first engine (the product, by default) in the same run
        base_wall, base_cpu = sum(r[3] for r in base) / len(base), sum(r[4] for r in base) / len(base)
        wall, cpu = sum(walls) / k, sum(cpus) / k
        summary.append(
            [name, dpi, k, f"{sum(cers) / k:.2%}", f"{sum(wers) / k:.2%}", f"{sum(body) / len(body):.2%}" if body else "-", f"{max(wers):.2%}", f"{sum(misses) / k:.2%}", wall, cpu, f"{wall / base_wall:.2f}", f"{cpu / base_cpu:.2f}"]
        )
    print()
    print(table(["engine", "dpi", "page", "CER", "WER", "missed", "s wall", "s CPU"], detail))
    print()
    print(table(["engine", "dpi", "pages", "mean CER", "mean WER", "body WER", "worst WER", "missed", "s/page wall", "s/page CPU", "wall ratio", "CPU ratio"], summary))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load avg {load:.1f} at end")


if __name__ == "__main__":
    main()
