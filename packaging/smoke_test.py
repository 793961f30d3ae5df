"""Smoke test of a built Almanac folder (`make package-test`): the frozen program does what a new user does.

    python3 packaging/smoke_test.py dist/almanac [--json-out FILE]

Standard library only, so any Python runs it. Everything the program writes goes to a temporary folder
(data, model-export cache, Qt settings); the sample documents are copied there first. Steps, each a fresh
process of the built `almanac`, each must succeed:

1. `almanac --version`, three times (the first is the cold start after the build; page cache as it was);
2. `almanac index SAMPLES` (the first run also exports the embedding model to ONNX), then `status --json`:
   every sample document indexed;
3. `almanac search` for a sample question: the expected document ranks first (the first search of a process);
4. `almanac -v ask` once: the bundled model writes a reply and the answer cites a source; where the build
   has per-CPU llama.cpp libraries, the log names the one loaded;
5. `almanac gui --smoke-seconds N` on Qt's offscreen platform: the window is shown and the app exits 0.

Prints one line per step with its wall time, and exits non-zero at the first failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "Who worked out the meaning of the waggle dance?"  # one of app/onboarding.py's sample questions
EXPECTED = "honeybees.md"
TIMEOUT_S = 900  # the first `index` exports the embedding model; on 2 busy cores that takes minutes


class Failure(Exception):
    pass


def run(program: Path, args: list[str], env: dict[str, str], timeout: float = TIMEOUT_S):
    start = time.perf_counter()
    proc = subprocess.run([str(program), *args], env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise Failure(f"`almanac {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout[-2000:]}\n"
                      f"{proc.stderr[-4000:]}")
    return proc, seconds


def gui(program: Path, env: dict[str, str], seconds: float) -> tuple[float, float]:
    """Seconds from launch to the window shown, and to the process's clean exit."""
    env = {**env, "QT_QPA_PLATFORM": "offscreen"}
    start = time.perf_counter()
    proc = subprocess.Popen([str(program), "gui", "--smoke-seconds", str(seconds)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shown = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("smoke: window shown"):
            shown = time.perf_counter() - start
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired as err:
        proc.kill()
        raise Failure("the GUI did not exit after its smoke seconds") from err
    total = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    if code != 0 or shown is None:
        raise Failure(f"GUI: exit {code}, window shown: {shown is not None}\n{stderr[-4000:]}")
    return shown, total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="the built folder (dist/almanac)")
    p.add_argument("--gui-seconds", type=float, default=3.0)
    p.add_argument("--json-out", type=Path, help="write the timings here as JSON")
    args = p.parse_args()
    program = (args.folder / ("almanac.exe" if os.name == "nt" else "almanac")).resolve()
    if not program.is_file():
        print(f"no built program at {program}: run `make package` first", file=sys.stderr)
        return 2
    samples = Path(__file__).resolve().parent.parent / "resources" / "samples"
    results: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="almanac-smoke-") as tmp:
        root = Path(tmp)
        docs = root / "samples"
        shutil.copytree(samples, docs, ignore=shutil.ignore_patterns("SOURCES.md"))
        env = {
            **os.environ,
            "ALMANAC_HOME": str(root / "data"),
            "ALMANAC_CACHE": str(root / "cache"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "XDG_CACHE_HOME": str(root / "xdg-cache"),
        }
        env.pop("QT_QPA_PLATFORM", None)
        try:
            version_times = []
            for _ in range(3):
                proc, s = run(program, ["--version"], env)
                version_times.append(s)
            if not proc.stdout.startswith("almanac "):
                raise Failure(f"--version printed {proc.stdout!r}")
            results["version"] = proc.stdout.strip()
            results["version_first_s"] = version_times[0]
            results["version_next_s"] = statistics.median(version_times[1:])
            print(f"ok  --version: {proc.stdout.strip()} ({version_times[0]:.2f} s first, "
                  f"{results['version_next_s']:.2f} s next)", flush=True)

            _, s = run(program, ["index", str(docs)], env)
            results["index_s"] = s
            proc, _ = run(program, ["status", "--json"], env)
            status = json.loads(proc.stdout)
            expected_docs = sum(1 for f in docs.iterdir() if f.is_file())
            if status.get("documents") != expected_docs or status.get("failed") or status.get("pending"):
                raise Failure(f"index: expected {expected_docs} documents, status says {status}")
            print(f"ok  index: {expected_docs} documents, {status.get('chunks')} chunks ({s:.1f} s, "
                  "ONNX export included)", flush=True)

            proc, s = run(program, ["search", "waggle dance meaning", "--json"], env)
            hits = json.loads(proc.stdout)["hits"]
            if not hits or not hits[0]["path"].endswith(EXPECTED):
                raise Failure(f"search: expected {EXPECTED} first, got {[h['path'] for h in hits[:3]]}")
            results["search_first_s"] = s
            print(f"ok  search: {EXPECTED} first ({s:.2f} s, a fresh process)", flush=True)

            proc, s = run(program, ["-v", "ask", QUESTION, "--json"], env)
            answer = json.loads(proc.stdout)
            answered = answer["answer"].strip() and answer["stopped"] in {"stop", "length"}
            if not answered or not answer["cited"] or not answer["answer_tokens"]:
                raise Failure(f"ask: no cited answer: {json.dumps(answer)[:1500]}")
            variant = re.search(r"libggml-cpu-[\w-]+\.\w+", proc.stderr)
            results["ask_s"] = s
            results["llama_cpu_backend"] = variant.group(0) if variant else "built in"
            print(f"ok  ask: {answer['answer'].strip()[:80]!r} cites {answer['cited']} ({s:.1f} s; "
                  f"{answer['backend']} wrote {answer['answer_tokens']} tokens; "
                  f"llama.cpp CPU code: {results['llama_cpu_backend']})", flush=True)

            shown, total = gui(program, env, args.gui_seconds)
            results["gui_window_shown_s"] = shown
            print(f"ok  gui: window shown after {shown:.2f} s, clean exit after {total:.2f} s", flush=True)
        except Failure as err:
            print(f"FAIL {err}", file=sys.stderr)
            return 1
        except subprocess.TimeoutExpired as err:
            print(f"FAIL timed out: {err}", file=sys.stderr)
            return 1
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
