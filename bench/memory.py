"""Memory: peak RSS while indexing, and RSS with both models loaded, against the bare models in the same run.

    .venv/bin/python -m bench.memory [--quick | --full]

Every figure comes from its own fresh process (RSS from psutil, sampled every 50 ms, and ru_maxrss):
  raw embedder   SentenceTransformer(bundled all-MiniLM-L6-v2) encoding 64 real chunks, batch 32 (baseline A)
  raw LLM        llama-cpp-python Llama(bundled SmolLM2 GGUF) after one short completion (baseline B)
  indexing       Library.index() on all 46 eval docs: phase 1 complete (the 214-page PDF and Emma included),
                 phase 2 stopped by its CancelToken after 640 chunks (embedding memory is flat after the first
                 batches; --full embeds all 5,439 chunks, --quick stops at 128). Peak of the indexing process,
                 of its extraction worker, and of both together.
  both models    SentenceTransformerEmbedder + LocalLLM in one process, after an embed batch and an answer to a
                 question with 5 sources (Answerer-style prompt): resident and peak.
Ratios: indexing peak / A; both models / (A + B), the cost of the two models in separate processes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import eval_dir, table
from .util import header, ratio, rss_mb

MB = 2**20


class Sampler:
    """Peak RSS of this process, of its children, and of both together, sampled in a thread."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.self_peak = self.kids_peak = self.total_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        try:
            import psutil
        except ImportError:  # without the bench extra: ru_maxrss only, no live worker figures
            self.proc = None
            return
        self.proc = psutil.Process()
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                me = self.proc.memory_info().rss
                kids = 0
                for c in self.proc.children(recursive=True):
                    try:
                        kids += c.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                continue
            self.self_peak = max(self.self_peak, me)
            self.kids_peak = max(self.kids_peak, kids)
            self.total_peak = max(self.total_peak, me + kids)
            time.sleep(self.every)

    def stop(self) -> dict:
        self._stop.set()
        if self.proc is not None:
            self._thread.join()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        kids_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        return {
            "self_peak": max(self.self_peak, maxrss) / MB,
            "kids_peak": max(self.kids_peak, kids_maxrss) / MB,
            "total_peak": self.total_peak / MB,
            "now": rss_mb(),
        }


def _chunks(n: int) -> list[str]:
    texts = []
    for path in sorted((eval_dir("docs") / "markdown").glob("*.md")):
        texts += [p for p in path.read_text(encoding="utf-8").split("\n\n") if len(p) > 200]
    return (texts * (n // max(1, len(texts)) + 1))[:n]


def child_raw_embedder() -> dict:
    s = Sampler()
    from almanac.core.embedding import bundled_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    model.encode(_chunks(64), batch_size=32, normalize_embeddings=True)
    return s.stop()


def child_raw_llm() -> dict:
    s = Sampler()
    from almanac.core.llm import bundled_llm_path
    from llama_cpp import Llama

    try:
        from almanac.core.llm import _safe_model_params as guard
    except ImportError:  # pragma: no cover
        import contextlib

        guard = contextlib.nullcontext
    with guard():
        llama = Llama(model_path=str(bundled_llm_path()), n_ctx=4096, seed=1234, verbose=False)
    llama.create_chat_completion(messages=[{"role": "user", "content": "Say hello."}], max_tokens=16)
    return s.stop()


def child_index(stop_after: int | None) -> dict:
    s = Sampler()
    from almanac.core.cancel import CancelToken
    from almanac.core.errors import Cancelled
    from almanac.core.library import Library
    from almanac.core.settings import Settings

    token = CancelToken()
    seen = {"chunks": 0}

    def progress(p) -> None:
        if p.phase == "embedding":
            seen["chunks"] = p.chunks_done
            if stop_after is not None and p.chunks_done >= stop_after:
                token.cancel()

    with tempfile.TemporaryDirectory(prefix="almanac-mem-") as tmp, Library(Path(tmp) / "m.db", settings=Settings()) as lib:
        lib.add_folder(eval_dir("docs"))
        try:
            lib.index(progress=progress, cancel=token)
        except Cancelled:
            pass
        st = lib.status()
    out = s.stop()
    out.update(files=st.documents, chunks=st.chunks, embedded=st.embedded)
    return out


def child_both() -> dict:
    s = Sampler()
    from almanac.core.embedding import SentenceTransformerEmbedder
    from almanac.core.hits import Hit
    from almanac.core.llm import LocalLLM
    from almanac.core.settings import Settings

    from bench.legacy_answer import build_prompt  # whole passages: the prompt these figures were measured on

    settings = Settings()
    emb = SentenceTransformerEmbedder()
    texts = _chunks(64)
    emb.embed(texts)
    llm = LocalLLM(n_ctx=settings.context_size)
    hits = [Hit(i, 1, "/doc.md", "", None, "", t, "", [], 1.0) for i, t in enumerate(texts[:5])]
    messages, _, _ = build_prompt("What does this say about clients?", hits, llm, max_answer_tokens=64)
    for _ in llm.stream_chat(messages, max_tokens=64):
        pass
    emb.embed([texts[0]])  # a query embedding after the answer: both models in use
    return s.stop()


def run_child(name: str, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--child", name, *extra], capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise SystemExit(f"child {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="stop phase 2 after 128 chunks")
    g.add_argument("--full", action="store_true", help="embed every chunk of the eval docs (slow)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        fn = {"raw-embedder": child_raw_embedder, "raw-llm": child_raw_llm, "both": child_both}.get(args.child)
        print(json.dumps(fn() if fn else child_index(args.stop_after)))
        return
    eval_dir("docs")
    stop = None if args.full else 128 if args.quick else 640
    print(header("Memory (bench/memory.py)"))
    a = run_child("raw-embedder")
    b = run_child("raw-llm")
    idx = run_child("index", *(["--stop-after", str(stop)] if stop else []))
    both = run_child("both")
    rows = [
        ["A: raw SentenceTransformer, encoding (baseline)", a["self_peak"], "-", "-", 1.0],
        ["B: raw llama-cpp-python, after a completion (baseline)", b["self_peak"], "-", "-", "-"],
        [f"indexing 46 eval docs ({idx['files']} files, {idx['embedded']}/{idx['chunks']} chunks embedded)",
         idx["self_peak"], idx["kids_peak"], idx["total_peak"], ratio(idx["self_peak"], a["self_peak"])],
        ["both models loaded and used (Almanac, one process)", both["self_peak"], "-", "-",
         ratio(both["self_peak"], a["self_peak"] + b["self_peak"])],
    ]
    print(table(["process", "peak RSS MiB", "extraction worker peak MiB", "together peak MiB",
                 "ratio (indexing: / A; both: / (A + B))"], rows))
    print(f"both models, resident after use: {both['now']:.0f} MiB; A + B = {a['self_peak'] + b['self_peak']:.0f} MiB")


if __name__ == "__main__":
    main()
