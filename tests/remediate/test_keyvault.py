"""Key Vault references end to end: resolved through the real SDK, rotations applied in waves.

The emulator serves a vault (``kv-platform``) with a git token; a policy references it with
``fromKeyVault``. A first job applies version 1 (fleet records its fingerprint and version id).
A new version in the vault (the admin API's rotation) makes the next sweep report
``SECRET_ROTATION_PENDING`` on every configuration that carries it, with both version ids and
no value; a remediation job re-PUTs exactly those configurations, wave by wave, and the sweep
after it is clean. Arc clusters offline during the rotation are left on the retry list (the
sweep still shows the pending rotation) and get it from ``fleet remediate --retry`` once back;
a write ARM accepted but holds for a cluster that is not connected is not sent again while ARM
still holds it, and is sent again once ARM gives up on it after 48 h of emulated time.
"""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fleet.core import redact
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.remediate import test_secrets
from tests.remediate.conftest import FAST, env_for, policy_dir, report, run

VAULT, SECRET = "kv-platform", "git-token"
V1_VALUE = "kvTOKEN-one-3c2b1a-PLANTED"
V2_VALUE = "kvTOKEN-two-6f5e4d-PLANTED"
V1 = "1" * 32
#: tests/remediate/test_secrets.py's policy, with the token in Key Vault, on the prod and edge
#: resource groups (Arc clusters among them), rolled out in two waves.
PRIVATE = (
    test_secrets.PRIVATE.replace(
        'resourceGroups: ["rg-prod-*"]', 'resourceGroups: ["rg-prod-*", "rg-edge-*"]'
    ).replace(
        "{fromEnv: FLEET_TEST_GIT_TOKEN}", f"{{fromKeyVault: {{vault: {VAULT}, name: {SECRET}}}}}"
    )
    + """\
  remediation:
    rollout:
      waves:
        - {name: canary, percent: 25}
        - {name: rest, percent: 100}
"""
)
HTTPS_KEY = "/properties/configurationProtectedSettings/httpsKey"


