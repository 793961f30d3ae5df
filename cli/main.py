"""The `almanac` command line: the same core the desktop app uses."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import signal
import sys
import time
import traceback
from pathlib import Path

from almanac.core import paths
from almanac.core.cancel import CancelToken
from almanac.core.errors import AlmanacError, Cancelled
from almanac.core.hits import MODES

from . import cache as cache_cli
from . import models as models_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="almanac", description="Answers questions about your own files, with sources."
    )
    p.add_argument(
        "--data-dir", help="where the index and settings live (default: $ALMANAC_HOME or the platform's)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    p.add_argument("--version", action="version", version=f"almanac {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("add", help="add folders to the library (does not index them)")
    s.add_argument("folders", nargs="+")
    s = sub.add_parser("remove", help="remove a folder and its index")
    s.add_argument("folder")
    s = sub.add_parser("index", help="index the library, or add and index the given folders")
    s.add_argument("folders", nargs="*")
    s = sub.add_parser("status", help="folders, documents, chunks, failures")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("search", help="hybrid search over the index")
    s.add_argument("query", nargs="?")
    s.add_argument("--queries", type=Path, help="file with one query per line; writes JSON lines")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--mode", choices=MODES, default="hybrid")
    s.add_argument("--folder", action="append", help="only search this library folder (repeatable)")
    s.add_argument("--exact", action="store_true", help="read every vector, not the index (slow; to verify)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("ask", help="answer a question from your files, with sources")
    s.add_argument("question")
    s.add_argument("--model", type=Path, help="a GGUF file (default: the bundled SmolLM2-135M-Instruct)")
    s.add_argument("--k", type=int, help="number of sources (default: from settings)")
    s.add_argument("--mode", choices=MODES, default="hybrid")
    s.add_argument("--folder", action="append")
    s.add_argument("--json", action="store_true")
    s.add_argument("--fresh", action="store_true", help="ask the model again instead of the answer cache")

    s = sub.add_parser("stats", help="latency, hit rate, declines, errors and feedback from the query log")
    s.add_argument("--since", default="7d", help="period to cover, e.g. 24h, 7d, 4w (default 7d)")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("eval", help="score retrieval on a BEIR-format set, or on your own library (--self)")
    s.add_argument("qrels_dir", nargs="?", type=Path, help="folder with queries.jsonl and qrels/SPLIT.tsv")
    s.add_argument(
        "--self", dest="self_eval", action="store_true", help="known-item set built from your own library"
    )
    s.add_argument("--rebuild", action="store_true", help="with --self: sample a new known-item set")
    s.add_argument("--split", default="test", help="qrels split to score (default test)")
    s.add_argument("--mode", action="append", choices=MODES, help="mode to score (repeatable; default all)")
    s.add_argument("--json", action="store_true")

    models_cli.add_parser(sub)
    cache_cli.add_parser(sub)
    sub.add_parser("watch", help="keep the index in step with the folders until Ctrl+C")
    s = sub.add_parser("gui", help="start the desktop app")
    s.add_argument(
        "--smoke-seconds", type=float, metavar="N", help="quit N seconds after the window shows (smoke test)"
    )
    return p


def _version() -> str:
    try:
        return importlib.metadata.version("almanac")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if args.data_dir:
        paths.set_data_dir(args.data_dir)
    if args.command == "gui":
        from almanac.app.main import run  # Qt is only imported for the GUI

        return run(smoke_seconds=args.smoke_seconds)
    from . import commands

    cancel = CancelToken()

    # First Ctrl+C stops cooperatively (nothing half-written); a second one kills.
    def on_sigint(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        if args.command == "models":  # needs no library
            return models_cli.run(args, cancel)
        if args.command == "cache":
            return cache_cli.run(args, cancel)
        return commands.run(args, cancel)
    except Cancelled:
        print("\nStopped. The index is consistent; run the command again to continue.", file=sys.stderr)
        return 130
    except AlmanacError as err:
        print(f"almanac: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except Exception:
        # A bug, not the user's doing: keep the details in a log and say where, instead of a traceback.
        log_file = paths.log_dir() / "almanac-cli.log"
        with log_file.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} almanac {' '.join(argv or sys.argv[1:])}\n")
            f.write(traceback.format_exc())
        print(
            f"almanac: internal error — this is a bug in Almanac. Details were written to {log_file};"
            " please include that file in a bug report.",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
