"""Remediation of a 1,000-cluster fleet against the emulator with ARM throttling on.

What it measures: the wall time of one ``fleet remediate`` job (the real CLI in its own
process, local engine) over a generated fleet (``fleet.emulator.generate``: every defect kind of
docs/scenario.md) plus one fleet-wide change (a policy adding an extension setting everywhere,
the typical "roll this out to every cluster" job), served by ``fleet emulator serve`` in another
process with its default options: ARM token buckets per subscription and principal (reads 250
burst / 25 per s, writes 200 / 10 per s, deletes 200 / 10 per s), ``Retry-After: 1`` on
long-running operations, one in-progress poll per operation, Flux reconciling 2 s after a write.

It counts every ARM read the job made (the emulator's GETs) and, from the job report's
``reads`` (``fleet.apply.readcount``: what fleet's own session counted), what each was for:
planning, the read right before each write (``prewrite``), operation polls (``poll``) and
verification (``verify``), with each per written cluster; Resource Graph queries are counted
apart (they spend Resource Graph's quota, not ARM's read bucket).

It reports the time against the physical floor of the buckets, subscriptions in parallel:

- the write-bucket ideal: ``max over subscriptions of (writes - 200) / 10`` seconds;
- the read-bucket ideal: ``(reads - 250) / 25`` likewise (a job reads every cluster to plan
  it, again right before writing it, polls every operation, and reads it again to verify it);
  reads per subscription are apportioned by its share of the clusters (the emulator counts
  requests by method, not by subscription);
- the floor: the larger of the two.

    .venv/bin/python benchmarks/bench_remediate.py --clusters 1000 --subscriptions 4

Prints one JSON object on stdout (figures, counts, the command and the machine).
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
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import machine, start_emulator  # noqa: E402

from fleet.emulator.generate import generate  # noqa: E402
from fleet.emulator.testing import AdminClient  # noqa: E402

FLEET_WIDE = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: bench-fleet-wide-setting
  description: One setting added to the Flux extension of every cluster (the benchmark's change)
spec:
  mode: enforce
  priority: 10
  targets:
    subscriptions: ["*"]
  extension:
    configurationSettings:
      fleetBenchRun: "{stamp}"
"""


def subscription_of(path: str) -> str:
    return path.split("/")[2].lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--inventory", choices=["arm", "graph"], default="arm")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fleet-bench-remediate-"))
    try:
        snapshot = generate(
            clusters=args.clusters, subscriptions=args.subscriptions, seed=args.seed
        )
        per_sub = Counter(
            r["id"].split("/")[2].lower()
            for r in snapshot["resources"]
            if r["type"].endswith(("/managedClusters", "/connectedClusters"))
        )
        snap_file = work / "fleet.json"
        snap_file.write_text(json.dumps(snapshot))
        policies = work / "policies"
        shutil.copytree(REPO / "policies", policies)
        (policies / "fleet-wide.yaml").write_text(FLEET_WIDE.format(stamp=int(time.time())))

        proc, endpoint, ca = start_emulator(snap_file, "--throttle", "arm", cwd=REPO)
        try:
            admin = AdminClient(endpoint, ca)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("FLEET_")},
                "FLEET_ARM_ENDPOINT": endpoint,
                "FLEET_ARM_CA_BUNDLE": ca,
                "FLEET_AUTH": "emulator",
                "FLEET_STATE_DIR": str(work / "state"),
                "FLEET_INVENTORY": args.inventory,
                "FLEET_CONCURRENCY": str(args.concurrency),
            }
            command = [
                sys.executable,
                "-m",
                "fleet",
                "remediate",
                "-p",
                str(policies),
                "--yes",
                "-o",
                "json",
                "--max-clusters",
                str(args.clusters),
            ]
            started = time.monotonic()
            done = subprocess.run(
                command, env=env, cwd=REPO, capture_output=True, text=True, check=False
            )
            wall = time.monotonic() - started
            if done.returncode not in (0, 1):
                sys.stderr.write(done.stderr[-4000:])
                raise SystemExit(f"fleet remediate exited {done.returncode}")
            job = json.loads(done.stdout)
            stats = admin.stats()
            log = admin.requests()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    writes = Counter(subscription_of(r["path"]) for r in log if r["method"] in ("PUT", "PATCH"))
    deletes = Counter(subscription_of(r["path"]) for r in log if r["method"] == "DELETE")
    reads_total = int(stats["requests"]["byMethod"].get("GET", 0))
    reads = {s: reads_total * n / args.clusters for s, n in per_sub.items()}
    write_ideal = max((max(0.0, (n - 200) / 10) for n in writes.values()), default=0.0)
    delete_ideal = max((max(0.0, (n - 200) / 10) for n in deletes.values()), default=0.0)
    read_ideal = max((max(0.0, (n - 250) / 25) for n in reads.values()), default=0.0)
    floor = max(write_ideal, delete_ideal, read_ideal)
    written = int(job["summary"].get("fixed", 0)) + int(job["summary"].get("failed", 0))
    phases = dict(job.get("reads") or {})
    result = {
        "benchmark": "remediate",
        "clusters": args.clusters,
        "subscriptions": args.subscriptions,
        "inventory": args.inventory,
        "concurrency": args.concurrency,
        "job": {"status": job["job"]["status"], **job["summary"]},
        "wallSeconds": round(wall, 1),
        "requests": {
            "reads": reads_total,
            "readsPerWrittenCluster": round(reads_total / written, 2) if written else None,
            "readsByPhase": phases,
            "readsByPhasePerWrittenCluster": {
                k: round(v / written, 2) for k, v in phases.items() if written
            },
            "graphQueries": stats.get("graphQueries", 0),
            "writes": sum(writes.values()),
            "deletes": sum(deletes.values()),
            "throttled429": stats["throttled"]["arm"],
            "writesPerSubscription": dict(sorted(writes.items())),
            "readsPerSubscription": {s: round(n) for s, n in sorted(reads.items())},
        },
        "ideal": {
            "writeBucketSeconds": round(write_ideal, 1),
            "deleteBucketSeconds": round(delete_ideal, 1),
            "readBucketSeconds": round(read_ideal, 1),
            "floorSeconds": round(floor, 1),
        },
        "ratio": {
            "toWriteBucketIdeal": round(wall / write_ideal, 2) if write_ideal else None,
            "toFloor": round(wall / floor, 2) if floor else None,
        },
        "command": " ".join(["python", "benchmarks/bench_remediate.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
