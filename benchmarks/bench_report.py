"""Benchmark: store a 50,000-cluster sweep and render its reports, then use the HTML in Chromium.

What is measured (each phase in its own process, so its peak RSS is its own):

- ``store``: ``History.record_sweep`` of a whole report (one transaction) and the streaming
  path the sweep runner uses (``start_sweep``, ``add_clusters`` in batches of 500,
  ``finish_sweep``), on SQLite (and PostgreSQL with ``--postgres URL``). Two sweeps are
  stored, the second with changes, so the reports have something to compare.
- ``render``: ``fleet report latest --format F --out FILE`` run in-process through the real
  CLI (stream from the database, diff against the previous sweep, trends) for each format:
  wall seconds, file size, peak RSS.
- ``browser``: the 50,000-cluster HTML opened in headless Chromium: time until the table is
  interactive, JS heap, time from typing a search to the filtered table (the 150 ms debounce
  included), a second search, a column sort, and a drill-down.

Synthetic verdicts: 10 subscriptions, 400 resource groups, AKS and Arc, two policies; about
61 % compliant, 28 % noncompliant (1-3 drift findings with values, or an extension version out
of the N-2 window), 5 % unknown, 2 % error, 1 % conflicting, 3 % exempt.

    .venv/bin/python benchmarks/bench_report.py                       # 50,000 clusters, SQLite
    .venv/bin/python benchmarks/bench_report.py --clusters 5000 --formats html,json
    .venv/bin/python benchmarks/bench_report.py --postgres postgresql+psycopg://postgres@127.0.0.1/bench

Prints one JSON object on stdout (progress on stderr). Needs /usr/bin/chromium for the browser
phase (``--no-browser`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine  # noqa: E402

from fleet.core.vocabulary import Code, Severity, State, worst  # noqa: E402
from fleet.evaluate.verdicts import Finding, PolicyResult, Verdict  # noqa: E402
from fleet.report.model import SweepInfo, build_report  # noqa: E402

FORMATS = ("json", "csv", "md", "html", "policyreport", "junit", "prometheus")
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KC = "providers/Microsoft.KubernetesConfiguration"
VERSIONS = ["1.17.3"] * 6 + ["1.17.2"] * 3 + ["1.16.12"] * 2 + ["1.15.2", "1.14.4"]
IN_WINDOW = {"1.17.3", "1.17.2", "1.16.12"}
SUBS = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 11)]
DRIFTS = [
    ("/properties/gitRepository/repositoryRef/branch", "main", "dev"),
    ("/properties/kustomizations/apps/path", "./apps/production", "./apps/staging"),
    ("/properties/kustomizations/infra/prune", True, False),
    ("/properties/gitRepository/syncIntervalInSeconds", 600, 60),
    ("/properties/configurationSettings/multiTenancy.enforce", "true", "false"),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports kB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def verdicts(n: int, seed: int) -> list[Verdict]:
    """A deterministic synthetic fleet; ``seed`` 2 drifts a little from ``seed`` 1."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sub = SUBS[i % len(SUBS)]
        rg = f"rg-{(i // 7) % 400:03d}"
        arc = i % 5 == 0
        name = _name(i)
        provider = (
            "Microsoft.Kubernetes/connectedClusters"
            if arc
            else "Microsoft.ContainerService/managedClusters"
        )
        cid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/{name}"
        roll = rng.random()
        version: str | None = rng.choice(VERSIONS)
        findings: list[Finding] = []
        states = {"platform-baseline": State.COMPLIANT, "team-apps": State.COMPLIANT}
        reason = None
        if roll < 0.17:
            for path, want, have in rng.sample(DRIFTS, rng.randint(1, 3)):
                code = (
                    Code.EXTENSION_DRIFT
                    if "configurationSettings" in path
                    else Code.FLUX_CONFIG_DRIFT
                )
                child = (
                    "extensions/flux" if code is Code.EXTENSION_DRIFT else "fluxConfigurations/c"
                )
                res = f"{cid}/{KC}/{child}"
                findings.append(
                    Finding(
                        code=code,
                        policy="platform-baseline",
                        resource=res,
                        path=path,
                        desired=want,
                        actual=have,
                        message=f"{path} is {have!r}, policy wants {want!r}",
                    )
                )
            states["platform-baseline"] = State.NONCOMPLIANT
        elif roll < 0.22:
            code = Code.CLUSTER_UNREACHABLE if arc else Code.CLUSTER_STOPPED
            findings.append(
                Finding(
                    code=code,
                    policy="platform-baseline",
                    resource=cid,
                    severity=Severity.LOW,
                    message="the cluster cannot be judged now",
                )
            )
            states = {k: State.UNKNOWN for k in states}
        elif roll < 0.24:
            version = None
            findings.append(
                Finding(
                    code=Code.READ_ERROR,
                    policy="platform-baseline",
                    resource=cid,
                    severity=Severity.HIGH,
                    message="reads failed after 4 attempts: 503",
                )
            )
            states = {k: State.ERROR for k in states}
        elif roll < 0.25:
            path = "/properties/gitRepository/url"
            for p in states:
                findings.append(
                    Finding(
                        code=Code.POLICY_CONFLICT,
                        policy=p,
                        resource=f"{cid}/{KC}/fluxConfigurations/c",
                        path=path,
                        desired={"platform-baseline": "a", "team-apps": "b"},
                        severity=Severity.HIGH,
                        message="policies disagree",
                    )
                )
            states = {k: State.CONFLICTING for k in states}
        elif roll < 0.28:
            states["platform-baseline"] = State.EXEMPT
            reason = "lab cluster"
        if (
            version is not None
            and version not in IN_WINDOW
            and states["platform-baseline"] == State.COMPLIANT
        ):
            findings.append(
                Finding(
                    code=Code.EXTENSION_VERSION_OUT_OF_WINDOW,
                    policy="platform-baseline",
                    resource=f"{cid}/{KC}/extensions/flux",
                    path="/properties/currentVersion",
                    desired=sorted(IN_WINDOW, reverse=True),
                    actual=version,
                    message=f"{version} is outside the N-2 window",
                )
            )
            states["platform-baseline"] = State.NONCOMPLIANT
        policies = [
            PolicyResult(
                name=p,
                state=s,
                mode="enforce" if p == "platform-baseline" else "audit",
                reason=reason if s == State.EXEMPT else None,
            )
            for p, s in states.items()
        ]
        out.append(
            Verdict(
                id=cid,
                name=name,
                type="connectedClusters" if arc else "managedClusters",
                subscription_id=sub,
                resource_group=rg,
                location=rng.choice(["westeurope", "northeurope", "eastus"]),
                state=worst([p.state for p in policies]),
                policies=policies,
                findings=findings,
                extension_version=version,
                extension_version_in_window=None if version is None else version in IN_WINDOW,
                tags={"env": rng.choice(["prod", "staging"]), "ring": str(i % 3)},
                status="Connected" if arc else "Running",
            )
        )
    return out


