"""Faults on demand: latency distribution, random 500/503, resets, stalls, scripted faults."""

from __future__ import annotations

import http.client
import random
import ssl
import statistics
import time
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator.faults import FaultSpecError, Latency, parse_fault
from fleet.emulator.testing import AdminError, RunningEmulator

from .conftest import (
    AKS,
    ARC,
    RG_EDGE,
    RG_PROD,
    EmulatorFactory,
    child_path,
    cluster_id,
    kc_client,
)

ARGS = (RG_PROD, AKS, "managedClusters", "aks-prod-00001")
EXT = child_path("aks-prod-00001", "extensions", "flux")


def _raw_gets(emu: RunningEmulator, path: str, n: int) -> list[int]:
    port = int(emu.endpoint.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(emu.ca_bundle))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    statuses = []
    for _ in range(n):
        conn.request("GET", f"{path}?api-version=2023-05-01", headers={"Authorization": "Bearer t"})
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)
    conn.close()
    return statuses


def test_latency_is_log_normal_with_the_given_median_and_p99() -> None:
    latency = Latency(40.0, 200.0, random.Random(7))
    samples = sorted(latency.sample() * 1000 for _ in range(40_000))
    median = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99)]
    assert median == pytest.approx(40.0, rel=0.05)
    assert p99 == pytest.approx(200.0, rel=0.1)
    assert samples[0] > 0 and samples[-1] > p99  # a distribution, not a constant
    assert Latency(0.0, None, random.Random()).sample() == 0.0
    assert Latency(10.0, None, random.Random()).p99_ms == 40.0
    with pytest.raises(ValueError):
        Latency(50.0, 10.0, random.Random())


def test_injected_latency_end_to_end(start_emulator: EmulatorFactory) -> None:
    with start_emulator(latency_ms=30, latency_p99_ms=90, seed=3, throttle="off") as emu:
        kc = kc_client(emu)
        kc.extensions.get(*ARGS, "flux")  # connect first
        durations = []
        for _ in range(30):
            started = time.perf_counter()
            kc.extensions.get(*ARGS, "flux")
            durations.append((time.perf_counter() - started) * 1000)
    assert 20 <= statistics.median(durations) <= 120  # generous: a loaded CI adds time
    assert max(durations) - min(durations) > 10


def test_random_errors_at_the_configured_rate(start_emulator: EmulatorFactory) -> None:
    with start_emulator(error_rate=0.3, seed=11, throttle="off") as emu:
        statuses = _raw_gets(emu, EXT, 400)
        stats = emu.admin.stats()
    errors = [s for s in statuses if s != 200]
    assert set(errors) == {500, 503}
    assert 0.22 <= len(errors) / len(statuses) <= 0.38
    assert stats["faultsInjected"]["byAction"]["error"] == len(errors)


def test_the_sdk_rides_over_random_errors(start_emulator: EmulatorFactory) -> None:
    with start_emulator(error_rate=0.3, seed=5) as emu:
        kc = kc_client(emu, retry_backoff_factor=0.01)
        for _ in range(20):
            assert kc.extensions.get(*ARGS, "flux").name == "flux"
        assert emu.admin.stats()["faultsInjected"]["total"] > 0


def test_connection_resets(emulator: RunningEmulator) -> None:
    emulator.admin.add_fault(action="reset", pathPrefix=EXT, count=1)
    strict = kc_client(emulator, retry_total=0)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        strict.extensions.get(*ARGS, "flux")
    emulator.admin.add_fault(action="reset", pathPrefix=EXT, count=1)
    patient = kc_client(emulator, retry_backoff_factor=0.01)
    assert patient.extensions.get(*ARGS, "flux").name == "flux"
    stats = emulator.admin.stats()
    assert stats["faultsInjected"]["byAction"]["reset"] == 2
    assert stats["responses"]["byStatus"]["0"] == 2  # 0: no response at all


def test_random_resets(start_emulator: EmulatorFactory) -> None:
    with start_emulator(reset_rate=0.5, seed=2) as emu:
        kc = kc_client(emu, retry_backoff_factor=0.01, retry_total=20)
        for _ in range(10):
            assert kc.extensions.get(*ARGS, "flux").name == "flux"
        assert emu.admin.stats()["faultsInjected"]["byAction"]["reset"] > 0


