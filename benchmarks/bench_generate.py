"""Benchmark: generating a large fleet snapshot (``fleet emulator generate``).

The budget is 50,000 clusters in under 10 seconds on a 2-core machine, from the call to the
file on disk. Each run measures the three steps separately (``generate`` building the
snapshot, ``dumps`` serialising it with orjson, writing the file) and checks that a second
generation with the same arguments gives the same bytes (determinism is part of the contract
of the generator, and is cheap to check here at full scale).

    .venv/bin/python benchmarks/bench_generate.py                   # 50,000 clusters, 3 runs
    .venv/bin/python benchmarks/bench_generate.py --clusters 200000 --repeat 1

Prints one JSON object per run and a summary line (best run) on stdout.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from _common import machine

from fleet.emulator.generate import dumps, generate

BUDGET_SECONDS = 10.0
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def run_once(clusters: int, subscriptions: int, seed: int, out: Path) -> dict[str, object]:
    gc.collect()
    t0 = time.perf_counter()
    snapshot = generate(clusters=clusters, subscriptions=subscriptions, seed=seed, now=NOW)
    t1 = time.perf_counter()
    data = dumps(snapshot)
    t2 = time.perf_counter()
    out.write_bytes(data)
    t3 = time.perf_counter()
    resources = len(snapshot["resources"])
    digest = hashlib.sha256(data).hexdigest()
    del snapshot, data
    return {
        "clusters": clusters,
        "subscriptions": subscriptions,
        "resources": resources,
        "bytes": out.stat().st_size,
        "sha256": digest,
        "generateSeconds": round(t1 - t0, 3),
        "dumpsSeconds": round(t2 - t1, 3),
        "writeSeconds": round(t3 - t2, 3),
        "totalSeconds": round(t3 - t0, 3),
        "microsecondsPerCluster": round((t3 - t0) / clusters * 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=50_000)
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="where to write (default: a temporary file)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "fleet.json"
        runs = []
        for i in range(args.repeat):
            result = run_once(args.clusters, args.subscriptions, args.seed, out)
            result["run"] = i + 1
            runs.append(result)
            print(orjson.dumps(result).decode(), flush=True)

    best = min(runs, key=lambda r: float(str(r["totalSeconds"])))
    deterministic = len({r["sha256"] for r in runs}) == 1
    # Scale the budget by cluster count so that smaller or larger runs are judged fairly.
    budget = BUDGET_SECONDS * args.clusters / 50_000
    summary = {
        "benchmark": "generate",
        "best": best,
        "deterministic": deterministic if len(runs) > 1 else None,
        "budgetSeconds": round(budget, 3),
        "withinBudget": float(str(best["totalSeconds"])) < budget,
        "peakRssMB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": machine(),
    }
    print(orjson.dumps(summary).decode())
    return 0 if summary["withinBudget"] and summary["deterministic"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