def report(n: int, seed: int, sweep_id: str, start: datetime) -> dict[str, Any]:
    info = SweepInfo(
        id=sweep_id,
        started_at=start,
        finished_at=start + timedelta(minutes=40),
        policy_revision=f"rev{seed}",
        targets=n,
        policies=["platform-baseline", "team-apps"],
        subscriptions=SUBS,
    )
    return build_report(info, verdicts(n, seed))


# --- phases (each run in a child process) -------------------------------------------------


def phase_store(url: str, n: int) -> dict[str, Any]:
    from fleet.record.history import open_history

    start = datetime(2026, 11, 24, 6, tzinfo=UTC)
    t = time.perf_counter()
    first = report(n, 1, "20261124T060000Z-aaaaaa", start)
    second = report(n, 2, "20261125T060000Z-bbbbbb", start + timedelta(days=1))
    generated = time.perf_counter() - t
    rss_before = rss_mb()
    with open_history(url, upgrade=True) as history:
        t = time.perf_counter()
        history.record_sweep(first)
        whole = time.perf_counter() - t
        t = time.perf_counter()
        info = dict(second["sweep"], finishedAt=None, complete=False)
        sid = history.start_sweep(info)
        clusters = second["clusters"]
        for i in range(0, len(clusters), 500):  # the sweep runner's HistorySink batch size
            history.add_clusters(sid, clusters[i : i + 500])
        history.finish_sweep(sid, second["sweep"], second["summary"])
        streamed = time.perf_counter() - t
        t = time.perf_counter()
        loaded = sum(1 for _ in history.iter_clusters(sid))
        read = time.perf_counter() - t
    findings = sum(len(c["findings"]) for c in clusters)
    return {
        "clusters": n,
        "findings": findings,
        "generateSeconds": round(generated, 2),
        "recordSweepSeconds": round(whole, 2),
        "streamedSweepSeconds": round(streamed, 2),
        "iterClustersSeconds": round(read, 2),
        "iterated": loaded,
        "clustersPerSecondRecord": round(n / whole),
        "clustersPerSecondStreamed": round(n / streamed),
        "rssBeforeMB": rss_before,
        "peakRssMB": rss_mb(),
        "summary": {k: second["summary"][k] for k in ("compliancePercent", "byState")},
    }


