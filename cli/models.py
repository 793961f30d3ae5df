"""`almanac models list|download|remove|use`: the model catalog from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time

from almanac.core import catalog, keys
from almanac.core.cancel import CancelToken
from almanac.core.download import Progress
from almanac.core.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download, remove and choose answer models")
    actions = p.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    s = actions.add_parser("list", help="the catalog, with what is installed and what this computer can run")
    s.add_argument("--json", action="store_true")
    s = actions.add_parser("download", help="download (or resume downloading) a model and verify it")
    s.add_argument("name", help="a catalog id, as in `almanac models list`")
    s.add_argument("--use", action="store_true", help="make it the answer model once downloaded")
    s.add_argument("--json", action="store_true")
    s = actions.add_parser("remove", help="delete a downloaded model (and any partial download)")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s = actions.add_parser("use", help="answer with this model (`bundled` for the built-in one)")
    s.add_argument("name")
    s.add_argument("--force", action="store_true", help="use it even if it may not fit in memory")
    s = actions.add_parser("key", help="store an answer server's API key (read from the terminal or stdin)")
    s.add_argument("server", help="the server's name in the answer_servers setting")
    s.add_argument("--delete", action="store_true", help="forget the stored key")


def run(args: argparse.Namespace, cancel: CancelToken) -> int:
    actions = {"list": _list, "download": _download, "remove": _remove, "use": _use, "key": _key}
    return actions[args.models_action](args, cancel)


def _rows() -> list[dict]:
    installed = catalog.installed_models()
    current = Settings.load().llm_path
    bundled = installed.get(catalog.BUNDLED_ID)
    rows = []
    if bundled is not None:
        rows.append({
            "id": catalog.BUNDLED_ID, "name": "SmolLM2 135M Instruct (bundled, offline)",
            "size_bytes": bundled.size_bytes, "ram_gb": 0.5, "context_length": 8192, "license": "Apache-2.0",
            "verified": True, "status": "installed", "path": bundled.path, "in_use": not current,
            "partial_bytes": 0, "ram_warning": None,
        })
    for m in catalog.load_catalog():
        entry = installed.get(m.id)
        partial = catalog.pending_bytes(m)
        status = "installed" if entry else "partial" if partial else "available"
        rows.append({
            **m.to_json(),
            "status": status,
            "path": entry.path if entry else None,
            "in_use": bool(entry) and current == entry.path,
            "partial_bytes": partial,
            "ram_warning": catalog.ram_warning(m),
        })
    return rows


def _size(row: dict) -> str:
    n = row.get("size_bytes")
    return f"{n / 1e6:,.0f} MB" if n else f"~{row['approx_size_mb']:,} MB"


def _list(args: argparse.Namespace, cancel: CancelToken) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps({"models": rows}, indent=2))
        return 0
    print(f"  {'id':<14}{'size':>10}{'RAM':>6}{'context':>9}  {'status':<11} {'licence':<28} name")
    for r in rows:
        mark = "*" if r["in_use"] else " "
        status = r["status"]
        if status == "partial":
            status = f"{r['partial_bytes'] / 1e6:.0f} MB done"
        print(
            f"{mark} {r['id']:<14}{_size(r):>10}{r['ram_gb']:>4g}GB{r['context_length']:>9}  {status:<11}"
            f" {r['license'][:28]:<28} {r['name']}" + ("" if r["verified"] else "  (facts not verified)")
        )
        if r["ram_warning"]:
            print(f"    ! {r['ram_warning']}")
    print("\n* = the model answering now. `almanac models download ID` to get one, `almanac models use ID`.")
    return 0


class _ProgressPrinter:
    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and p.done != p.total):
            return
        self._last = now
        total = f"/{p.total / 1e6:,.0f} MB" if p.total else " MB"
        eta = f", {p.eta_s:,.0f} s left" if p.eta_s is not None else ""
        sys.stderr.write(f"\r\033[K{p.done / 1e6:,.0f}{total} at {p.bytes_per_s / 1e6:.1f} MB/s{eta}")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")


def _download(args: argparse.Namespace, cancel: CancelToken) -> int:
    model = catalog.find(catalog.load_catalog(), args.name)
    warning = catalog.ram_warning(model)
    if warning:
        print(f"Warning: {warning}", file=sys.stderr)
    resumed = catalog.pending_bytes(model)
    if resumed and not args.json:
        print(f"Resuming {model.name} from {resumed / 1e6:,.0f} MB.", file=sys.stderr)
    bar = _ProgressPrinter()
    try:
        entry = catalog.install(model, progress=bar, cancel=cancel)
    finally:
        bar.finish()
    if args.use:
        _set_model(entry.path)
    if args.json:
        print(json.dumps({"id": model.id, "path": entry.path, "sha256": entry.sha256,
                          "checked_against": entry.checked_against, "in_use": bool(args.use)}, indent=2))
        return 0
    how = {
        "sha256": "SHA-256 matches the catalog",
        "md5": "MD5 matches the catalog",
        "size": "size matches; no published checksum to compare",
        "unverified": "no published size or checksum: NOT verified; it is a GGUF file",
    }[entry.checked_against]
    print(f"Downloaded {model.name} to {entry.path} ({how}; SHA-256 {entry.sha256}).")
    if args.use:
        print("Almanac now answers with it.")
    return 0


def _remove(args: argparse.Namespace, cancel: CancelToken) -> int:
    model_id = catalog.find(catalog.load_catalog(), args.name).id
    path = catalog.installed_models().get(model_id)
    removed = catalog.remove(model_id)
    if path is not None and Settings.load().llm_path == path.path:
        _set_model("")  # back to the bundled model, which always works
    if args.json:
        print(json.dumps({"id": model_id, "removed": removed}))
    else:
        print(f"Removed {model_id}." if removed else f"{model_id} was not downloaded.")
    return 0


def _use(args: argparse.Namespace, cancel: CancelToken) -> int:
    if args.name.strip().lower() == catalog.BUNDLED_ID:
        _set_model("")
        print("Almanac answers with the bundled model.")
        return 0
    model = catalog.find(catalog.load_catalog(), args.name)
    entry = catalog.installed_models().get(model.id)
    if entry is None:
        print(f"{model.id} is not downloaded yet: run `almanac models download {model.id}`.", file=sys.stderr)
        return 1
    warning = catalog.ram_warning(model)
    if warning and not args.force:
        print(f"{warning}\nAdd --force to use it anyway.", file=sys.stderr)
        return 1
    _set_model(entry.path)
    print(f"Almanac answers with {model.name}.")
    return 0


def _key(args: argparse.Namespace, cancel: CancelToken) -> int:
    if args.delete:
        keys.delete_api_key(args.server)
        print(f"Forgot the API key of {args.server}.")
        return 0
    # Never an argument: command lines end up in shell history and process lists.
    secret = getpass.getpass(f"API key for {args.server}: ") if sys.stdin.isatty() else sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        print("No key given; nothing stored.", file=sys.stderr)
        return 1
    where = keys.set_api_key(args.server, secret)
    place = "the system keyring" if where == "keyring" else f"{keys.keys_path()} (readable only by you)"
    print(f"Stored the API key of {args.server} in {place}.")
    return 0


def _set_model(path: str) -> None:
    settings = Settings.load()
    settings.llm_path = path
    settings.save()
