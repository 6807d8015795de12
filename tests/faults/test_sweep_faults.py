"""Sweeps under fault: throttling storms, 5xx bursts, connection resets, slow answers and client
timeouts, a token that expires mid-sweep, an emulator restart mid-sweep, malformed answers.

Each test sweeps the generated fleet through the real CLI (or, for the token, the same
``run_sweep`` the CLI calls, with a credential the test controls) against the emulator's fault
injection, then checks completeness (one verdict per targeted cluster), correctness (every
verdict is the scenario's, or an explained ``READ_ERROR`` where the fault made reads fail) and
that a sweep after the fault is gone gives every cluster its exact verdict.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from fleet.azure.session import AzureSession
from fleet.jobs.runs import environment, run_sweep
from fleet.policy.loading import load
from fleet.settings import Settings
from tests.conftest import POLICIES
from tests.faults.conftest import (
    QUICK,
    Emulator,
    calm,
    check_sweep,
    check_sweep_exact,
    cli_process,
    defects,
    env_of,
    facts_of,
    sweep,
)


def test_a_429_storm_is_waited_out_and_loses_nothing(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """64 reads in a row answered 429 (Retry-After 1 s) while the sweep starts: fleet's shared
    pause holds every thread back until the storm passes; no cluster is lost to it."""
    emu = emulator_factory()
    storm = emu.running.admin.add_fault(
        action="error",
        status=429,
        code="TooManyRequests",
        retryAfter=1,
        method="GET",
        pathRegex="/providers/",
        count=64,
    )
    report = sweep(emu.running, tmp_path / "a")
    assert check_sweep(report, fleet_snapshot, damaged=set()) == set()
    [fault] = [f for f in emu.running.admin.faults() if f["id"] == storm]
    assert fault["injected"] == 64
    assert report["sweep"]["requests"].get("reads:429", 0) >= 64
    check_sweep_exact(sweep(emu.running, tmp_path / "b"), fleet_snapshot)


def test_5xx_bursts_and_random_errors_are_retried(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """15 % of all requests answer 500 or 503, and a burst of 40 consecutive 503s hits the
    flux configuration lists. Retries absorb nearly all of it; a read whose every attempt
    (2 per call × 3 calls) met an error is the cluster's READ_ERROR naming ARM's status,
    never a wrong verdict, and the rerun judges it."""
    emu = emulator_factory(error_rate=0.15)
    emu.running.admin.add_fault(
        action="error", status=503, method="GET", pathRegex="/fluxConfigurations$", count=40
    )
    report = sweep(emu.running, tmp_path / "a")
    stats = emu.running.admin.stats()
    assert (
        stats["responses"]["byStatus"].get("500", 0) + stats["responses"]["byStatus"].get("503", 0)
        > 60
    )
    errored = check_sweep(report, fleet_snapshot, reason="HTTP 50")
    # only reads in flight while the burst lasted can have met it on every attempt (2 or 3
    # of 30 in practice): at most one per thread
    assert len(errored) <= int(QUICK["FLEET_CONCURRENCY"]), "retries absorbed too little"
    check_sweep_exact(sweep(calm(emu), tmp_path / "b"), fleet_snapshot)


def test_connection_resets_are_retried(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """10 % of connections are reset without an answer, and 30 extension-list requests in a
    row are: reads are tried again on new connections; one whose every attempt was reset is
    its cluster's READ_ERROR, and the rerun judges it."""
    emu = emulator_factory(reset_rate=0.1)
    emu.running.admin.add_fault(action="reset", method="GET", pathRegex="/extensions$", count=30)
    report = sweep(emu.running, tmp_path / "a")
    assert emu.running.admin.stats()["faultsInjected"]["byAction"]["reset"] > 40
    errored = check_sweep(report, fleet_snapshot)
    assert len(errored) <= int(QUICK["FLEET_CONCURRENCY"]), "retries absorbed too little"
    check_sweep_exact(sweep(calm(emu), tmp_path / "b"), fleet_snapshot)


