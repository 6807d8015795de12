"""Audit sweeps at ARM's limits: the ARM path, the Resource Graph path and the naive ways.

For each fleet size (clusters x subscriptions) the harness generates the scenario's fleet
(``fleet emulator generate``, every defect kind), starts ``fleet emulator serve`` **in its own
process** (so client and server do not share a GIL) with ARM-like latency (log-normal, median
40 ms, p99 300 ms), ARM's read buckets (250 burst, 25/s per subscription and principal) and the
Resource Graph quota (15 queries per 5 s), and then measures, one after the other against the
same emulator:

* ``arm``: a sweep with ``FLEET_INVENTORY=arm`` (the providers' cluster lists, then three
  list reads per cluster, under fleet's budget);
* ``graph``: a sweep with ``FLEET_INVENTORY=graph`` (Resource Graph bulk reads);
* ``sequential``: the naive loop (plain SDK clients, one cluster after the other: the generic
  resource list, then a GET of each cluster and its three lists, the same engine), on a sample
  of clusters, extrapolated to the fleet (it says so);
* ``pool``: the naive thread pool (plain SDK clients on 32 threads, no budget: ARM's 429s and
  the SDK's own retries do the pacing).

Each sweep is a child process (``python benchmarks/bench_sweep.py child ...``, which runs
``fleet.jobs.runs.run_sweep`` with the history database, as ``fleet sweep`` does, but without
keeping every judgement for rendering), measured with ``wait4``: wall time, CPU time, peak RSS.
The emulator's counters give requests and 429s; its CPU time is read from ``/proc``.

Ideal (docs/contracts.md, Performance model): the physical minimum, computed from the reads the
information needs, not from the reads fleet made. An ARM sweep needs 3 reads per cluster (its
extensions, fluxConfigurations and sourceControlConfigurations lists) plus the pages of each
subscription's two provider lists at Azure's page size (``fleet.emulator.reads``, sourced in
docs/emulator.md), so it cannot beat ``max over subscriptions of (minreads - 250) / 25``
seconds (all subscriptions in parallel), nor ``minreads x mean latency / concurrency``. Every
row also prints the reads it made per cluster (the emulator's GETs over the clusters judged;
the naive loop's own listing left out) beside its wall time. The graph path cannot
beat ``((queries - 1) // 15) x 5`` seconds (the quota is a fixed window of 15 queries per 5 s:
the last query waits for its window), queries = ceil(rows / 1000) per batch of
subscriptions; nor ``queries x mean latency`` (one query at a time).

    .venv/bin/python benchmarks/bench_sweep.py --clusters 10000 --subscriptions 10
    .venv/bin/python benchmarks/bench_sweep.py --clusters 1000,10000 --subscriptions 1,10,50 \\
        --paths arm,graph,sequential,pool --json-out results.jsonl --markdown
    .venv/bin/python benchmarks/bench_sweep.py render results.jsonl     # the table again

Other engines: ``--engine NAME`` picks a command builder from ``ENGINES`` (``local`` is the
default); ``--engine-command TEMPLATE`` runs any command line instead of the local child, with
``{endpoint}``, ``{ca}``, ``{inventory}``, ``{policies}``, ``{state_dir}`` and
``{concurrency}`` filled in (e.g. ``fleet sweep --engine celery -p {policies} -o json``); its
environment carries the same ``FLEET_*`` settings. The harness measures any command the same
way (see ``measure``); a command that prints a JSON line with ``clusters`` gets it reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import start_emulator as emulator_process

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "policies"
CACHE = REPO / "benchmarks" / ".cache"

READ_BURST, READ_RATE = 250, 25.0
GRAPH_QUOTA, GRAPH_WINDOW, GRAPH_PAGE = 15, 5.0, 1000
#: ARM reads a cluster's information needs: list extensions, list flux configurations, list
#: Flux v1 configurations (its own facts come with the provider lists).
MIN_READS_PER_CLUSTER = 3
#: Items per page of the providers' cluster lists as Azure pages them; the benchmark emulator
#: serves every list at Azure's page size (no ``--page-size``).
AZURE_PAGE = 100


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    """What one command cost, from the operating system's accounts."""

    argv: list[str]
    wall: float
    cpu: float
    max_rss_mb: float
    returncode: int
    output: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""