def test_slow_responses(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    kc.extensions.get(*ARGS, "flux")
    emulator.admin.add_fault(
        action="delay", delaySeconds=0.4, method="GET", pathPrefix=EXT, count=1
    )
    started = time.perf_counter()
    kc.extensions.get(*ARGS, "flux")
    assert time.perf_counter() - started >= 0.4
    started = time.perf_counter()
    kc.extensions.get(*ARGS, "flux")
    assert time.perf_counter() - started < 0.3  # one-shot


def test_scripted_errors_n_shot_and_unlimited(emulator: RunningEmulator) -> None:
    fault_id = emulator.admin.add_fault(
        action="error", status=503, method="GET", pathPrefix=EXT.lower(), count=2, retryAfter=0
    )
    kc = kc_client(emulator, retry_backoff_factor=0.01)
    assert kc.extensions.get(*ARGS, "flux").name == "flux"  # the SDK retried twice
    [fault] = [f for f in emulator.admin.faults() if f["id"] == fault_id]
    assert (fault["injected"], fault["count"]) == (2, 2)
    emulator.admin.add_fault(
        action="error",
        status=409,
        code="Conflict",
        message="busy",
        resourceType="Microsoft.KubernetesConfiguration/fluxConfigurations",
    )
    strict = kc_client(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        strict.flux_configurations.get(*ARGS, "cluster-config")
    assert caught.value.status_code == 409
    assert caught.value.error is not None and (
        caught.value.error.code,
        caught.value.error.message,
    ) == ("Conflict", "busy")
    with pytest.raises(HttpResponseError):
        strict.flux_configurations.get(*ARGS, "cluster-config")  # unlimited
    assert strict.extensions.get(*ARGS, "flux")  # other types are not affected
    emulator.admin.add_fault(
        action="error", status=500, pathRegex=r"/extensions/flux$", method=["PUT", "PATCH"]
    )
    assert strict.extensions.get(*ARGS, "flux")  # GET is not matched
    with pytest.raises(HttpResponseError) as put_failed:
        strict.extensions.begin_update(
            *ARGS, "flux", models.PatchExtension(release_train="Preview")
        )
    assert put_failed.value.status_code == 500
    emulator.admin.clear_faults()
    assert emulator.admin.faults() == []
    assert strict.flux_configurations.get(*ARGS, "cluster-config")


def test_snapshot_faults_are_installed_at_start(
    start_emulator: EmulatorFactory, fleet: dict[str, Any]
) -> None:
    # The generator's read_error fault: every GET below one cluster's KubernetesConfiguration.
    target = cluster_id("arc-edge-00001", rg=RG_EDGE, arc=True)
    fleet["emulator"] = {
        "faults": [
            {
                "id": "read-error-arc-edge-00001",
                "action": "error",
                "method": "GET",
                "pathPrefix": f"{target}/providers/Microsoft.KubernetesConfiguration",
                "status": 500,
                "code": "InternalServerError",
                "message": "injected",
                "count": None,
            }
        ]
    }
    with start_emulator(fleet) as emu:
        kc = kc_client(emu, retry_total=0)
        with pytest.raises(HttpResponseError) as caught:
            list(kc.extensions.list(RG_EDGE, ARC, "connectedClusters", "arc-edge-00001"))
        assert caught.value.status_code == 500
        assert list(kc.extensions.list(RG_EDGE, ARC, "connectedClusters", "arc-v1-00004")) == []
        assert emu.admin.faults()[0]["id"] == "read-error-arc-edge-00001"


def test_random_lro_failures(start_emulator: EmulatorFactory) -> None:
    with start_emulator(lro_fail_rate=1.0) as emu:
        kc = kc_client(emu)
        with pytest.raises(HttpResponseError):
            kc.extensions.begin_create(
                RG_PROD,
                AKS,
                "managedClusters",
                "aks-prod-00002",
                "flux",
                models.Extension(extension_type="microsoft.flux"),
                polling_interval=0,
            ).result()
        assert emu.admin.stats()["lros"]["failed"] == 1


def test_fault_specs_are_validated(emulator: RunningEmulator) -> None:
    with pytest.raises(FaultSpecError, match="action: must be one of"):
        parse_fault({"action": "melt"})
    with pytest.raises(FaultSpecError, match="unknown key"):
        parse_fault({"action": "error", "statusCode": 500})
    with pytest.raises(FaultSpecError, match="count"):
        parse_fault({"action": "error", "count": 0})
    with pytest.raises(FaultSpecError, match="pathRegex"):
        parse_fault({"action": "error", "pathRegex": "("})
    with pytest.raises(FaultSpecError, match="delaySeconds"):
        parse_fault({"action": "delay"})
    assert parse_fault({"action": "error", "status": 429}).code == "TooManyRequests"
    with pytest.raises(AdminError) as caught:
        emulator.admin.add_fault(action="error", status=200)
    assert caught.value.status == 400


def test_request_log_has_writes_only_with_digests(emulator: RunningEmulator) -> None:
    kc = kc_client(emulator)
    kc.extensions.get(*ARGS, "flux")
    kc.extensions.begin_update(
        *ARGS,
        "flux",
        models.PatchExtension(configuration_protected_settings={"k": "hunter2"}),
        polling_interval=0,
    ).result()
    [entry] = emulator.admin.requests()
    assert (entry["method"], entry["status"], entry["path"]) == ("PATCH", 202, EXT)
    assert entry["resourceType"] == "Microsoft.KubernetesConfiguration/extensions"
    assert len(entry["bodySha256"]) == 64 and entry["bodyBytes"] > 0
    assert "hunter2" not in str(entry)