def phase_render(url: str, fmt: str, out: str) -> dict[str, Any]:
    import fleet.cli.report_cmds  # noqa: F401  (registers `fleet report`)
    from fleet.cli.app import app

    rss_before = rss_mb()
    t = time.perf_counter()
    try:
        app(["report", "latest", "--format", fmt, "--out", out, "--database", url])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    seconds = time.perf_counter() - t
    return {
        "format": fmt,
        "seconds": round(seconds, 2),
        "bytes": os.path.getsize(out),
        "rssBeforeMB": rss_before,
        "peakRssMB": rss_mb(),
    }


def _name(i: int) -> str:
    return f"{'arc' if i % 5 == 0 else 'aks'}-{i:05d}"


def phase_browser(html: str, n: int) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    result: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        t = time.perf_counter()
        page.goto(Path(html).as_uri(), timeout=120_000)
        page.wait_for_selector("html[data-ready=true]", timeout=120_000)
        result["loadToInteractiveSeconds"] = round(time.perf_counter() - t, 2)
        nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
        result["domContentLoadedMs"] = round(json.loads(nav)["domContentLoadedEventEnd"])
        result["jsHeapMB"] = round(page.evaluate("performance.memory.usedJSHeapSize") / 2**20, 1)
        rows = page.locator("#rows th[scope=row]")
        result["domRows"] = rows.count()
        counts = page.locator("#count")
        for label, query in (("firstSearch", "aks-0123"), ("secondSearch", "arc-00")):
            # Names are the only field holding "aks-"/"arc-": the expected count is exact.
            expected = min(100, sum(1 for i in range(n) if query in _name(i)))
            t = time.perf_counter()
            page.fill("#f-q", query)
            expect(rows).to_have_count(expected, timeout=30_000)
            result[f"{label}Seconds"] = round(time.perf_counter() - t, 3)
            result[f"{label}Count"] = counts.text_content()
        page.fill("#f-q", "")
        expect(rows).to_have_count(min(100, n), timeout=30_000)
        first = rows.first.text_content()
        t = time.perf_counter()
        page.click("button[data-sort=name]")
        expect(rows.first).not_to_have_text(str(first), timeout=30_000)
        result["sortSeconds"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        page.select_option("#f-state", "noncompliant")
        expect(counts).to_contain_text("matching", timeout=30_000)
        result["stateFilterSeconds"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        page.click("#rows button[data-row]")
        expect(page.locator("dialog#drill")).to_be_visible()
        result["drilldownSeconds"] = round(time.perf_counter() - t, 3)
        result["consoleErrors"] = errors
        result["chromium"] = browser.version
        browser.close()
    return result


# --- driver ---------------------------------------------------------------------------------


def child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "_phase", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"phase {args[0]} failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_phase":
        name, *rest = sys.argv[2:]
        if name == "store":
            out = phase_store(rest[0], int(rest[1]))
        elif name == "render":
            out = phase_render(rest[0], rest[1], rest[2])
        else:
            out = phase_browser(rest[0], int(rest[1]))
        print(json.dumps(out))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=50_000)
    parser.add_argument(
        "--formats", default=",".join(FORMATS), help="comma-separated formats to render"
    )
    parser.add_argument("--postgres", help="also store on this (empty) PostgreSQL database")
    parser.add_argument(
        "--workdir", help="keep the database and reports here (default: a temp dir)"
    )
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fleet-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'fleet.db'}"
    (work / "fleet.db").unlink(missing_ok=True)
    result: dict[str, Any] = {
        "machine": {**machine(), "sqlite": sqlite3.sqlite_version},
        "clusters": args.clusters,
        "workdir": str(work),
    }
    log(f"storing two sweeps of {args.clusters} clusters in {url} ...")
    result["store"] = {"sqlite": child("store", url, str(args.clusters))}
    if args.postgres:
        log("storing on PostgreSQL ...")
        result["store"]["postgresql"] = child("store", args.postgres, str(args.clusters))
    result["render"] = {}
    for fmt in [f for f in args.formats.split(",") if f]:
        log(f"rendering {fmt} ...")
        target = work / f"report.{fmt}"
        result["render"][fmt] = child("render", url, fmt, str(target))
    html = work / "report.html"
    if not args.no_browser and html.exists():
        log("opening the HTML report in chromium ...")
        result["browser"] = child("browser", str(html), str(args.clusters))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
