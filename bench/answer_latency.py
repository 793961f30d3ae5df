"""Answer latency with the bundled model: cold and warm time to first token with 5 sources, and tokens/s.

    .venv/bin/python -m bench.answer_latency [--quick] [--rounds 3]

Each round starts two fresh processes, one after the other:
  almanac  LocalLLM (bundled SmolLM2-135M GGUF, default Settings) + core.answer.build_prompt with 5 real
           passages + LocalLLM.stream_chat. Cold: from before the model load (llama_cpp import included) to
           the first piece, in the fresh process; warm: a second question with 5 other passages, same process.
  raw      the baseline: llama-cpp-python's Llama() on the same file, same n_ctx, threads, seed and temperature,
           streaming create_chat_completion on the very messages Almanac built (read from a file), nothing else.
Passages are 200-token chunks (the production chunker and tokenizer) of the HTTPX quickstart from the eval
docs. Figures are medians over the rounds; ratios are Almanac / raw (TTFT: lower is better; tokens/s: higher).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import eval_dir, table
from .util import header, pct, ratio

QUESTIONS = (
    "How do I send JSON data in a POST request with HTTPX?",
    "How can I set a timeout and follow redirects with HTTPX?",
)
MAX_TOKENS = 384


def passages() -> list[list[dict]]:
    """Two sets of 5 production-sized chunks of a real Markdown file."""
    from almanac.core.chunking import chunk_text
    from almanac.core.embedding import SentenceTransformerEmbedder
    from almanac.core.settings import Settings

    path = eval_dir("docs") / "markdown" / "httpx-quickstart.md"
    settings = Settings()
    tokens = SentenceTransformerEmbedder()  # tokenizer only: the encoder is never loaded here
    chunks = chunk_text(path.read_text(encoding="utf-8"), tokens, max_tokens=settings.chunk_tokens,
                        overlap=settings.chunk_overlap)
    assert len(chunks) >= 10, "expected at least 10 chunks"
    sets = [chunks[:5], chunks[5:10]]
    return [[{"path": str(path), "text": c.text} for c in s] for s in sets]


def _hits(items: list[dict]):
    from almanac.core.hits import Hit

    return [
        Hit(chunk_id=i, document_id=1, path=d["path"], title="", page=None, heading="", text=d["text"],
            snippet="", snippet_marks=[], score=1.0 / (i + 1), keyword_rank=i + 1, vector_rank=i + 1)
        for i, d in enumerate(items)
    ]


def _stream(pieces) -> tuple[float, float, int]:
    """(seconds to the first piece, seconds from first to last piece, pieces)."""
    start = time.perf_counter()
    first = None
    n = 0
    for _ in pieces:
        if first is None:
            first = time.perf_counter()
        n += 1
    end = time.perf_counter()
    first = first if first is not None else end
    return first - start, end - first, n


def child_almanac(sets: list[list[dict]], out: Path) -> dict:
    t0 = time.perf_counter()
    from almanac.core.llm import LocalLLM, StreamResult
    from almanac.core.settings import Settings

    from bench.legacy_answer import build_prompt  # whole passages: the prompt these figures were measured on

    s = Settings()
    llm = LocalLLM(n_ctx=s.context_size, n_threads=s.threads, n_gpu_layers=s.gpu_layers)
    load_s = llm.load() / 1000
    res, all_messages = {"load_s": load_s}, []
    for label, question, items in (("cold", QUESTIONS[0], sets[0]), ("warm", QUESTIONS[1], sets[1])):
        t1 = time.perf_counter()
        messages, sources, prompt_tokens = build_prompt(question, _hits(items), llm, max_answer_tokens=MAX_TOKENS)
        prompt_s = time.perf_counter() - t1
        result = StreamResult()
        first, gen, pieces = _stream(llm.stream_chat(messages, max_tokens=MAX_TOKENS, result=result))
        start = t0 if label == "cold" else t1
        res[label] = {
            "ttft_s": t1 - start + prompt_s + first,  # cold: imports + load + prompt + first piece
            "prompt_s": prompt_s,
            "first_piece_s": first,
            "decode_tok_s": (result.completion_tokens - 1) / gen if gen > 0 else float("nan"),
            "completion_tokens": result.completion_tokens,
            "prompt_tokens": prompt_tokens,
            "sources": len(sources),
            "n_ctx": llm.n_ctx,
        }
        all_messages.append(messages)
    out.write_text(json.dumps(all_messages))
    return res


def child_raw(messages_file: Path, n_ctx: int) -> dict:
    all_messages = json.loads(messages_file.read_text())
    t0 = time.perf_counter()
    from almanac.core.llm import SEED, TEMPERATURE, bundled_llm_path
    from llama_cpp import Llama

    try:  # llama.cpp builds with AMX die without this on some hosts; Almanac applies it too
        from almanac.core.llm import _safe_model_params as guard
    except ImportError:
        guard = contextlib.nullcontext
    with guard():
        llama = Llama(model_path=str(bundled_llm_path()), n_ctx=n_ctx, n_threads=None, seed=SEED, verbose=False)
    res = {"load_s": time.perf_counter() - t0}
    for label, messages in zip(("cold", "warm"), all_messages, strict=True):
        t1 = time.perf_counter()
        stream = llama.create_chat_completion(messages=messages, stream=True, max_tokens=MAX_TOKENS,
                                              temperature=TEMPERATURE, seed=SEED)
        first, gen, pieces = _stream(c for c in stream if c["choices"][0]["delta"].get("content"))
        start = t0 if label == "cold" else t1
        res[label] = {"ttft_s": t1 - start + first, "first_piece_s": first,
                      "decode_tok_s": (pieces - 1) / gen if gen > 0 else float("nan"), "completion_tokens": pieces}
    return res


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.answer_latency", *args], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one round instead of three")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--child", choices=["almanac", "raw"], help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--n-ctx", type=int, default=4096, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "almanac":
        sets = json.loads(Path(args.work, "passages.json").read_text())
        print(json.dumps(child_almanac(sets, Path(args.work, "messages.json"))))
        return
    if args.child == "raw":
        print(json.dumps(child_raw(Path(args.work, "messages.json"), args.n_ctx)))
        return

    rounds = args.rounds or (1 if args.quick else 3)
    sets = passages()
    print(header("Answer latency (bench/answer_latency.py)"))
    runs: dict[str, list[dict]] = {"almanac": [], "raw": []}
    with tempfile.TemporaryDirectory(prefix="almanac-answer-") as work:
        Path(work, "passages.json").write_text(json.dumps(sets))
        for _ in range(rounds):
            a = run_child(["--child", "almanac", "--work", work])
            runs["almanac"].append(a)
            runs["raw"].append(run_child(["--child", "raw", "--work", work, "--n-ctx", str(a["cold"]["n_ctx"])]))

    def med(who: str, *keys: str) -> float:
        vals = []
        for r in runs[who]:
            v = r
            for k in keys:
                v = v[k]
            vals.append(v)
        return pct(vals, 50)

    a0 = runs["almanac"][0]
    print(f"bundled SmolLM2-135M-Instruct Q4_1, n_ctx {a0['cold']['n_ctx']}, {a0['cold']['sources']} sources,"
          f" prompt {a0['cold']['prompt_tokens']} / {a0['warm']['prompt_tokens']} tokens (cold / warm question),"
          f" max {MAX_TOKENS} answer tokens; median of {rounds} round(s)")
    rows = []
    for label in ("cold", "warm"):
        at, rt = med("almanac", label, "ttft_s"), med("raw", label, "ttft_s")
        rows.append([f"{label} TTFT ms", at * 1000, rt * 1000, ratio(at, rt)])
    rows.append(["  cold: model load ms", med("almanac", "load_s") * 1000, med("raw", "load_s") * 1000,
                 ratio(med("almanac", "load_s"), med("raw", "load_s"))])
    for label in ("cold", "warm"):
        rows.append([f"  {label}: prompt packing ms", med("almanac", label, "prompt_s") * 1000, "-", "-"])
        af, rf = med("almanac", label, "first_piece_s"), med("raw", label, "first_piece_s")
        rows.append([f"  {label}: stream start to first piece ms", af * 1000, rf * 1000, ratio(af, rf)])
    for label in ("cold", "warm"):
        at, rt = med("almanac", label, "decode_tok_s"), med("raw", label, "decode_tok_s")
        rows.append([f"{label} decode tokens/s", at, rt, ratio(at, rt)])
    rows.append(["answer tokens (cold / warm)",
                 f"{med('almanac', 'cold', 'completion_tokens'):.0f} / {med('almanac', 'warm', 'completion_tokens'):.0f}",
                 f"{med('raw', 'cold', 'completion_tokens'):.0f} / {med('raw', 'warm', 'completion_tokens'):.0f}", "-"])
    print(table(["measure", "Almanac", "raw llama-cpp-python (baseline)", "Almanac / raw"], rows))


if __name__ == "__main__":
    main()
