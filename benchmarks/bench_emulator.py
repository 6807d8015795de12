"""Throughput of the ARM emulator: requests per second with latency injection off.

Starts ``fleet emulator serve`` as its own process (throttling off, so the bucket does not cap
the figure) on a synthetic fleet, then drives it from separate load-generator processes: each
process runs threads with one HTTP/1.1 keep-alive TLS connection each, cycling through the
reads fleet makes (GET extension, GET flux configuration, list flux configurations, GET cluster,
operation-status poll). ``--wrk`` uses wrk instead when it is installed (``apt-get install wrk``).

    .venv/bin/python benchmarks/bench_emulator.py --seconds 10 --processes 1 --threads 8

Prints one JSON object: requests, seconds, requests/s, p50/p99 latency, errors, the machine.
docs/emulator.md records the figure of the reference machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from _common import machine, start_emulator

SUB = "00000000-0000-0000-0000-000000000001"
API = "api-version=2023-05-01"
KC = "providers/Microsoft.KubernetesConfiguration"


def make_snapshot(clusters: int) -> dict[str, Any]:
    rg = f"/subscriptions/{SUB}/resourceGroups/rg-prod-weu-1"
    resources: list[dict[str, Any]] = [
        {
            "id": rg,
            "type": "Microsoft.Resources/resourceGroups",
            "name": "rg-prod-weu-1",
            "location": "westeurope",
            "tags": {},
        }
    ]
    for i in range(clusters):
        cid = f"{rg}/providers/Microsoft.ContainerService/managedClusters/aks-prod-{i:05d}"
        resources.append(
            {
                "id": cid,
                "type": "Microsoft.ContainerService/managedClusters",
                "name": f"aks-prod-{i:05d}",
                "location": "westeurope",
                "tags": {"env": "prod"},
                "properties": {
                    "kubernetesVersion": "1.30.4",
                    "powerState": {"code": "Running"},
                    "agentPoolProfiles": [
                        {"name": "sys", "vmSize": "Standard_D4s_v5", "osType": "Linux", "count": 3}
                    ],
                },
            }
        )
        resources.append(
            {
                "id": f"{cid}/{KC}/extensions/flux",
                "type": "Microsoft.KubernetesConfiguration/extensions",
                "name": "flux",
                "properties": {
                    "extensionType": "microsoft.flux",
                    "autoUpgradeMinorVersion": True,
                    "releaseTrain": "Stable",
                    "version": None,
                    "currentVersion": "1.17.3",
                    "provisioningState": "Succeeded",
                    "configurationSettings": {"multiTenancy.enforce": "true"},
                    "scope": {"cluster": {"releaseNamespace": "flux-system"}},
                },
            }
        )
        resources.append(
            {
                "id": f"{cid}/{KC}/fluxConfigurations/cluster-config",
                "type": "Microsoft.KubernetesConfiguration/fluxConfigurations",
                "name": "cluster-config",
                "properties": {
                    "scope": "cluster",
                    "namespace": "cluster-config",
                    "sourceKind": "GitRepository",
                    "suspend": False,
                    "gitRepository": {
                        "url": "https://github.com/fluxcd/flux2-kustomize-helm-example",
                        "repositoryRef": {"branch": "main"},
                        "syncIntervalInSeconds": 600,
                        "timeoutInSeconds": 600,
                    },
                    "kustomizations": {
                        "infra": {"name": "infra", "path": "./infrastructure", "prune": True}
                    },
                    "complianceState": "Compliant",
                    "provisioningState": "Succeeded",
                },
            }
        )
    return {
        "kind": "FleetSnapshot",
        "subscriptions": [{"subscriptionId": SUB, "displayName": "prod-eu"}],
        "extensionTypeVersions": {"microsoft.flux": {"Stable": ["1.17.3", "1.17.2", "1.16.12"]}},
        "resources": resources,
    }


def paths(clusters: int) -> list[str]:
    out = []
    for i in range(clusters):
        cid = (
            f"/subscriptions/{SUB}/resourceGroups/rg-prod-weu-1/providers/"
            f"Microsoft.ContainerService/managedClusters/aks-prod-{i:05d}"
        )
        out += [
            f"{cid}/{KC}/extensions/flux?{API}",
            f"{cid}/{KC}/fluxConfigurations/cluster-config?{API}",
            f"{cid}/{KC}/fluxConfigurations?{API}",
            f"{cid}?api-version=2024-05-01",
        ]
    return out


def _worker(
    endpoint: str, ca: str, targets: list[str], seconds: float, threads: int, out: Any
) -> None:
    """One load-generator process: ``threads`` keep-alive connections for ``seconds``."""
    parsed = urllib.parse.urlsplit(endpoint)
    context = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": "Bearer bench-token", "Accept": "application/json"}
    deadline = time.perf_counter() + seconds
    results: list[tuple[int, int, list[float]]] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=context)
        done = errors = 0
        lat: list[float] = []
        i = offset
        while time.perf_counter() < deadline:
            path = targets[i % len(targets)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=context)
            lat.append(time.perf_counter() - t0)
            done += 1
        conn.close()
        with lock:
            results.append((done, errors, lat))

    pool = [threading.Thread(target=run, args=(n * 7919,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    lat_all = [x for _, _, lat in results for x in lat]
    out.put((sum(r[0] for r in results), sum(r[1] for r in results), lat_all))


def run_python(
    endpoint: str, ca: str, targets: list[str], seconds: float, processes: int, threads: int
) -> dict[str, Any]:
    queue: Any = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=_worker, args=(endpoint, ca, targets, seconds, threads, queue)
        )
        for _ in range(processes)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    parts = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    total = sum(p[0] for p in parts)
    errors = sum(p[1] for p in parts)
    lat = sorted(x for p in parts for x in p[2])
    return {
        "tool": f"python http.client, {processes} process(es) x {threads} keep-alive threads",
        "requests": total,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requestsPerSecond": round(total / seconds, 1),
        "latencyMs": {
            "p50": round(lat[len(lat) // 2] * 1000, 2),
            "p99": round(lat[int(len(lat) * 0.99)] * 1000, 2),
        }
        if lat
        else {},
    }


def run_wrk(
    endpoint: str, ca: str, targets: list[str], seconds: float, threads: int, connections: int
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(
            "paths = {" + ",".join(json.dumps(p) for p in targets[:400]) + "}\n"
            "i = 0\nrequest = function()\n  i = i + 1\n"
            "  return wrk.format('GET', paths[(i % #paths) + 1], "
            "{['Authorization'] = 'Bearer bench-token'})\nend\n"
        )
        script = fh.name
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "--latency",
        "-s",
        script,
        endpoint,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    rps = next(float(ln.split(":")[1]) for ln in out.splitlines() if ln.startswith("Requests/sec"))
    return {
        "tool": " ".join([*cmd[:-2], "<paths.lua>", "<endpoint>"]),
        "requestsPerSecond": rps,
        "raw": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--wrk", action="store_true", help="use wrk (must be installed)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / "fleet.json"
        snapshot.write_text(json.dumps(make_snapshot(args.clusters)))
        proc, endpoint, ca = start_emulator(snapshot, "--throttle", "off")
        try:
            targets = paths(args.clusters)
            if args.wrk:
                if shutil.which("wrk") is None:
                    raise SystemExit("wrk is not installed (apt-get install wrk)")
                result = run_wrk(
                    endpoint, ca, targets, args.seconds, args.threads, args.connections
                )
            else:
                result = run_python(
                    endpoint, ca, targets, args.seconds, args.processes, args.threads
                )
        finally:
            proc.terminate()
            proc.wait(10)
    result["machine"] = machine()
    result["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