def test_slow_answers_time_out_and_a_cluster_that_never_answers_is_a_read_error(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """With a 1 s client timeout, 5 % of requests stall 3 s (a timeout, then a retry), and
    every read of one cluster stalls: that cluster is READ_ERROR naming the timeout, every
    other cluster is judged, and the sweep does not wait on the stuck one for long."""
    emu = emulator_factory(slow_rate=0.05, slow_seconds=3.0)
    facts = facts_of(fleet_snapshot)
    stuck = sorted(cid for cid, kind in defects(fleet_snapshot).items() if kind == "branch_drift")[
        0
    ]
    emu.running.admin.add_fault(action="delay", delaySeconds=3, pathPrefix=facts[stuck].id)
    began = time.monotonic()
    report = sweep(
        emu.running,
        tmp_path / "a",
        FLEET_REQUEST_TIMEOUT=1,
        FLEET_READ_ATTEMPTS=2,
        FLEET_SDK_RETRIES=1,
    )
    took = time.monotonic() - began
    assert check_sweep(report, fleet_snapshot, damaged={stuck}) == {stuck}
    [verdict] = [c for c in report["clusters"] if c["id"].lower() == stuck]
    assert "timed out" in verdict["findings"][0]["message"].lower()
    assert took < 30, f"the stuck cluster held the sweep for {took:.0f}s"
    check_sweep_exact(sweep(calm(emu), tmp_path / "b"), fleet_snapshot)


class ExpiringCredential:
    """Tokens that the emulator refuses after ``lifetime`` seconds (their JWT ``exp``), while
    azure-core is told they last an hour: like a token revoked or cut short mid-sweep, it
    keeps being sent until ARM answers 401."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.issued = 0
        self._lock = threading.Lock()
        # fleet's own principal, the one the generated fleet records as its writer: short tokens
        # must not make fleet a stranger to what it wrote (FOREIGN_WRITER).
        self.principal = "fleet-emulator-principal"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            self.issued += 1
        claims = {"oid": self.principal, "exp": int(time.time() + self.lifetime)}

        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

        token = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"
        return AccessToken(token, int(time.time()) + 3600)


def test_a_token_that_expires_mid_sweep_is_refreshed(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """ARM answers 401 ExpiredAuthenticationToken with a challenge once a token's ``exp`` is
    past; azure-core drops its cached token, fleet tries the read once more with a fresh one,
    and the sweep carries on: no cluster is lost to the expiry."""
    emu = emulator_factory(latency_ms=25, latency_p99_ms=40)
    running = emu.running
    settings = Settings(
        arm_endpoint=running.endpoint,
        arm_ca_bundle=str(running.ca_bundle),
        auth="emulator",
        state_dir=tmp_path / "state",
        database_url=f"sqlite:///{tmp_path / 'fleet.db'}",
        concurrency=4,
        lro_poll_interval=0,
    )
    credential = ExpiringCredential(lifetime=1.0)
    with environment(settings, session=AzureSession(settings, credential=credential)) as env:
        outcome = run_sweep(env, load([POLICIES]))
    refused = running.admin.stats()["responses"]["byStatus"].get("401", 0)
    assert refused > 0, "the sweep ended before any token expired: the test proved nothing"
    assert credential.issued > refused
    check_sweep_exact(outcome.report(), fleet_snapshot)


def test_an_emulator_restart_mid_sweep_loses_nothing(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """The ARM endpoint goes away in the middle of a sweep and comes back on the same address
    with the same state: reads in the gap are retried on new connections; what could not be
    read says so; the next sweep is exact."""
    emu: Emulator = emulator_factory(latency_ms=40, latency_p99_ms=60)
    env = env_of(emu.running, tmp_path / "a", FLEET_CONCURRENCY=4)
    proc = cli_process(["sweep", "-p", str(POLICIES), "-o", "json"], env)
    deadline = time.monotonic() + 30
    while emu.running.admin.stats()["requests"]["total"] < 40:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    emu.restart()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert emu.running.admin.stats()["requests"]["total"] > 0  # the sweep went on after it
    report = json.loads(out)
    check_sweep(report, fleet_snapshot, damaged=None)
    check_sweep_exact(sweep(emu.running, tmp_path / "b"), fleet_snapshot)


#: Malformed answers and how a damaged cluster must be reported.
MALFORMED = {
    "truncated": "not valid JSON",
    "not_json": "not valid JSON",
    "missing_fields": "malformed ARM response",
    "nulls": "malformed ARM response",
    "unknown_enum": "judged: unknown values are notes",
    "wrong_types": "malformed ARM response",
}


@pytest.mark.parametrize("mode", [*MALFORMED, "huge"])
def test_malformed_answers_are_read_errors_of_their_clusters_only(
    mode: str, emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """Every read of three clusters' configurations (and, for the type and enum damage, of
    the clusters themselves) answers malformed JSON: those three are READ_ERROR with the
    reason, the sweep goes on and judges the rest exactly. Unknown enum values are not damage:
    the three are judged exactly and carry UNRECOGNISED_SHAPE notes. A huge answer (4 MiB of unknown
    fields) is valid and judged exactly."""
    emu = emulator_factory()
    kinds, facts = defects(fleet_snapshot), facts_of(fleet_snapshot)
    # clusters whose reads return resources to damage (extensions and flux configurations)
    victims = sorted(
        c for c, k in kinds.items() if k in ("compliant", "branch_drift", "extension_drift")
    )[:3]
    assert len(victims) == 3
    for cid in victims:
        emu.running.admin.add_fault(
            action="malformed",
            mode=mode,
            method="GET",
            pathPrefix=facts[cid].id + "/providers/",
            sizeBytes=4 << 20,
        )
        if mode in ("unknown_enum", "wrong_types"):
            emu.running.admin.add_fault(
                action="malformed", mode=mode, method="GET", pathRegex=f"{facts[cid].id}$"
            )
    report = sweep(emu.running, tmp_path / "a")
    if mode == "huge":
        check_sweep_exact(report, fleet_snapshot)
        assert emu.running.admin.stats()["faultsInjected"]["byAction"]["malformed"] >= 3
        return
    if mode == "unknown_enum":
        # Values fleet does not know are notes, not damage: every cluster gets its exact
        # verdict, and the victims say what was new (issue 13, item 5).
        check_sweep_exact(report, fleet_snapshot)
        for c in report["clusters"]:
            if c["id"].lower() in victims:
                notes = [f for f in c["findings"] if f["code"] == "UNRECOGNISED_SHAPE"]
                assert notes and all(f["severity"] == "info" for f in notes), c["findings"]
        return
    assert check_sweep(report, fleet_snapshot, damaged=set(victims)) == set(victims)
    for c in report["clusters"]:
        if c["id"].lower() in victims:
            assert MALFORMED[mode] in c["findings"][0]["message"], c["findings"][0]["message"]
            assert "Content:" not in c["findings"][0]["message"]  # bodies are never kept
    check_sweep_exact(sweep(calm(emu), tmp_path / "b"), fleet_snapshot)
