"""Celery workers sharing one ARM budget: sweep throughput and 429s with 1, 2 and 4 workers.

Starts, all as separate processes on this machine: ``fleet emulator serve`` (ARM-like latency,
ARM's read buckets: 250 burst, 25/s per subscription and principal), a private
``redis-server``, and N ``celery -A workers worker --pool threads`` processes; then runs
``fleet sweep --engine celery`` over a generated fleet and reads the emulator's counters.

All workers use the same principal against the same subscriptions, so together they may spend
one bucket per subscription: the question is whether they stay inside it (429s) while using it
fully (reads per second against the refill rate, and wall time against the physical minimum of
``bench_sweep.FleetShape.arm_ideal``: ``max over subscriptions (minreads - 250) / 25`` with 3
reads per cluster plus the provider lists' pages, and the latency bound). Each run also counts
the reads per cluster, the clusters lost or judged twice (against the local engine's verdict
count with ``--local``, which first sweeps the same emulator with the local engine), and the
Redis commands per cluster (``INFO``); ``--redis-benchmark N`` first measures this machine's
Redis with ``redis-benchmark`` (the commands a sweep sends most, and the token-bucket script).

    .venv/bin/python benchmarks/bench_celery.py --clusters 1000 --subscriptions 1 --workers 1,2,4
    .venv/bin/python benchmarks/bench_celery.py --clusters 10000 --subscriptions 10 \\
        --workers 1,2,4 --local --redis-benchmark 200000
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


def redis_counters(url: str) -> dict[str, int]:
    """Commands Redis has processed so far, in all and per command (``INFO``)."""
    import redis

    client = redis.Redis.from_url(url)
    stats = client.info("stats")
    per = client.info("commandstats")
    out = {"total": int(stats["total_commands_processed"])}
    for name, value in per.items():
        out[name.removeprefix("cmdstat_")] = int(value["calls"])
    return out


def run(
    args: argparse.Namespace,
    workers: int,
    emu: harness.Emulator,
    shape: harness.FleetShape,
    expected: int | None,
) -> dict[str, Any]:
    """One Celery sweep with ``workers`` worker processes against the running emulator, with a
    fresh Redis and fresh ARM buckets."""
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-celery-"))
    redis_proc, redis_url = start_redis(workdir)
    spec = harness.RunSpec(emu.endpoint, emu.ca, "arm", workdir, args.concurrency)
    env = harness.fleet_env(spec)
    env.update({
        "FLEET_BROKER_URL": redis_url, "FLEET_REDIS_URL": redis_url,
        "FLEET_BATCH_SIZE": str(args.batch_size), "PYTHONPATH": str(REPO),
    })  # fmt: skip
    procs = start_workers(workers, env, args.concurrency, workdir)
    try:
        admin = emu.admin()
        admin.reset_throttle()
        admin.reset_stats()
        before = redis_counters(redis_url)
        m = harness.measure(
            [sys.executable, "-m", "fleet", "sweep", "--engine", "celery",
             "-p", str(harness.POLICIES), "-o", "json"],
            env,
            timeout=args.timeout,
        )  # fmt: skip
        after = redis_counters(redis_url)
        stats = admin.stats()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        redis_proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    reads = stats["requests"]["byMethod"].get("GET", 0)
    throttled = stats["throttled"]["arm"]
    latency = harness.mean_latency(args.latency_ms, args.latency_p99_ms)
    ideal = shape.arm_ideal(latency, args.concurrency * workers)
    ids = [c.get("id") for c in m.output.get("clusters") or () if isinstance(c, dict)]
    judged = len(ids)
    ops = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    ops = {k: v for k, v in sorted(ops.items(), key=lambda kv: -kv[1]) if v > 0}
    return {
        "engine": "celery",
        "workers": workers,
        "clusters": shape.clusters,
        "subscriptions": shape.subscriptions,
        "judged": judged,
        # every target judged exactly once: as many verdicts as the local engine gave,
        # each cluster id once
        "lost": (expected - len(set(ids))) if expected is not None else None,
        "judgedTwice": judged - len(set(ids)),
        "wall_s": round(m.wall, 1),
        "ideal_s": round(ideal["ideal"], 1),
        "ideal": {k: round(v, 2) for k, v in ideal.items()},
        "ratio": round(m.wall / ideal["ideal"], 3) if ideal["ideal"] else None,
        "reads": reads,
        "readsPerCluster": round(reads / judged, 3) if judged else None,
        "throttled_429": throttled,
        "throttled_pct": round(100 * throttled / max(1, reads), 2),
        "reads_per_s_per_sub": round(reads / shape.subscriptions / m.wall, 1) if m.wall else None,
        "redisCommands": ops.get("total", 0),
        "redisCommandsPerCluster": round(ops.get("total", 0) / judged, 1) if judged else None,
        "redisTopCommands": dict(list((k, v) for k, v in ops.items() if k != "total")[:6]),
        "loadAverage": [round(x, 2) for x in os.getloadavg()],
        "returncode": m.returncode,
        "stderr": m.stderr_tail[-500:] if m.returncode else "",
    }


def redis_benchmark(requests: int) -> dict[str, float]:
    """Requests per second this machine's Redis answers (``redis-benchmark``, one client
    connection at a time pipelined by 1, 50 clients), for the commands a distributed sweep
    sends most, and for one token-bucket script (``EVALSHA`` of ``fleet.record.budget``)."""
    from fleet.record.budget import _TAKE

    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-redis-"))
    proc, url = start_redis(workdir)
    port = url.rsplit(":", 1)[1].split("/")[0]
    out: dict[str, float] = {}
    try:
        base = ["redis-benchmark", "-p", port, "-q", "-n", str(requests), "-c", "50"]
        text = subprocess.run(
            [*base, "-t", "set,get,incr,lpush,rpop,hset"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        script = subprocess.run(
            [*base, "-r", "100000", "EVAL", _TAKE, "2", "b:__rand_int__", "p:x", "250", "25", "0"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

        def rates(output: str) -> list[tuple[str, float]]:
            found = []
            for line in output.replace("\r", "\n").splitlines():
                if "requests per second" in line and ":" in line:
                    name, rate = line.split("requests per second")[0].rsplit(":", 1)
                    found.append((name.strip(), float(rate.strip())))
            return found

        out = dict(rates(text))
        # the script's text is the command's name: one rate, labelled here
        out["EVALSHA token bucket (as EVAL)"] = rates(script)[-1][1]
    finally:
        proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=1)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=16, help="threads per worker")
    parser.add_argument("--batch-size", type=int, default=10, help="clusters per judge task")
    parser.add_argument(
        "--local", action="store_true", help="first, the local engine on the same emulator"
    )
    parser.add_argument("--local-concurrency", type=int, default=32)
    parser.add_argument(
        "--expected", type=int, help="targets the local engine judged (instead of --local)"
    )
    parser.add_argument("--redis-benchmark", type=int, default=0, help="requests (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--latency-p99-ms", type=float, default=300.0)
    parser.add_argument("--throttle", default="arm")
    parser.add_argument("--graph-quota", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python", "benchmarks/bench_celery.py", *argv])
    header = {"machine": harness.machine(), "date": time.strftime("%Y-%m-%d"), "command": command}
    print(json.dumps(header), flush=True)
    if args.redis_benchmark:
        print(json.dumps({"redisBenchmark": redis_benchmark(args.redis_benchmark)}), flush=True)
    snapshot = harness.snapshot_file(args.clusters, args.subscriptions, args.seed)
    shape = harness.FleetShape.of(snapshot)
    emu = harness.start_emulator(snapshot, args)
    try:
        expected = args.expected
        if args.local:
            local_args = argparse.Namespace(**{**vars(args), "engine": "local"})
            local_args.concurrency = args.local_concurrency
            local = harness.run_path("arm", emu, shape, local_args, harness.local_command)
            expected = int(local["judged"])
            print(json.dumps({"engine": "local", **local}), flush=True)
        for n in (int(x) for x in args.workers.split(",")):
            print(json.dumps(run(args, n, emu, shape, expected)), flush=True)
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main(sys.argv[1:]))