def _hwm_mb(pid: int) -> float | None:
    """Peak RSS of a running process (VmHWM), MB; None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(argv: list[str], env: dict[str, str], *, timeout: float | None = None) -> Measurement:
    """Run a command line and account for it: wall clock, CPU (user + system, ``wait4``) and
    peak RSS. This is the hook every engine goes through.

    Peak RSS is the process's ``VmHWM``, polled while it runs: ``wait4``'s ``ru_maxrss``
    counts the memory of the (large) harness that was forked before ``exec``. A JSON line
    with ``peakRssMB`` from the command itself (the local child reads its own VmHWM at the
    end) wins over the poll. The last stdout line that is a JSON object becomes ``output``.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, text=True)
        deadline = None if timeout is None else start + timeout
        peak = 0.0
        while True:
            hwm = _hwm_mb(proc.pid)
            if hwm is not None:
                peak = max(peak, hwm)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        parsed: dict[str, Any] = {}
        try:  # a command that prints one JSON document (``fleet sweep -o json``)
            whole = json.loads(text)
            parsed = whole if isinstance(whole, dict) else {}
        except ValueError:  # else the last line that is a JSON object
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("{"):
                    try:
                        parsed = json.loads(line)
                    except ValueError:
                        continue
        tail = err.read()[-2000:]
    reported = parsed.get("peakRssMB")
    return Measurement(
        argv=argv,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_rss_mb=float(reported) if isinstance(reported, int | float) else peak,
        returncode=proc.returncode,
        output=parsed,
        stderr_tail=tail,
    )


@dataclass(frozen=True)
class RunSpec:
    """What an engine's command line needs to know."""

    endpoint: str
    ca: str
    inventory: str
    state_dir: Path
    concurrency: int
    policies: Path = POLICIES


def local_command(spec: RunSpec) -> list[str]:
    """The local engine: this file's ``child`` mode (``run_sweep`` in a fresh process)."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "child",
        "--policies",
        str(spec.policies),
    ]


#: Engine name -> command builder. The Celery engine registers itself here (or is run with
#: ``--engine-command``); every engine is measured by ``measure``.
ENGINES: dict[str, Callable[[RunSpec], list[str]]] = {"local": local_command}


def template_command(template: str) -> Callable[[RunSpec], list[str]]:
    def build(spec: RunSpec) -> list[str]:
        return shlex.split(
            template.format(
                endpoint=spec.endpoint,
                ca=spec.ca,
                inventory=spec.inventory,
                policies=spec.policies,
                state_dir=spec.state_dir,
                concurrency=spec.concurrency,
            )
        )

    return build


def fleet_env(spec: RunSpec) -> dict[str, str]:
    """The FLEET_* environment of a sweep against the benchmark emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update(
        {
            "FLEET_ARM_ENDPOINT": spec.endpoint,
            "FLEET_ARM_CA_BUNDLE": spec.ca,
            "FLEET_AUTH": "emulator",
            "FLEET_INVENTORY": spec.inventory,
            "FLEET_CONCURRENCY": str(spec.concurrency),
            "FLEET_STATE_DIR": str(spec.state_dir),
            "FLEET_DATABASE_URL": f"sqlite:///{spec.state_dir / 'fleet.db'}",
        }
    )
    return env


# --------------------------------------------------------------------------- the emulator


def snapshot_file(clusters: int, subscriptions: int, seed: int) -> Path:
    """The generated fleet, cached per day (its timestamps are relative to generation)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")  # generated fleets are never committed
    day = datetime.now(UTC).strftime("%Y%m%d")
    path = CACHE / f"fleet-{clusters}-{subscriptions}-{seed}-{day}.json"
    if not path.exists():
        from fleet.emulator.generate import dumps, generate

        for old in CACHE.glob(f"fleet-{clusters}-{subscriptions}-{seed}-*.json"):
            old.unlink()
        snap = generate(clusters=clusters, subscriptions=subscriptions, seed=seed)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(dumps(snap, pretty=False))
        tmp.rename(path)
    return path


@dataclass
class Emulator:
    proc: subprocess.Popen[str]
    endpoint: str
    ca: str

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def admin(self) -> Any:
        from fleet.emulator.testing import AdminClient

        return AdminClient(self.endpoint, self.ca, timeout=120)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_emulator(snapshot: Path, args: argparse.Namespace) -> Emulator:
    proc, endpoint, ca = emulator_process(
        snapshot,
        "--latency-ms", str(args.latency_ms),
        "--latency-p99-ms", str(args.latency_p99_ms),
        "--throttle", args.throttle,
        "--graph-quota", str(args.graph_quota),
        "--seed", str(args.seed),
    )  # fmt: skip
    return Emulator(proc, endpoint, ca)


# --------------------------------------------------------------------------- ideals


def mean_latency(median_ms: float, p99_ms: float) -> float:
    """Mean of the emulator's log-normal latency, seconds."""
    if median_ms <= 0:
        return 0.0
    sigma = math.log(p99_ms / median_ms) / 2.326
    return median_ms / 1000 * math.exp(sigma * sigma / 2)


