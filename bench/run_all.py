"""Run every benchmark in sequence, each in a fresh process, and keep a copy of what they print.

    .venv/bin/python -m bench.run_all [--quick] [--only throughput,latency,...] [--skip peer,...]
    make bench                                    (the same, default sizes)

Default sizes are the ones docs/benchmarks.md records (about an hour on 2 cores once the caches are built;
the first latency run also builds the 1M-chunk library, about 10 more minutes). `--quick` passes `--quick` to
every benchmark that has it (about 20 minutes). Output goes to the terminal and to
bench/results/<date>-<name>.txt (git-ignored). Benchmarks whose evaluation data is absent print SKIP and the
run goes on; the exit status is non-zero if any benchmark failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from datetime import datetime

from .common import ROOT, machine

# (module, accepts --quick)
BENCHMARKS = [
    ("throughput", True),
    ("latency", True),
    ("scifact", False),
    ("peer", True),
    ("answer_latency", True),
    ("answers", True),
    ("memory", True),
    ("watch_latency", False),
    ("gui_stall", True),
    ("cache", False),
    ("hit_rate", False),
    ("querylog_overhead", False),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the smaller variant of each benchmark")
    p.add_argument("--only", default="", help="comma list of benchmark names to run")
    p.add_argument("--skip", default="", help="comma list of benchmark names to leave out")
    args = p.parse_args()
    only = {s for s in args.only.split(",") if s}
    skip = {s for s in args.skip.split(",") if s}
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
    print(f"Almanac benchmarks, {stamp}, {machine()}{' (--quick)' if args.quick else ''}", flush=True)
    failed = []
    summary = []
    for name, has_quick in BENCHMARKS:
        if (only and name not in only) or name in skip:
            continue
        if importlib.util.find_spec(f"bench.{name}") is None:
            summary.append((name, "absent", 0.0))
            continue
        cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if args.quick and has_quick else [])
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        start = time.monotonic()
        out_path = results / f"{stamp}-{name}.txt"
        with out_path.open("w", encoding="utf-8") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
            rc = proc.wait()
        took = time.monotonic() - start
        summary.append((name, "ok" if rc == 0 else f"FAILED (exit {rc})", took))
        if rc != 0:
            failed.append(name)
    print("\n=== summary")
    for name, state, took in summary:
        print(f"{name:16} {state:20} {took / 60:6.1f} min")
    print(f"outputs in {results}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
