"""Run every benchmark module and write its figures to ``benchmarks/results/<name>.json``.

Each benchmark module defines ``run(quick: bool) -> dict``; figures are reported as ratios
against a reference measured in the same run, so they compare across machines.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

import benchmarks

RESULTS = Path(__file__).parent / "results"
# Modules that serve the benchmarks (data sets, systems, metrics, tools) and measure nothing.
HELPERS = {"eval_pool", "evalsets", "metrics", "minilm", "systems"}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    names = args.names or sorted(
        m.name
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if not m.name.startswith("_") and m.name not in HELPERS
    )
    if len(names) > 1:
        # One process per benchmark: a benchmark that leaves hundreds of MB of live objects
        # behind (match_speed) would otherwise slow the next one's garbage collection.
        failed = [
            name
            for name in names
            if subprocess.run(
                [sys.executable, "-m", "benchmarks", name, *(["--quick"] if args.quick else [])],
                check=False,
            ).returncode
        ]
        if failed:
            print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        figures = module.run(quick=args.quick)
        figures["wall_seconds"] = round(time.perf_counter() - started, 2)
        (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