@dataclass
class FleetShape:
    """Counts the ideals are computed from."""

    clusters: int
    subscriptions: int
    per_subscription: dict[str, int]
    child_rows_per_subscription: dict[str, int]
    #: (subscription, cluster type) -> clusters: each type is its own provider list.
    per_type: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: Path) -> FleetShape:
        import orjson

        data = orjson.loads(snapshot.read_bytes())
        per_sub: Counter[str] = Counter()
        per_type: Counter[tuple[str, str]] = Counter()
        rows: Counter[str] = Counter()
        for r in data["resources"]:
            sub = r["id"].split("/")[2].lower()
            t = r["type"].lower()
            if t.endswith(("/managedclusters", "/connectedclusters")):
                per_sub[sub] += 1
                per_type[(sub, t)] += 1
            elif t.startswith("microsoft.kubernetesconfiguration/"):
                rows[sub] += 1
        return cls(
            sum(per_sub.values()), len(data["subscriptions"]), dict(per_sub), dict(rows),
            dict(per_type),
        )  # fmt: skip

    def arm_reads(self, sub: str) -> int:
        """The minimum reads of a subscription: 3 per cluster, and every page of its AKS and
        its Arc list (one page at least, even when empty)."""
        pages = sum(
            max(1, math.ceil(self.per_type.get((sub, t), 0) / AZURE_PAGE))
            for t in ("microsoft.containerservice/managedclusters",
                      "microsoft.kubernetes/connectedclusters")
        )  # fmt: skip
        return MIN_READS_PER_CLUSTER * self.per_subscription[sub] + pages

    def arm_ideal(self, latency: float, concurrency: int) -> dict[str, float]:
        throttle = max(
            max(0.0, (self.arm_reads(s) - READ_BURST) / READ_RATE) for s in self.per_subscription
        )
        reads = sum(self.arm_reads(s) for s in self.per_subscription)
        bound = reads * latency / concurrency
        return {"throttle": throttle, "latency": bound, "ideal": max(throttle, bound),
                "minReads": reads}  # fmt: skip

    def graph_queries(self, batch: int = 250) -> int:
        subs = sorted(self.per_subscription)
        queries = 0
        for i in range(0, len(subs), batch):
            part = subs[i : i + batch]
            queries += math.ceil(sum(self.per_subscription[s] for s in part) / GRAPH_PAGE)
            queries += math.ceil(
                sum(self.child_rows_per_subscription.get(s, 0) for s in part) / GRAPH_PAGE
            )
        return queries

    def graph_ideal(self, latency: float) -> dict[str, float]:
        """Resource Graph's quota is a fixed window (15 queries per 5 s): query ``q`` cannot
        be sent before window ``(q - 1) // 15`` opens."""
        queries = self.graph_queries()
        quota = ((queries - 1) // GRAPH_QUOTA) * GRAPH_WINDOW if queries else 0.0
        return {"throttle": quota, "latency": queries * latency,
                "ideal": max(quota, queries * latency), "queries": queries}  # fmt: skip


# --------------------------------------------------------------------------- the runs


def judged_count(output: dict[str, Any]) -> int:
    """Clusters a command judged: the local child's ``clusters``, or the ``summary`` of a
    ``fleet sweep -o json`` report (docs/contracts.md, Compliance vocabulary)."""
    summary = output.get("summary")
    if isinstance(summary, dict) and isinstance(summary.get("clusters"), int):
        return int(summary["clusters"])
    clusters = output.get("clusters")
    return clusters if isinstance(clusters, int) else 0


def run_path(
    path: str,
    emu: Emulator,
    shape: FleetShape,
    args: argparse.Namespace,
    builder: Callable[[RunSpec], list[str]],
) -> dict[str, Any]:
    admin = emu.admin()
    admin.reset_throttle()
    admin.reset_stats()
    cpu0 = emu.cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        if path in ("arm", "graph"):
            spec = RunSpec(emu.endpoint, emu.ca, path, Path(tmp), args.concurrency)
            m = measure(builder(spec), fleet_env(spec), timeout=args.timeout)
            sample = None
        else:
            spec = RunSpec(emu.endpoint, emu.ca, "arm", Path(tmp), args.concurrency)
            sample = args.sample if path == "sequential" else args.pool_sample
            argv = [
                sys.executable, str(Path(__file__).resolve()), "naive",
                "--mode", path, "--sample", str(sample or 0),
                "--threads", str(args.concurrency),
            ]  # fmt: skip
            m = measure(argv, fleet_env(spec), timeout=args.timeout)
    stats = admin.stats()
    emu_cpu = emu.cpu_seconds() - cpu0
    latency = mean_latency(args.latency_ms, args.latency_p99_ms)
    judged = judged_count(m.output)
    result: dict[str, Any] = {
        "path": path,
        "engine": args.engine if path in ("arm", "graph") else "naive",
        "clusters": shape.clusters,
        "subscriptions": shape.subscriptions,
        "judged": judged,
        "returncode": m.returncode,
        "wallSeconds": round(m.wall, 2),
        "cpuSeconds": round(m.cpu, 2),
        "cpuMsPerCluster": round(m.cpu / judged * 1000, 3) if judged else None,
        "peakRssMB": round(m.max_rss_mb, 1),
        "requests": stats["requests"]["total"],
        "throttled": stats["throttled"]["total"],
        "throttledShare": round(
            stats["throttled"]["total"] / max(1, stats["requests"]["total"]), 4
        ),
        "graphQueries": stats.get("graphQueries", 0),
        "byMethod": stats["requests"]["byMethod"],
        "emulatorCpuSeconds": round(emu_cpu, 2),
        "emulatorPeakRssMB": round(emu.peak_rss_mb(), 1),
        # Other work on the machine shows here (the benchmark machine may be shared).
        "loadAverage": [round(x, 2) for x in os.getloadavg()],
        # the command's own JSON, minus a full report's per-cluster list
        "child": {k: v for k, v in m.output.items() if k != "clusters" or isinstance(v, int)},
    }
    if path == "graph":
        ideal = shape.graph_ideal(latency)
    else:
        ideal = shape.arm_ideal(latency, args.concurrency)
    result["ideal"] = {k: round(v, 2) for k, v in ideal.items()}
    gets = int(stats["requests"]["byMethod"].get("GET", 0)) - int(m.output.get("listingReads", 0))
    result["readsPerCluster"] = round(gets / judged, 3) if judged else None
    if sample:
        # The naive loop ran on a sample: its time per cluster times the fleet is the estimate.
        per = m.output.get("secondsPerCluster") or 0.0
        result["sample"] = judged
        result["extrapolatedSeconds"] = round(per * shape.clusters, 1)
        seconds = result["extrapolatedSeconds"]
    else:
        seconds = m.wall
    result["seconds"] = seconds
    result["ratioToIdeal"] = round(seconds / ideal["ideal"], 3) if ideal["ideal"] > 0 else None
    if m.returncode != 0:
        result["stderr"] = m.stderr_tail
    return result


def run_matrix(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    builder = template_command(args.engine_command) if args.engine_command else ENGINES[args.engine]
    for clusters in args.clusters:
        for subs in args.subscriptions:
            snapshot = snapshot_file(clusters, subs, args.seed)
            shape = FleetShape.of(snapshot)
            emu = start_emulator(snapshot, args)
            try:
                for path in args.paths:
                    for rep in range(args.repeat):
                        result = run_path(path, emu, shape, args, builder)
                        result["run"] = rep + 1
                        result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
                        yield result
            finally:
                emu.stop()


# --------------------------------------------------------------------------- child: a sweep


def child(argv: list[str]) -> int:
    """A sweep in this process (the local engine), as ``fleet sweep`` runs it, printing one
    JSON line of what it did. Judgements are not kept: they go to the history database in
    batches and to the summary, so memory does not grow with the fleet."""
    parser = argparse.ArgumentParser(prog="bench_sweep.py child")
    parser.add_argument("--policies", type=Path, default=POLICIES)
    opts = parser.parse_args(argv)

    from fleet.jobs.runs import environment, run_sweep
    from fleet.policy.loading import load
    from fleet.settings import Settings

    settings = Settings()
    policy_set = load([opts.policies])
    t0 = time.perf_counter()
    with environment(settings) as env:
        outcome = run_sweep(env, policy_set, keep_judgements=False)
        graph = getattr(env.inventory, "stats", None)
        requests = env.session.requests.snapshot()
    wall = time.perf_counter() - t0
    usage = os.times()
    print(
        json.dumps(
            {
                "clusters": outcome.summary["clusters"],
                "byState": outcome.summary["byState"],
                "complete": outcome.info.complete,
                "requests": requests,
                "graph": graph.as_dict() if graph is not None else None,
                "sweepSeconds": round(wall, 2),
                "cpuSeconds": round(usage.user + usage.system, 2),
                "peakRssMB": _hwm_mb(os.getpid()),
            }
        )
    )
    return 0 if outcome.info.complete else 1


# --------------------------------------------------------------------------- naive


def naive(argv: list[str]) -> int:
    """The audit done the naive way: plain SDK clients (their default retry policy, no
    budget, the default connection pool), the same four reads per cluster and the same
    engine. ``sequential``: one cluster after the other; ``pool``: a thread pool."""
    parser = argparse.ArgumentParser(prog="bench_sweep.py naive")
    parser.add_argument("--mode", choices=("sequential", "pool"), required=True)
    parser.add_argument("--sample", type=int, default=0, help="clusters to judge (0: all)")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--policies", type=Path, default=POLICIES)
    opts = parser.parse_args(argv)

    from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.resource.subscriptions import SubscriptionClient

    from fleet.azure.credentials import EmulatorCredential
    from fleet.core.clusters import facts_from_arm
    from fleet.evaluate.versions import Catalog
    from fleet.observe.observed import ObservedCluster
    from fleet.plan import pipeline
    from fleet.policy.loading import load
    from fleet.select import selection

    endpoint = os.environ["FLEET_ARM_ENDPOINT"]
    ca = os.environ["FLEET_ARM_CA_BUNDLE"]
    cred = EmulatorCredential()
    kw: dict[str, Any] = {
        "base_url": endpoint,
        "connection_verify": ca,
        "credential_scopes": ["https://management.azure.com/.default"],
    }
    policy_set = load([opts.policies])
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    pages = list(SubscriptionClient(cred, **kw).subscriptions.list().by_page())
    subs = [s.subscription_id for page in pages for s in page]
    listing_reads = len(pages)
    rm = {s: ResourceManagementClient(cred, s, **kw) for s in subs}
    kc = {s: SourceControlConfigurationClient(cred, s, **kw) for s in subs}
    flt = (
        "resourceType eq 'Microsoft.ContainerService/managedClusters' or "
        "resourceType eq 'Microsoft.Kubernetes/connectedClusters'"
    )
    listed: dict[str, list[str]] = {}
    for s in subs:
        listed[s] = []
        for page in rm[s].resources.list(filter=flt).by_page():
            listing_reads += 1
            listed[s].extend(r.id for r in page)
    # Round-robin across subscriptions, as a sample of the whole fleet.
    ids: list[str] = []
    for i in range(max(len(v) for v in listed.values())):
        ids.extend(v[i] for v in listed.values() if i < len(v))
    if opts.sample:
        ids = ids[: opts.sample]
    catalogs: dict[str, Catalog] = {}
    versions = {"managedClusters": "2024-05-01", "connectedClusters": "2024-01-01"}

    def judge_one(cid: str) -> str:
        sub = cid.split("/")[2]
        ctype = "connectedClusters" if "/connectedClusters/" in cid else "managedClusters"
        parts = cid.split("/")
        args = {"resource_group_name": parts[4], "cluster_rp": parts[6],
                "cluster_resource_name": parts[7], "cluster_name": parts[8]}  # fmt: skip
        try:
            cluster = rm[sub].resources.get_by_id(cid, api_version=versions[ctype]).as_dict()
            facts = facts_from_arm(cluster)
            ops = kc[sub]
            observed = ObservedCluster(
                facts=facts,
                extensions=tuple(m.serialize(keep_readonly=True)
                                 for m in ops.extensions.list(**args)),
                flux_configurations=tuple(m.serialize(keep_readonly=True)
                                          for m in ops.flux_configurations.list(**args)),
                source_control_configurations=tuple(
                    m.serialize(keep_readonly=True)
                    for m in ops.source_control_configurations.list(**args)),
            )  # fmt: skip
        except Exception as exc:  # the naive loop records the failure and moves on
            return f"error: {type(exc).__name__}"
        loc = facts.location.lower()
        if loc not in catalogs:
            trains: dict[str, list[str]] = {}
            for item in ops.extension_type_versions.list(facts.location, "microsoft.flux"):
                trains.setdefault(str(item.release_train), []).extend(item.versions or ())
            catalogs[loc] = Catalog.from_mapping(trains)
        applicable = selection.applicable(policy_set, facts, today=now.date())
        verdict = pipeline.judge(observed, applicable, catalog=catalogs[loc], now=now).verdict
        return str(verdict.state)

    t1 = time.perf_counter()
    if opts.mode == "sequential":
        states = [judge_one(cid) for cid in ids]
    else:
        with ThreadPoolExecutor(opts.threads) as pool:
            states = list(pool.map(judge_one, ids))
    t2 = time.perf_counter()
    usage = os.times()
    print(
        json.dumps(
            {
                "clusters": len(ids),
                "fleetClusters": sum(len(v) for v in listed.values()),
                # the whole fleet's listing, left out of the reads per judged (sampled) cluster
                "listingReads": listing_reads,
                "setupSeconds": round(t1 - t0, 2),
                "seconds": round(t2 - t1, 2),
                "secondsPerCluster": (t2 - t1) / max(1, len(ids)),
                "states": dict(Counter(states)),
                "cpuSeconds": round(usage.user + usage.system, 2),
                "peakRssMB": _hwm_mb(os.getpid()),
            }
        )
    )
    return 0


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memMB": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def markdown_row(r: dict[str, Any]) -> str:
    ideal = r["ideal"]
    sample = f" (sample {r['sample']}, extrapolated)" if r.get("sample") else ""
    ratio = r["ratioToIdeal"]
    cpu = r["cpuMsPerCluster"]
    per = r.get("readsPerCluster")
    return (
        f"| {r['clusters']:,} | {r['subscriptions']} | {r['path']}{sample} | "
        f"{r['seconds']:,.1f} | {'–' if per is None else f'{per:.2f}'} | "
        f"{ideal['throttle']:,.1f} / {ideal['latency']:,.1f} | "
        f"{'–' if ratio is None else f'{ratio:.2f}'} | {r['requests']:,} | "
        f"{r['throttled']:,} ({r['throttledShare'] * 100:.2f} %) | "
        f"{'–' if cpu is None else f'{cpu:.2f}'} | {r['peakRssMB']:,.0f} | "
        f"{r['emulatorCpuSeconds']:,.0f} |"
    )


MARKDOWN_HEADER = (
    "| clusters | subs | path | seconds | reads/cluster | ideal s (throttle / latency) | ratio | "
    "requests | 429s | CPU ms/cluster | peak RSS MB | emulator CPU s |\n"
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def render(path: Path) -> None:
    """The markdown table of a ``--json-out`` file."""
    print(MARKDOWN_HEADER)
    for line in path.read_text().splitlines():
        if line.strip():
            print(markdown_row(json.loads(line)))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "child":
        return child(argv[1:])
    if argv and argv[0] == "naive":
        return naive(argv[1:])
    if argv and argv[0] == "render":
        render(Path(argv[1]))
        return 0

    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=ints, default=[10_000])
    parser.add_argument("--subscriptions", type=ints, default=[10])
    parser.add_argument(
        "--paths",
        type=lambda s: s.split(","),
        default=["arm", "graph", "sequential", "pool"],
        help="arm, graph, sequential, pool (comma-separated)",
    )
    parser.add_argument("--engine", default="local", help=f"one of {', '.join(ENGINES)}")
    parser.add_argument("--engine-command", help="command-line template (see the docstring)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample", type=int, default=200, help="clusters the naive loop judges")
    parser.add_argument("--pool-sample", type=int, default=0, help="naive pool sample (0: all)")
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--latency-p99-ms", type=float, default=300.0)
    parser.add_argument("--throttle", default="arm")
    parser.add_argument("--graph-quota", type=int, default=GRAPH_QUOTA)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--json-out", type=Path, help="append one JSON line per run")
    parser.add_argument("--markdown", action="store_true", help="print a table at the end")
    args = parser.parse_args(argv)
    if args.engine not in ENGINES and not args.engine_command:
        parser.error(f"unknown engine {args.engine!r}")

    header = {"benchmark": "sweep", "machine": machine(),
              "command": " ".join([".venv/bin/python", "benchmarks/bench_sweep.py", *argv]),
              "date": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    print(json.dumps(header), flush=True)
    rows = []
    for result in run_matrix(args):
        result["command"] = header["command"]
        result["machine"] = header["machine"]
        rows.append(result)
        line = json.dumps(result)
        print(line, flush=True)
        if args.json_out:
            with args.json_out.open("a") as fh:
                fh.write(line + "\n")
    if args.markdown:
        print(MARKDOWN_HEADER)
        for r in rows:
            print(markdown_row(r))
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
