"""Celery workers sharing one ARM budget: sweep throughput and 429s with 1, 2 and 4 workers.

Starts, all as separate processes on this machine: ``fleet emulator serve`` (ARM-like latency,
ARM's read buckets: 250 burst, 25/s per subscription and principal), a private
``redis-server``, and N ``celery -A workers worker --pool threads`` processes; then runs
``fleet sweep --engine celery`` over a generated fleet and reads the emulator's counters.

All workers use the same principal against the same subscriptions, so together they may spend
one bucket per subscription: the question is whether they stay inside it (429s) while using it
fully (reads per second against the refill rate, and wall time against the throttle-bound
ideal ``max over subscriptions (reads - 250) / 25``).

    .venv/bin/python benchmarks/bench_celery.py --clusters 1000 --subscriptions 1 --workers 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sweep as harness  # a sibling script, not a package

REPO = Path(__file__).resolve().parents[1]
CELERY = str(Path(sys.executable).with_name("celery"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    for _ in range(200):
        try:
            if redis.Redis(port=port).ping():
                break
        except redis.ConnectionError:
            time.sleep(0.02)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_workers(
    n: int, env: dict[str, str], concurrency: int, workdir: Path
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = (workdir / f"worker{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    CELERY,
                    "-A",
                    "workers",
                    "worker",
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(concurrency),
                    "--hostname",
                    f"bench{i}@%h",
                    "--loglevel",
                    "WARNING",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    time.sleep(4)  # workers connect and start consuming
    return procs


def run(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    snapshot = harness.snapshot_file(args.clusters, args.subscriptions, args.seed)
    emu = harness.start_emulator(snapshot, args)
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-celery-"))
    redis_proc, redis_url = start_redis(workdir)
    spec = harness.RunSpec(emu.endpoint, emu.ca, "arm", workdir, args.concurrency)
    env = harness.fleet_env(spec)
    env.update({
        "FLEET_BROKER_URL": redis_url, "FLEET_REDIS_URL": redis_url,
        "FLEET_BATCH_SIZE": "10", "PYTHONPATH": str(REPO),
    })  # fmt: skip
    procs = start_workers(workers, env, args.concurrency, workdir)
    try:
        emu.admin().reset_stats()
        m = harness.measure(
            [
                sys.executable,
                "-m",
                "fleet",
                "sweep",
                "--engine",
                "celery",
                "-p",
                str(harness.POLICIES),
                "-o",
                "json",
            ],
            env,
            timeout=args.timeout,
        )
        stats = emu.admin().stats()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        redis_proc.kill()
        emu.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    reads = stats["requests"]["byMethod"].get("GET", 0) + stats["requests"]["byMethod"].get(
        "POST", 0
    )
    throttled = stats["throttled"]["arm"]
    per_sub = reads / args.subscriptions
    ideal = max(0.0, (per_sub - harness.READ_BURST) / harness.READ_RATE)
    return {
        "workers": workers,
        "clusters": args.clusters,
        "subscriptions": args.subscriptions,
        "wall_s": round(m.wall, 1),
        "ideal_s": round(ideal, 1),
        "ratio": round(m.wall / ideal, 2) if ideal else None,
        "reads": reads,
        "throttled_429": throttled,
        "throttled_pct": round(100 * throttled / max(1, reads), 2),
        "reads_per_s_per_sub": round(per_sub / m.wall, 1) if m.wall else None,
        "returncode": m.returncode,
        "stderr": m.stderr_tail[-500:] if m.returncode else "",
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=1)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--latency-p99-ms", type=float, default=300.0)
    parser.add_argument("--throttle", default="arm")
    parser.add_argument("--graph-quota", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    print(json.dumps({"machine": harness.machine(), "date": time.strftime("%Y-%m-%d")}), flush=True)
    for n in (int(x) for x in args.workers.split(",")):
        print(json.dumps(run(args, n)), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main(sys.argv[1:]))
