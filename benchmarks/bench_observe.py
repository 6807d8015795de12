"""CPU cost of the ARM observation path: ``fleet.azure.observe.observe`` per cluster.

The sweep benchmark (``bench_sweep.py``) is bounded by ARM's throttle; this one isolates what
fleet itself spends per cluster and per request on the ARM path (SDK pipeline, requests,
TLS, JSON, the models), so that changes to that path can be compared on their own.
``fleet emulator serve`` runs in its own process with latency and throttling off and the
generator's injected read faults removed; the client observes ``--clusters`` clusters on
``--threads`` threads, ``--repeat`` times, and reports the best run's process CPU time per
cluster and per request.

    .venv/bin/python benchmarks/bench_observe.py --clusters 2000 --threads 8 --repeat 3

To compare with another revision, run the same command with ``PYTHONPATH`` pointing at a
``git worktree`` of it (the emulator then comes from that revision too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sweep import machine, snapshot_file


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fleet", type=int, default=2000, help="clusters of the fleet served")
    args = parser.parse_args(argv)

    import subprocess

    from fleet.azure.inventory import ArmInventory
    from fleet.azure.observe import observe
    from fleet.azure.session import AzureSession
    from fleet.emulator.testing import AdminClient
    from fleet.settings import Settings

    snapshot = snapshot_file(args.fleet, 4, 1)
    cmd = [sys.executable, "-m", "fleet", "emulator", "serve", "--snapshot", str(snapshot),
           "--throttle", "off", "--page-size", "1000"]  # fmt: skip
    emu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert emu.stdout is not None
        ready = json.loads(emu.stdout.readline())
        AdminClient(ready["endpoint"], ready["caBundle"]).clear_faults()
        settings = Settings(
            arm_endpoint=ready["endpoint"],
            arm_ca_bundle=ready["caBundle"],
            auth="emulator",
            concurrency=args.threads,
            # throttling is off: fleet's own budget must not pace the measurement either
            read_rate=1e9,
            read_burst=10**9,
        )
        runs: list[dict[str, Any]] = []
        with AzureSession(settings) as session:
            inventory = ArmInventory(session)
            facts = list(inventory.clusters(inventory.subscriptions(None)))[: args.clusters]
            for f in facts[:50]:  # warm up: connections, tokens, lazily built SDK tables
                observe(session, f)
            for _ in range(args.repeat):
                before = session.requests.total()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                with ThreadPoolExecutor(args.threads) as pool:
                    observed = list(pool.map(lambda f: observe(session, f), facts))
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                requests = session.requests.total() - before
                runs.append(
                    {
                        "clusters": len(facts),
                        "requests": requests,
                        "errors": sum(1 for o in observed if o.read_error),
                        "cpuMsPerCluster": round(cpu / len(facts) * 1000, 3),
                        "cpuMsPerRequest": round(cpu / requests * 1000, 3),
                        "wallSeconds": round(wall, 2),
                    }
                )
    finally:
        emu.terminate()
        emu.wait(30)
    best = min(runs, key=lambda r: float(r["cpuMsPerCluster"]))
    print(json.dumps({"benchmark": "observe", "best": best, "runs": runs, "machine": machine(),
                      "command": " ".join(["benchmarks/bench_observe.py", *argv])}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