def with_vault(snapshot: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(snapshot)
    doc["vaults"] = [
        {
            "name": VAULT,
            "secrets": [{"name": SECRET, "versions": [{"version": V1, "value": V1_VALUE}]}],
        }
    ]
    return doc


@pytest.fixture
def vault_emu(snapshot: dict[str, Any]) -> Any:
    redact.clear()
    with running_emulator(with_vault(snapshot), **FAST) as emu:
        yield emu
    redact.clear()


def setup(emu: RunningEmulator, tmp: Path) -> tuple[list[str], dict[str, str]]:
    policies = policy_dir(tmp, only=["baseline.yaml"], extra={"private.yaml": PRIVATE})
    env = env_for(emu, tmp / "state", FLEET_KEYVAULT_URL=emu.keyvault_url)
    return ["-p", str(policies)], env


def remediate(
    p: list[str], env: dict[str, str], *more: str, exits: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    result = run(["remediate", *p, "--yes", "-o", "json", *more], env)
    assert result.exit_code in exits, result.stderr + result.stdout
    assert V1_VALUE not in result.stdout + result.stderr
    assert V2_VALUE not in result.stdout + result.stderr
    return report(result)


def sweep(p: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = run(["sweep", *p, "-o", "json"], env)
    assert result.exit_code == 0, result.stderr
    return report(result)


def rotations(swept: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """cluster name -> its SECRET_ROTATION_PENDING finding."""
    return {
        c["name"]: f
        for c in swept["clusters"]
        for f in c["findings"]
        if f["code"] == "SECRET_ROTATION_PENDING"
    }


def private_writes(job: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """cluster name -> its writes of private-apps."""
    out: dict[str, list[dict[str, Any]]] = {}
    for c in job["clusters"]:
        for w in c["writes"]:
            if w["resource"].endswith("/fluxConfigurations/private-apps"):
                out.setdefault(c["name"], []).append(w)
    return out


def applied_versions(state: Path) -> set[str]:
    with sqlite3.connect(state / "fleet.db") as db:
        rows = db.execute("select fingerprint from applied_fingerprints").fetchall()
    return {fp.partition("@")[2] for (fp,) in rows}


def arc(emu: RunningEmulator, name: str, status: str) -> None:
    """Set an Arc cluster's connectivity as ARM reports it."""
    [cluster] = [r for r in emu.admin.snapshot()["resources"] if r["name"] == name]
    cluster["properties"]["connectivityStatus"] = status
    emu.admin.put_resource(cluster)


def test_a_rotation_is_detected_and_applied_in_waves(
    vault_emu: RunningEmulator, tmp_path: Path
) -> None:
    emu = vault_emu
    p, env = setup(emu, tmp_path)
    first = remediate(p, env)
    written = private_writes(first)
    assert len(written) >= 8
    assert all(w["outcome"] == "succeeded" for ws in written.values() for w in ws)
    assert applied_versions(tmp_path / "state") == {V1}
    assert rotations(sweep(p, env)) == {}
    # The SDK ran Key Vault's challenge: a 401 first, then tokens for the vault's audience.
    log = emu.admin.vaults()["requests"]
    assert log[0]["status"] == 401 and log[0]["audience"] is None
    assert {r["audience"] for r in log[1:]} == {"https://vault.azure.net"}

    v2 = emu.admin.add_secret_version(VAULT, SECRET, V2_VALUE)
    pending = rotations(sweep(p, env))
    assert set(pending) == set(written)
    assert {(f["path"], f["desired"], f["actual"]) for f in pending.values()} == {
        (HTTPS_KEY, v2, V1)
    }
    plan = run(["plan", *p, "-o", "json"], env)
    assert plan.exit_code == 0, plan.stderr
    puts = [
        a
        for c in report(plan)["clusters"]
        for a in c["actions"]
        if a["resourceId"].endswith("/fluxConfigurations/private-apps")
    ]
    assert len(puts) == len(written)
    assert {r["code"] for a in puts for r in a["reasons"]} == {"SECRET_ROTATION_PENDING"}

    emu.admin.clear_requests()
    job = remediate(p, env)
    rotated = private_writes(job)
    assert set(rotated) == set(written)
    assert job["summary"]["fixed"] == len(written) and job["summary"]["failed"] == 0
    waves = {c["wave"] for c in job["clusters"] if c["name"] in rotated}
    assert waves == {"canary", "rest"}
    # only the configurations that carry the secret were written, once each
    assert {r["path"].rsplit("/", 1)[-1] for r in emu.admin.requests()} == {"private-apps"}
    assert len(emu.admin.requests()) == len(written)
    assert v2 in applied_versions(tmp_path / "state")
    after = sweep(p, env)
    assert rotations(after) == {}
    assert not [f for c in after["clusters"] for f in c["findings"] if f["path"] == HTTPS_KEY]
    db = b"".join(f.read_bytes() for f in (tmp_path / "state").glob("fleet.db*"))
    assert V1_VALUE.encode() not in db and V2_VALUE.encode() not in db


def test_offline_arc_clusters_get_the_rotation_when_they_are_back(
    vault_emu: RunningEmulator, tmp_path: Path
) -> None:
    emu = vault_emu
    p, env = setup(emu, tmp_path)
    written = private_writes(remediate(p, env))
    away = sorted(n for n in written if n.startswith("arc-"))[:2]
    assert len(away) == 2
    emu.admin.add_secret_version(VAULT, SECRET, V2_VALUE)
    for name in away:
        arc(emu, name, "Offline")
    job = remediate(p, env)
    by_name = {c["name"]: c for c in job["clusters"]}
    assert {by_name[n]["status"] for n in away} == {"retry"}
    assert {by_name[n]["category"] for n in away} == {"unreachable"}
    assert set(private_writes(job)) == set(written) - set(away)
    # the next sweep still shows the rotation pending on them: fleet's own record, a fact
    # whatever the connectivity, so it counts (CLUSTER_UNREACHABLE rides along)
    pending = rotations(sweep(p, env))
    assert set(pending) == set(away)
    assert {f["severity"] for f in pending.values()} == {"medium"}

    for name in away:
        arc(emu, name, "Connected")
    assert set(rotations(sweep(p, env))) == set(away)
    retry = remediate(["-p", p[1], "--retry", job["job"]["id"]], env)
    statuses = {c["name"]: c["status"] for c in retry["clusters"]}
    assert {n: statuses[n] for n in away} == dict.fromkeys(away, "fixed")
    assert rotations(sweep(p, env)) == {}


def test_a_pending_write_is_sent_again_after_azures_48_hours(
    vault_emu: RunningEmulator, tmp_path: Path
) -> None:
    emu = vault_emu
    p, env = setup(emu, tmp_path)
    written = private_writes(remediate(p, env))
    [name] = sorted(n for n in written if n.startswith("arc-"))[:1]
    v2 = emu.admin.add_secret_version(VAULT, SECRET, V2_VALUE)
    # ARM says Connecting: fleet writes, ARM accepts and holds the write for the cluster.
    arc(emu, name, "Connecting")
    job = remediate(p, env, "--operation-timeout", "5", exits=(0, 1))
    [held] = [c for c in job["clusters"] if c["name"] == name]
    assert held["status"] == "failed"
    assert [w["outcome"] for w in held["writes"]] == ["timeout"]
    assert name in rotations(sweep(p, env))

    # While ARM holds it, sending it again would only restart the wait: not sent.
    emu.admin.clear_requests()
    plan = report(run(["plan", *p, "-o", "json"], env))
    [cluster] = [c for c in plan["clusters"] if c["clusterName"] == name]
    assert cluster.get("actions", []) == []
    assert ("SECRET_ROTATION_PENDING", "in-progress") in {
        (s["code"], s["category"]) for s in cluster["skipped"]
    }
    remediate(p, env)
    assert [r for r in emu.admin.requests() if name in r["path"]] == []

    # After 48 h of ARM's (emulated) time the write has failed: fleet sends it again.
    emu.admin.advance_clock(48 * 3600 + 60)
    arc(emu, name, "Connected")
    failed = {c["name"]: {f["code"] for f in c["findings"]} for c in sweep(p, env)["clusters"]}[
        name
    ]
    assert failed >= {"FLUX_CONFIG_FAILED", "SECRET_ROTATION_PENDING"}
    again = remediate(p, env)
    [resent] = [c for c in again["clusters"] if c["name"] == name]
    assert resent["status"] == "fixed"
    assert [w["outcome"] for w in resent["writes"]] == ["succeeded"]
    assert rotations(sweep(p, env)) == {}
    assert v2 in applied_versions(tmp_path / "state")


def test_an_unreadable_reference_stops_the_job_before_any_write(
    vault_emu: RunningEmulator, tmp_path: Path
) -> None:
    """A principal without the vault's data-plane role, a secret that does not exist, and the
    emulator's fake token pointed at the public cloud's vaults: the job refuses to start and
    says why (never a value); a sweep reports no secret findings it cannot judge."""
    emu = vault_emu
    p, env = setup(emu, tmp_path)
    arm_only = [
        f"{rp}/*"
        for rp in (
            "Microsoft.Resources",
            "Microsoft.ContainerService",
            "Microsoft.Kubernetes",
            "Microsoft.KubernetesConfiguration",
            "Microsoft.ResourceGraph",
        )
    ]
    emu.admin.set_role("fleet-emulator-principal", arm_only)
    refused = run(["remediate", *p, "--yes"], env)
    assert refused.exit_code == 2
    said = " ".join(refused.stderr.split())
    assert "Key Vault secret git-token in vault kv-platform" in said
    assert "needs the role 'Key Vault Secrets User' on the vault" in said
    assert emu.admin.requests() == []  # nothing was written
    swept = sweep(p, env)
    assert not [f for c in swept["clusters"] for f in c["findings"] if f["path"] == HTTPS_KEY]
    emu.admin.clear_roles()

    missing = policy_dir(
        tmp_path / "missing",
        only=["baseline.yaml"],
        extra={"private.yaml": PRIVATE.replace(f"name: {SECRET}}}", "name: nope}")},
    )
    gone = run(["remediate", "-p", str(missing), "--yes"], env)
    assert gone.exit_code == 2
    assert "Key Vault secret nope does not exist in vault kv-platform" in " ".join(
        gone.stderr.split()
    )
    public = {k: v for k, v in env.items() if k != "FLEET_KEYVAULT_URL"}
    fake = run(["remediate", *p, "--yes"], public)
    assert fake.exit_code == 2
    assert "FLEET_AUTH=emulator is refused for https://kv-platform.vault.azure.net" in " ".join(
        fake.stderr.split()
    )
    assert emu.admin.requests() == []
