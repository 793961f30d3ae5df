"""Image files (PNG, JPEG, TIFF, WebP): their text by OCR; each frame of a multi-page TIFF is a page."""

from __future__ import annotations

from pathlib import Path

from ..errors import ExtractionError
from .model import Extracted, Section
from .ocr import MAX_RENDER_SIDE, OcrRun, ocr_pages, page_text

OCR_OFF = "Images are read by OCR, which is turned off"


def _frame(path: Path, number: int):  # -> PIL.Image.Image
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.seek(number - 1)
        # A phone's photo is stored sideways with an EXIF note saying so: OCR reads it upright, as the
        # preview (app.scan_preview) shows it.
        frame = ImageOps.exif_transpose(image).convert("RGB")
    if max(frame.size) > MAX_RENDER_SIDE:
        frame.thumbnail((MAX_RENDER_SIDE, MAX_RENDER_SIDE))  # the engine shrinks larger ones anyway
    return frame


def extract_image(path: Path, ocr: OcrRun | None = None) -> Extracted:
    if ocr is None or not ocr.options.enabled:
        raise ExtractionError(OCR_OFF)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            # Only TIFF frames are pages; an animated WebP's frames are one picture moving.
            frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
            image.verify()
    except Image.DecompressionBombError as err:
        raise ExtractionError(f"Image is too large to read ({err})") from err
    except (UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise ExtractionError("Not a readable image (damaged, or another format)") from err
    try:
        found = ocr_pages(path, list(range(1, frames + 1)), lambda number: _frame(path, number), ocr)
    except (ExtractionError, MemoryError):
        raise
    except (OSError, SyntaxError, ValueError) as err:  # Pillow on a damaged image
        raise ExtractionError(f"Image is damaged ({type(err).__name__}: {err})") from err
    sections = [
        Section(text=page_text(lines), page=number if frames > 1 else None, heading="")
        for number, lines in found.items()
        if lines
    ]
    return Extracted(title=path.stem, kind="image", sections=sections, ocr=ocr.stats)
