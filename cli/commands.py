"""What each `almanac` subcommand does, on top of `almanac.core`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from almanac.core.cancel import CancelToken
from almanac.core.errors import AlmanacError
from almanac.core.indexer import SyncReport
from almanac.core.library import Library
from almanac.core.store import display_path

from . import insights
from .progress import ProgressLine

READ_ONLY = {"status", "search", "ask"}  # these run beside a writer (the app, `almanac index`)


def run(args: argparse.Namespace, cancel: CancelToken) -> int:
    with Library(read_only=args.command in READ_ONLY, owner=f"almanac {args.command}") as lib:
        return COMMANDS[args.command](lib, args, cancel)


def cmd_add(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    for folder in args.folders:
        f = lib.add_folder(folder)
        print(f"Added {f.path}")
    print("Run `almanac index` to index it.")
    return 0


def cmd_remove(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    lib.remove_folder(args.folder)
    print(f"Removed {args.folder} and its index.")
    return 0


def cmd_index(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    targets = [lib.add_folder(f) for f in args.folders] or None
    if not lib.folders():
        raise AlmanacError("The library is empty: give a folder, as in `almanac index ~/Documents`.")
    bar = ProgressLine()
    start = time.monotonic()
    try:
        report = lib.index(targets, progress=bar, cancel=cancel)
    finally:
        bar.finish()
    print_report(report, time.monotonic() - start)
    return 0


def print_report(r: SyncReport, seconds: float) -> None:
    print(
        f"{r.scanned} files scanned in {seconds:.1f} s: {r.indexed} indexed, {r.unchanged} unchanged,"
        f" {r.moved} moved, {r.deleted} removed, {r.failed} failed; {r.chunks_added} chunks added."
    )
    for path, reason in r.failures:
        print(f"  failed: {path}: {reason}")
    if r.ocr_pages or r.ocr_cached_pages:
        print(f"  OCR: {r.ocr_pages} scanned pages read, {r.ocr_cached_pages} taken from the OCR cache.")
    for path, note in r.notes:  # what was left out of a file that was indexed (pages past ocr_max_pages)
        print(f"  note: {path}: {note}")


def cmd_status(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    s = lib.status()
    if args.json:
        print(json.dumps(s.to_json(), indent=2))
        return 0
    if not s.folders:
        print("The library is empty. Add a folder with `almanac index FOLDER`.")
    for f in s.folders:
        print(f"{f.path}\n  {f.documents} documents, {f.chunks} chunks, {f.failed} failed")
    pending = s.chunks - s.embedded
    print(f"\nDocuments: {s.documents} indexed, {s.failed} failed")
    print(f"Chunks:    {s.chunks} ({s.embedded} embedded, {pending} waiting)")
    print(
        f"Model:     {s.embedding_model or '(none yet)'}"
        + (f", {s.embedding_dim} dimensions" if s.embedding_dim else "")
    )
    print(f"Database:  {lib.db_path} ({s.db_bytes / 1e6:.1f} MB)")
    if s.failures:
        print("\nFailed files:")
        for path, reason in s.failures:
            print(f"  {path}\n    {reason}")
    return 0


def cmd_search(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    if args.queries is None and not args.query:
        raise AlmanacError("Give a query, or --queries FILE with one query per line.")
    searcher = lib.searcher()
    searcher.exact = args.exact
    try:
        if args.queries is not None:
            try:
                lines = args.queries.read_text(encoding="utf-8").splitlines()
            except OSError as err:
                raise AlmanacError(f"Cannot read {args.queries}: {err.strerror}") from err
            for line in lines:
                if not line.strip():
                    continue
                cancel.checkpoint()
                result = searcher.search(line, k=args.k, mode=args.mode, folders=args.folder)
                print(json.dumps({"query": line, "hits": [h.to_json() for h in result.hits]}), flush=True)
            return 0
        result = searcher.search(args.query, k=args.k, mode=args.mode, folders=args.folder)
    finally:
        searcher.close()
    insights.log_search(lib, result)
    if args.json:
        payload = {
            "query": result.query,
            "mode": result.mode,
            "hits": [h.to_json() for h in result.hits],
            "timings_ms": {k: round(v, 2) for k, v in result.timings.stages.items()},
        }
        print(json.dumps(payload, indent=2))
        return 0
    if not result.hits:
        print("No matches.")
    for i, h in enumerate(result.hits, start=1):
        where = display_path(h.path) + (f", page {h.page}" if h.page else "")
        where += f" — {h.heading}" if h.heading else ""
        why = f"keyword #{h.keyword_rank or '-'}, vector #{h.vector_rank or '-'}, score {h.score:.4f}"
        print(f"[{i}] {where}\n    {why}\n    {_mark(h.snippet, h.snippet_marks)}\n")
    print(_timing_line(result.timings.stages))
    return 0


def cmd_ask(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    from almanac.core.answer import AskEvent, QuickAnswerFound, TokensArrived
    from almanac.core.pipeline import AnswerPipeline

    settings = dataclasses.replace(
        lib.settings,
        llm_path=str(args.model) if args.model else lib.settings.llm_path,
        top_k=args.k or lib.settings.top_k,
    )
    pipeline = AnswerPipeline(lib.db_path, lib.embedder, settings)

    def show(event: AskEvent) -> None:
        if isinstance(event, QuickAnswerFound):
            print(f"Quick answer: {event.quick_answer.cited_text()}\n", flush=True)
        elif isinstance(event, TokensArrived):
            print(event.text, end="", flush=True)

    try:
        answer = pipeline.ask(
            args.question,
            on_event=None if args.json else show,
            cancel=lambda: cancel.cancelled,
            folders=args.folder,
            mode=args.mode,
            fresh=args.fresh,
        )
    finally:
        pipeline.close()
    if args.json:
        print(json.dumps(answer.to_json(), indent=2))
        return 0
    if answer.stopped in ("no context", "declined"):
        print(answer.text)
    if answer.cache != "miss":
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(answer.cached_at))
        print(f"\n(answered from cache, {when} · ask again with --fresh)")
    if answer.note:
        print(f"\n({answer.note})")
    print("\n")
    if answer.sources:
        print("Closest passages:" if answer.stopped == "declined" else "Sources:")
        for src in answer.sources:
            h = src.hit
            mark = "*" if src.n in answer.cited else " "
            print(f" {mark}[{src.n}] {display_path(h.path)}" + (f", page {h.page}" if h.page else ""))
    print()
    for stage, ms in answer.timings.stages.items():
        print(f"  {stage:<16}{ms:9.1f} ms")
    if answer.prompt_tokens:
        print(
            f"  {'tokens':<16}{answer.prompt_tokens} prompt, {answer.answer_tokens} answer,"
            f" {answer.tokens_per_s:.1f} tokens/s, first token after {answer.ttft_ms:.0f} ms"
        )
    if answer.stopped in ("cancelled", "timeout"):
        print(f"  (answer {answer.stopped})")
    failed = [a for a in answer.attempts if a.outcome != "answered"]
    if answer.backend and (failed or len(answer.attempts) > 1 or not answer.backend.startswith("local:")):
        why = "; ".join(f"{a.backend}: {a.outcome} ({a.error_category})" for a in failed)
        print(f"  {'answered by':<16}{answer.backend}" + (f" after {why}" if why else ""))
    return 0


def cmd_watch(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    from almanac.core.watch import watch_forever

    return watch_forever(lib, cancel, out=sys.stdout)


def _mark(snippet: str, marks: list[tuple[int, int]]) -> str:
    if not sys.stdout.isatty():
        return snippet
    out, pos = [], 0
    for s, e in marks:
        out += [snippet[pos:s], "\033[1m", snippet[s:e], "\033[0m"]
        pos = e
    out.append(snippet[pos:])
    return "".join(out)


def _timing_line(stages: dict[str, float]) -> str:
    return "  ".join(f"{k}: {v:.1f} ms" for k, v in stages.items())


COMMANDS = {
    "add": cmd_add,
    "remove": cmd_remove,
    "index": cmd_index,
    "status": cmd_status,
    "search": cmd_search,
    "ask": cmd_ask,
    "watch": cmd_watch,
    "stats": insights.cmd_stats,
    "eval": insights.cmd_eval,
}
