"""What the sentence model costs: load time, time per paper, extra memory (issue 12's targets).

- Load: a fresh process, from the cold import of ``pipeline.embedding.model`` to the first
  vector; the reference is a fresh process that only imports numpy, in the same run.
- Per paper: the 50 first real abstracts of ``benchmarks/data/eval_real/papers.json`` (title
  + abstract, as ``paper_text`` builds them), best of a few rounds; the reference is the fp32
  numpy forward pass of ``benchmarks/minilm.py`` on the first 10 of them (when its weights
  are installed: ``make bench``), so the ratio says how much faster the int8 runtime is.
- Memory: resident set size of that fresh process before the import, after the first vector
  and after the 50 papers (Linux ``/proc``), and its peak.

Targets: load ≤ 1 s, ≤ 50 ms per paper, ≤ 300 MB extra memory.

    python -m benchmarks embed_cost       # JSON into benchmarks/results/embed_cost.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT / "benchmarks" / "data" / "eval_real" / "papers.json"
BATCH = 50
REFERENCE = 10
TARGETS = {"load_seconds": 1.0, "ms_per_paper": 50.0, "extra_rss_mb": 300.0}


def abstracts(count: int) -> list[str]:
    papers = json.loads(PAPERS.read_text(encoding="utf-8"))["papers"][:count]
    return [f"{' '.join(p['title'].split())}. {' '.join(p['abstract'].split())}" for p in papers]


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (or its peak, ``VmHWM``) in MB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(rounds: int) -> None:
    """Runs in a fresh process: cold load, first vector, then the 50-paper batch."""
    import numpy as np  # every paperboy process has numpy before it loads the model

    texts = abstracts(BATCH)
    before = rss_mb()
    started = time.perf_counter()
    from pipeline.embedding.model import load_embedder

    imported = time.perf_counter()
    embedder = load_embedder()
    opened = time.perf_counter()
    first = embedder.embed(["Sentence vectors for a morning digest of papers."])
    loaded = time.perf_counter()
    after_load = rss_mb()
    timings, cpu = [], []
    for _ in range(rounds):
        begun, cpu_begun = time.perf_counter(), time.process_time()
        vectors = embedder.embed(texts)
        timings.append(time.perf_counter() - begun)
        cpu.append(time.process_time() - cpu_begun)
    assert vectors.shape == (BATCH, 384) and first.shape == (1, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    figures = {
        "import_seconds": imported - started,
        "open_seconds": opened - imported,
        "load_seconds": loaded - started,
        "batch_seconds": min(timings),
        "batch_cpu_seconds": min(cpu),
        "rss_before_mb": before,
        "rss_after_load_mb": after_load,
        "rss_after_batch_mb": rss_mb(),
        "peak_rss_mb": rss_mb("VmHWM"),
    }
    print(json.dumps(figures))


def fresh(code: str) -> tuple[float, str]:
    """Wall seconds and stdout of ``python -c code`` in a new process at the checkout's root."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - started, result.stdout


def reference_ms_per_paper(texts: list[str]) -> float | None:
    """The fp32 numpy forward pass, ms per paper, on the first ``REFERENCE`` texts (it is
    ~30 times slower, so fewer papers and one round); None if its weights are absent."""
    from benchmarks import minilm

    if not minilm.available():
        return None
    minilm.encode(texts[:1])
    started = time.perf_counter()
    minilm.encode(texts[:REFERENCE], batch=1)  # one at a time, as the runtime embeds them
    return (time.perf_counter() - started) / REFERENCE * 1000


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 1 if quick else 3
    starts = 1 if quick else 3
    # Fresh processes, best of a few: a cold start is what the service pays once per run.
    children = [
        json.loads(fresh(f"from benchmarks.embed_cost import child; child({rounds})")[1])
        for _ in range(starts)
    ]
    numpy_start = min(fresh("import numpy")[0] for _ in range(starts))
    best = min(children, key=lambda c: c["load_seconds"])
    batch = min(c["batch_seconds"] for c in children)
    ms_per_paper = batch / BATCH * 1000
    extra = max(c["rss_after_batch_mb"] - c["rss_before_mb"] for c in children)
    reference = reference_ms_per_paper(abstracts(BATCH))
    cpu_ms = min(c["batch_cpu_seconds"] for c in children) / BATCH * 1000
    figures: dict[str, Any] = {
        "papers": BATCH,
        "load_seconds": round(best["load_seconds"], 3),
        "load_import_seconds": round(best["import_seconds"], 3),
        "load_open_seconds": round(best["open_seconds"], 3),
        "load_ratio_vs_python_numpy_start": round(best["load_seconds"] / numpy_start, 1),
        "python_numpy_start_seconds": round(numpy_start, 3),
        "batch_seconds": round(batch, 3),
        "ms_per_paper": round(ms_per_paper, 1),
        # CPU time over all threads: steadier than wall time on a machine shared with others.
        "cpu_ms_per_paper": round(cpu_ms, 1),
        "reference_fp32_numpy_ms_per_paper": round(reference, 1) if reference else None,
        "speedup_vs_fp32_numpy": round(reference / ms_per_paper, 1) if reference else None,
        # How busy the machine was: wall times stretch when the load exceeds the cores.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "rss_before_mb": round(best["rss_before_mb"], 1),
        "rss_after_load_mb": round(best["rss_after_load_mb"], 1),
        "rss_after_batch_mb": round(best["rss_after_batch_mb"], 1),
        "extra_rss_mb": round(extra, 1),
        "peak_rss_mb": round(max(c["peak_rss_mb"] for c in children), 1),
    }
    measured = {"load_seconds": best["load_seconds"], "ms_per_paper": ms_per_paper}
    measured["extra_rss_mb"] = extra
    figures["within_targets"] = {k: measured[k] <= limit for k, limit in TARGETS.items()}
    return figures
