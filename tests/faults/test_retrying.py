"""fleet's retries around ARM calls, through the real SDK against the emulator's faults.

Two rules of ``fleet.azure.retrying``:

- a 429 storm longer than the attempt budget (2 SDK tries x ``FLEET_READ_ATTEMPTS``) costs no
  cluster its verdict: ARM only asked to come back later, so 429s do not use up attempts, for
  up to ``THROTTLE_PATIENCE`` seconds per call;
- a token refused with 401 (expired, revoked) is tried once more at once: azure-core has
  dropped it, and a fresh one may be accepted.
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

from fleet.apply import steps as remediate
from fleet.azure import apply, retrying
from fleet.azure.session import AzureSession
from fleet.core.errors import ArmCallFailed
from fleet.core.ids import child_id
from fleet.plan.actions import Action, ActionKind
from fleet.settings import Settings
from tests.faults.conftest import facts_of


def jwt(**claims: Any) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


class Tokens:
    """Hands out the tokens of ``expired`` first (their exp in the past), then fresh ones."""

    def __init__(self, expired: int) -> None:
        self.expired = expired
        self.issued = 0
        self.principal = "fleet-retry-test"
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            self.issued += 1
            stale = self.issued <= self.expired
        exp = int(time.time()) + (-60 if stale else 3600)
        return AccessToken(jwt(oid=self.principal, exp=exp), int(time.time()) + 3600)


def session_for(emu: Any, tmp_path: Path, credential: Any = None) -> AzureSession:
    settings = Settings(
        arm_endpoint=emu.endpoint,
        arm_ca_bundle=str(emu.ca_bundle),
        auth="emulator",
        state_dir=tmp_path,
        lro_poll_interval=0,
    )
    return AzureSession(settings, credential=credential)


@pytest.fixture
def cluster(fleet_snapshot: dict[str, Any]) -> Any:
    return next(c for c in facts_of(fleet_snapshot).values() if c.cluster_type == "managedClusters")


def read(session: AzureSession, cluster: Any) -> Any:
    rm = session.resources(cluster.subscription_id)
    return lambda: rm.resources.get_by_id(cluster.id, api_version="2024-05-01")


def test_429s_do_not_use_up_attempts(emulator_factory: Any, cluster: Any, tmp_path: Path) -> None:
    emu = emulator_factory().running
    session = session_for(emu, tmp_path)
    emu.admin.add_fault(action="error", status=429, retryAfter=0, pathPrefix=cluster.id, count=7)
    found = retrying.call(read(session, cluster), attempts=1, what="read")
    assert found.id.lower() == cluster.id.lower()
    assert emu.admin.stats()["responses"]["byStatus"]["429"] == 7


def test_patience_with_throttling_has_an_end(
    emulator_factory: Any, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator_factory().running
    session = session_for(emu, tmp_path)
    emu.admin.add_fault(action="error", status=429, retryAfter=0, pathPrefix=cluster.id)
    monkeypatch.setattr(retrying, "THROTTLE_PATIENCE", 0.5)
    began = time.monotonic()
    with pytest.raises(ArmCallFailed, match="HTTP 429"):
        retrying.call(read(session, cluster), attempts=2, what="read")
    assert time.monotonic() - began < 10
    # a cancelled job does not sit out a storm either
    with pytest.raises(ArmCallFailed):
        retrying.call(read(session, cluster), attempts=2, what="read", should_stop=lambda: True)


def test_a_refused_token_is_replaced_once(
    emulator_factory: Any, cluster: Any, tmp_path: Path
) -> None:
    emu = emulator_factory().running
    tokens = Tokens(expired=1)
    session = session_for(emu, tmp_path, tokens)
    found = retrying.call(read(session, cluster), attempts=1, what="read")
    assert found.id.lower() == cluster.id.lower()
    assert tokens.issued == 2
    assert emu.admin.stats()["responses"]["byStatus"]["401"] == 1


def test_a_token_refused_twice_is_final(
    emulator_factory: Any, cluster: Any, tmp_path: Path
) -> None:
    emu = emulator_factory().running
    session = session_for(emu, tmp_path, Tokens(expired=1000))
    with pytest.raises(ArmCallFailed, match="ExpiredAuthenticationToken") as caught:
        retrying.call(read(session, cluster), attempts=3, what="read")
    assert caught.value.failure.status == 401 and not caught.value.failure.retryable
    assert emu.admin.stats()["responses"]["byStatus"]["401"] == 2  # no loop


def test_a_write_whose_token_is_refused_is_sent_again_with_a_fresh_one(
    emulator_factory: Any, cluster: Any, tmp_path: Path
) -> None:
    emu = emulator_factory().running
    tokens = Tokens(expired=1)
    session = session_for(emu, tmp_path, tokens)
    rid = child_id(cluster.id, "fluxConfigurations", "retry-test")
    action = Action(
        kind=ActionKind.PUT_FLUX_CONFIG,
        cluster_id=cluster.id,
        resource_id=rid,
        method="PUT",
        body={
            "properties": {
                "namespace": "retry-test",
                "gitRepository": {"url": "https://example.com/x.git"},
            }
        },
    )
    edges = remediate.Edges(
        session=session,
        history=None,  # type: ignore[arg-type]
        catalogs=None,
        fingerprint_key=b"k",  # type: ignore[arg-type]
        principal="p",
    )
    started = remediate._start(edges, action, {})
    assert started.failed is None
    assert apply.finish(started, timeout=30).succeeded
    assert emu.admin.stats()["responses"]["byStatus"]["401"] == 1
