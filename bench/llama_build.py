"""llama.cpp builds compared: prompt and generation speed of the bundled GGUF under each interpreter.

    .venv/bin/python -m bench.llama_build --python native=/path/to/python --python portable=.venv/bin/python

Each interpreter needs llama-cpp-python and Almanac's core (`pip install --no-deps -e .` is enough): the model
is opened by `almanac.core.llm.LocalLLM`, exactly as the app opens it (thread count, the AMX guard), and
then timed through llama-cpp-python's own `eval`:

- prompt: one `eval` of a 480-token prompt after a `reset` (batched prompt processing), tokens/s;
- generation: 128 single-token `eval` calls after that prompt (what each generated token costs; sampling
  itself is excluded, it is the same Python code in every build), tokens/s.

The builds run alternately, `--rounds` times each in a fresh process (3 repetitions inside each), so a
change in the neighbours' load hits all builds alike; the table gives medians and ratios to the first build.
The portable build is the one `make package` makes (its venv, build/package-venv, has Almanac installed):

    .venv/bin/python -m bench.llama_build --python native=.venv/bin/python \
        --python portable=build/package-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from .common import table
from .util import header

PROMPT_TOKENS = 480
GEN_TOKENS = 128
THREADS = 2

# Runs inside each interpreter; prints one JSON object.
CHILD = r"""
import json, os, sys, time
from pathlib import Path
import llama_cpp
from almanac.core.llm import LocalLLM

path, prompt_tokens, gen_tokens, threads, reps = sys.argv[1], *map(int, sys.argv[2:6])
llm = LocalLLM(Path(path), n_ctx=2048, n_threads=threads)
load_ms = llm.load()
llama = llm._llama
words = ("The index keeps every passage of every file with its page, heading and offsets, so an answer can "
         "cite where it came from. ")
tokens = llama.tokenize((words * 40).encode(), add_bos=True)[:prompt_tokens]
prompt, gen = [], []
for _ in range(reps):
    llama.reset()
    t = time.perf_counter()
    llama.eval(tokens)
    prompt.append(len(tokens) / (time.perf_counter() - t))
    t = time.perf_counter()
    for tok in tokens[:gen_tokens]:
        llama.eval([tok])
    gen.append(gen_tokens / (time.perf_counter() - t))
libdir = Path(llama_cpp.__file__).parent / "lib"
variants = sorted(p.name for p in libdir.glob("libggml-cpu-*.so"))
loaded = sorted({line.split()[-1].rsplit("/", 1)[-1] for line in open("/proc/self/maps")
                 if "libggml-cpu" in line}) if os.path.exists("/proc/self/maps") else []
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"prompt": prompt, "gen": gen, "load_ms": load_ms, "version": llama_cpp.__version__,
                  "variants": len(variants), "loaded": loaded, "amx": "AMX_INT8 = 1" in info,
                  "system_info": info.strip()}))
"""


def run_child(python: str, model: Path, reps: int) -> dict:
    cmd = [python, "-c", CHILD, str(model), str(PROMPT_TOKENS), str(GEN_TOKENS), str(THREADS), str(reps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{python} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", action="append", default=[], metavar="LABEL=PATH",
                   help="an interpreter to measure (repeatable); default: this one")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per build, alternating")
    p.add_argument("--model", type=Path, default=None, help="GGUF file (default: the bundled one)")
    args = p.parse_args()
    builds = [tuple(s.split("=", 1)) for s in args.python] or [("this", sys.executable)]
    if args.model is None:
        from almanac.core.llm import bundled_llm_path

        args.model = bundled_llm_path()
    print(header("llama.cpp builds: prompt and generation speed"))
    print(f"model {args.model.name}, prompt {PROMPT_TOKENS} tokens, {GEN_TOKENS} generated, {THREADS} threads")
    results: dict[str, list[dict]] = {label: [] for label, _ in builds}
    for _ in range(args.rounds):
        for label, python in builds:
            results[label].append(run_child(python, args.model, reps=3))
    rows = []
    base_prompt = base_gen = 0.0
    for i, (label, _) in enumerate(builds):
        runs = results[label]
        prompt = statistics.median(v for r in runs for v in r["prompt"])
        gen = statistics.median(v for r in runs for v in r["gen"])
        if i == 0:
            base_prompt, base_gen = prompt, gen
        first = runs[0]
        kind = f"{first['variants']} CPU variants, loaded {', '.join(first['loaded'])}" if first["variants"] \
            else "one CPU backend"
        rows.append([label, first["version"], kind, prompt, prompt / base_prompt, gen, gen / base_gen,
                     statistics.median(r["load_ms"] for r in runs)])
    print(table(["build", "llama-cpp-python", "CPU code", "prompt tok/s", "ratio", "gen tok/s", "ratio",
                 "load ms"], rows))
    for label, _ in builds:
        print(f"{label}: {results[label][0]['system_info']}")


if __name__ == "__main__":
    main()
