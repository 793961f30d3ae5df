"""The model catalog: recommended GGUF chat models, which of them are installed, and whether one fits.

The catalog is a data file shipped with Almanac (`resources/models.json`). Downloaded models live in
`<data dir>/models/`, with `installed.json` recording what each file is and the SHA-256 it was verified
with. The bundled SmolLM2-135M is always installed, needs no network and stays the default.

`ALMANAC_MODEL_MIRROR` replaces the download host: the file is fetched from `<mirror>/<file name>` (an
offline mirror, or a local server in tests).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from . import paths
from .cancel import CancelToken
from .download import Expected, ProgressFn, discard_partial, download, partial_bytes
from .errors import AlmanacError, ModelError
from .llm import GGUF_MAGIC, bundled_llm_path

BUNDLED_ID = "bundled"
MIRROR_ENV = "ALMANAC_MODEL_MIRROR"
# What a model needs beyond its file: the KV cache at a few thousand tokens, the prompt and runtime buffers.
RAM_HEADROOM = 1.2


@dataclass(frozen=True)
class CatalogModel:
    id: str
    name: str
    params: str
    file: str
    url: str
    size_bytes: int | None  # None: not published; checked against the server's Content-Length instead
    approx_size_mb: int
    ram_gb: float
    context_length: int
    license: str
    sha256: str | None
    md5: str | None
    verified: bool  # size and a checksum come from a published catalog
    source: str  # where the facts come from, and what could not be verified

    def download_url(self) -> str:
        mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
        return f"{mirror}/{self.file}" if mirror else self.url

    def to_json(self) -> dict:
        return asdict(self)


class UnknownModel(AlmanacError):
    pass


def load_catalog(path: Path | None = None) -> list[CatalogModel]:
    if path is not None:
        raw = path.read_text(encoding="utf-8")
    else:
        raw = resources.files("almanac.resources").joinpath("models.json").read_text(encoding="utf-8")
    return [CatalogModel(**m) for m in json.loads(raw)["models"]]


def models_dir() -> Path:
    d = paths.data_dir() / "models"
    d.mkdir(exist_ok=True)
    return d


def _manifest_path() -> Path:
    return models_dir() / "installed.json"


@dataclass
class Installed:
    id: str
    path: str
    sha256: str
    size_bytes: int
    installed_at: float
    # "sha256" | "md5" | "size" (no checksum published) | "unverified" (nothing published: only the
    # server's length and the GGUF header were checked) | "bundled"
    checked_against: str


def installed_models() -> dict[str, Installed]:
    """Installed models by id, the bundled one first; entries whose file has gone are dropped."""
    out: dict[str, Installed] = {}
    try:
        bundled = bundled_llm_path()
        out[BUNDLED_ID] = Installed(BUNDLED_ID, str(bundled), "", bundled.stat().st_size, 0.0, "bundled")
    except ModelError:
        pass
    for model_id, entry in _read_manifest().items():
        if Path(entry["path"]).is_file():
            out[model_id] = Installed(**entry)
    return out


def _read_manifest() -> dict[str, dict]:
    try:
        return json.loads(_manifest_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # a damaged manifest only forgets what is installed; files are found again on download


def _write_manifest(entries: dict[str, dict]) -> None:
    path = _manifest_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def find(catalog: list[CatalogModel], name: str) -> CatalogModel:
    """A catalog model by id, or by file name, case-insensitively."""
    key = name.strip().lower()
    for m in catalog:
        if key in (m.id.lower(), m.file.lower()):
            return m
    ids = ", ".join(m.id for m in catalog)
    raise UnknownModel(f"No model called {name!r} in the catalog. Choose one of: {ids}.")


def target_path(model: CatalogModel) -> Path:
    return models_dir() / model.file


def install(
    model: CatalogModel, *, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> Installed:
    """Download (or resume downloading) `model`, verify it and record it as installed."""
    dest = target_path(model)
    sha = download(
        model.download_url(),
        dest,
        Expected(model.size_bytes, model.sha256, model.md5),
        progress=progress,
        cancel=cancel,
    )
    with dest.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            dest.unlink()
            raise ModelError(f"The downloaded {dest.name} is not a GGUF model file; it was deleted.")
    checked = "sha256" if model.sha256 else "md5" if model.md5 else "size"
    if checked == "size" and model.size_bytes is None:
        checked = "unverified"
    entry = Installed(model.id, str(dest), sha, dest.stat().st_size, time.time(), checked)
    entries = _read_manifest()
    entries[model.id] = asdict(entry)
    _write_manifest(entries)
    return entry


def remove(model_id: str) -> bool:
    """Delete an installed model (and any partial download of it); False if there was nothing."""
    if model_id == BUNDLED_ID:
        raise AlmanacError("The bundled model is part of Almanac and cannot be removed.")
    entries = _read_manifest()
    entry = entries.pop(model_id, None)
    removed = False
    if entry is not None:
        Path(entry["path"]).unlink(missing_ok=True)
        _write_manifest(entries)
        removed = True
    for m in load_catalog():
        if m.id == model_id and partial_bytes(target_path(m)):
            discard_partial(target_path(m))
            removed = True
    return removed


def pending_bytes(model: CatalogModel) -> int:
    """Bytes of an interrupted download of `model` that a new download will resume from."""
    return partial_bytes(target_path(model))


# -- fitting the machine ---------------------------------------------------------------------------------


def total_ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None


def available_ram_bytes() -> int | None:
    """Memory free for a new program (Linux MemAvailable), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def ram_warning(model: CatalogModel) -> str | None:
    """A plain warning when this machine's memory is too small for `model`, else None."""
    need = model.ram_gb * 1e9
    total = total_ram_bytes()
    if total is not None and need * RAM_HEADROOM > total:
        return (
            f"{model.name} needs about {model.ram_gb:g} GB of memory and this computer has"
            f" {total / 1e9:.1f} GB: it would be very slow or fail to load. Choose a smaller model."
        )
    available = available_ram_bytes()
    if available is not None and need > available:
        return (
            f"{model.name} needs about {model.ram_gb:g} GB of memory and only {available / 1e9:.1f} GB is"
            " free right now: close other programs before using it, or choose a smaller model."
        )
    return None

