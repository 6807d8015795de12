"""Throttling like ARM (token buckets) and Resource Graph (queries per window)."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models
from azure.mgmt.resourcegraph.models import QueryRequest

from fleet.emulator.throttle import ArmThrottle, GraphQuota, TokenBucket

from .conftest import (
    AKS,
    GIT_URL,
    RG_PROD,
    SUB1,
    EmulatorFactory,
    FakeCredential,
    Recorder,
    graph_client,
    jwt,
    kc_client,
    sub_client,
)

ARGS = (RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux")
READS = "x-ms-ratelimit-remaining-subscription-reads"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_refill() -> None:
    bucket = TokenBucket(capacity=3, rate=2.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [(True, 2, 0), (True, 1, 0), (True, 0, 0)]
    assert bucket.take(0.0) == (False, 0, 1)
    assert bucket.take(0.25) == (False, 0, 1)  # half a token
    assert bucket.take(0.5)[0] is True  # one token after 0.5 s at 2/s
    assert bucket.take(100.0) == (True, 2, 0)  # never above capacity


def test_arm_limits_scale_and_keys() -> None:
    clock = FakeClock()
    arm = ArmThrottle(clock=clock)
    assert (arm.limits("reads"), arm.limits("writes"), arm.limits("deletes")) == (
        (250, 25),
        (200, 10),
        (200, 10),
    )
    small = ArmThrottle(scale=0.1, clock=clock)
    assert (small.limits("reads"), small.limits("writes")) == ((25, 2.5), (20, 1.0))
    for _ in range(25):
        assert small.check(SUB1, "p1", "reads").allowed
    denied = small.check(SUB1, "p1", "reads")
    assert not denied.allowed and denied.retry_after == 1
    assert denied.headers == ((READS, "0"),)
    # Separate buckets per principal, per subscription and per operation class.
    assert small.check(SUB1, "p2", "reads").allowed
    assert small.check("other-sub", "p1", "reads").allowed
    assert small.check(SUB1, "p1", "writes").headers == (
        ("x-ms-ratelimit-remaining-subscription-writes", "19"),
    )
    assert small.check(None, "p1", "reads").headers == (
        ("x-ms-ratelimit-remaining-tenant-reads", "24"),
    )
    clock.now += 0.41  # 2.5/s: one token
    assert small.check(SUB1, "p1", "reads").allowed
    assert not small.check(SUB1, "p1", "reads").allowed
    off = ArmThrottle(mode="off")
    assert all(off.check(SUB1, "p", "writes").allowed for _ in range(1000))
    assert off.check(SUB1, "p", "writes").headers == ()
    with pytest.raises(ValueError):
        ArmThrottle(mode="fast")  # type: ignore[arg-type]


def test_graph_quota_window() -> None:
    clock = FakeClock()
    quota = GraphQuota(limit=3, window=5.0, clock=clock)
    first = quota.check("p")
    assert first.headers == (
        ("x-ms-user-quota-remaining", "2"),
        ("x-ms-user-quota-resets-after", "00:00:05"),
    )
    quota.check("p")
    quota.check("p")
    clock.now += 2
    denied = quota.check("p")
    assert not denied.allowed and denied.retry_after == 3
    assert quota.check("q").allowed  # per principal
    clock.now += 3
    assert quota.check("p").allowed


def test_reads_burst_then_refill_through_the_sdk(start_emulator: EmulatorFactory) -> None:
    with start_emulator(throttle_scale=0.1) as emu:
        rec = Recorder()
        kc = kc_client(emu, retry_total=0, raw_response_hook=rec)
        successes = 0
        while True:
            try:
                kc.extensions.get(*ARGS)
            except HttpResponseError as exc:
                throttled = exc
                break
            successes += 1
            assert successes < 40
        # The burst of 25, plus whatever refilled at 2.5/s while it was spent.
        assert 25 <= successes <= 27
        remaining = [int(r.headers[READS]) for r in rec.responses[:successes]]
        assert remaining[0] == 24 and remaining[-1] == 0
        assert remaining == sorted(remaining, reverse=True)
        assert throttled.status_code == 429
        assert throttled.error is not None and throttled.error.code == "TooManyRequests"
        assert throttled.response.headers["Retry-After"] == "1"
        assert rec.responses[-1].headers[READS] == "0"
        # Writes have their own bucket.
        assert kc.extensions.begin_update(*ARGS, models.PatchExtension(release_train="Stable"))
        time.sleep(0.45)  # 2.5 tokens/s: one more read
        assert kc.extensions.get(*ARGS).name == "flux"
        # Another principal has its own bucket.
        other = kc_client(emu, FakeCredential(jwt(oid="other")), retry_total=0)
        assert other.extensions.get(*ARGS).name == "flux"
        stats = emu.admin.stats()
        assert stats["throttled"]["arm"] == 1
        assert stats["responses"]["byStatus"]["429"] == 1


def test_the_sdk_retries_429_after_retry_after(start_emulator: EmulatorFactory) -> None:
    with start_emulator(throttle_scale=0.1) as emu:
        kc = kc_client(emu)  # default retry policy
        started = time.monotonic()
        for _ in range(30):  # more than the burst of 25 can serve without waiting
            assert kc.extensions.get(*ARGS).name == "flux"
        assert time.monotonic() - started >= 0.9  # it waited Retry-After: 1 at least once
        assert emu.admin.stats()["throttled"]["arm"] >= 1


def test_polls_count_as_reads_and_writes_have_headers(start_emulator: EmulatorFactory) -> None:
    # Scale 0.04: reads 10 burst at 1/s, so no token comes back during these few requests.
    with start_emulator(lro_polls=3, throttle_scale=0.04) as emu:
        rec = Recorder()
        kc = kc_client(emu, raw_response_hook=rec)
        kc.flux_configurations.begin_create_or_update(
            *ARGS[:4],
            "apps",
            models.FluxConfiguration(
                namespace="apps", git_repository=models.GitRepositoryDefinition(url=GIT_URL)
            ),
            polling_interval=0,
        ).result()
        put, *rest = rec.responses
        assert put.headers["x-ms-ratelimit-remaining-subscription-writes"] == "7"
        assert [int(r.headers[READS]) for r in rest] == [9, 8, 7, 6, 5]  # 4 polls + GET
        rec.clear()
        kc.flux_configurations.begin_delete(*ARGS[:4], "apps", polling=False)
        assert rec.responses[0].headers["x-ms-ratelimit-remaining-subscription-deletes"] == "7"
        tenant = Recorder()
        list(sub_client(emu, raw_response_hook=tenant).subscriptions.list())
        assert tenant.responses[0].headers["x-ms-ratelimit-remaining-tenant-reads"] == "9"


def test_throttle_off_sends_no_bucket_headers(start_emulator: EmulatorFactory) -> None:
    with start_emulator(throttle="off", throttle_scale=0.01) as emu:
        rec = Recorder()
        kc = kc_client(emu, retry_total=0, raw_response_hook=rec)
        for _ in range(30):
            kc.extensions.get(*ARGS)
        assert all(READS not in r.headers for r in rec.responses)


def test_resource_graph_quota_through_the_sdk(start_emulator: EmulatorFactory) -> None:
    with start_emulator(graph_quota=3, graph_window_seconds=2.0) as emu:
        rec = Recorder()
        graph = graph_client(emu, retry_total=0, raw_response_hook=rec)
        query = QueryRequest(subscriptions=[SUB1], query="resources | project id")
        for _ in range(3):
            graph.resources(query)
        assert [r.headers["x-ms-user-quota-remaining"] for r in rec.responses] == ["2", "1", "0"]
        assert rec.responses[0].headers["x-ms-user-quota-resets-after"] == "00:00:02"
        with pytest.raises(HttpResponseError) as throttled:
            graph.resources(query)
        assert throttled.value.status_code == 429
        assert throttled.value.error is not None and throttled.value.error.code == "RateLimiting"
        assert throttled.value.response.headers["Retry-After"] in ("1", "2")
        # The SDK's default retry waits Retry-After and gets through.
        assert graph_client(emu).resources(query).total_records == 17
        assert emu.admin.stats()["throttled"]["graph"] >= 2
