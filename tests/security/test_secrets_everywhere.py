"""Planted secrets appear nowhere: not in any output, log, report, database, Redis or the
emulator's state — on the local engine and through real Celery workers.

A test policy references seven secret values, by environment variable, by file and in Azure
Key Vault: a git token and an SSH key as a flux configuration's
``configurationProtectedSettings``, an Azure Blob source's ``accountKey`` and another's
``sasToken``, an extension protected setting, and another configuration's git token read from
the emulator's Key Vault through the real SDK, in two versions (the second one a rotation,
which a second job applies). Every fleet command that touches them runs (sweep, plan,
remediate with debug logs, every report format, ``jobs show/audit``, ``--engine celery`` for a
sweep and a remediation), and afterwards every byte fleet produced or stored is searched for
each value — raw, JSON-escaped, URL-encoded, HTML-escaped and base64-encoded at every
alignment: stdout and stderr, files written with ``--out``, the SQLite database and its WAL,
every Redis key's value, the worker logs, the emulator's request log and state dump, and the
emulated vaults' own dump and request log.

The values must have been used, or the test proves nothing: the emulator's state shows the
protected keys (with the blanked values ARM keeps), the history holds their fingerprints, and
the sweep after the job finds no drift on them.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from fleet.core import redact
from fleet.emulator.testing import RunningEmulator
from tests.conftest import require
from tests.distributed.conftest import RedisServer, Workers, free_port
from tests.faults.conftest import cli, env_of
from tests.remediate.conftest import policy_dir

GIT_TOKEN = "gitTOKEN-7f3e9a1c5b2d-PLANTED"
SSH_KEY = "sshKEY-0a9b8c7d6e5f4a3b-PLANTED"
ACCOUNT_KEY = "acctKEY+9Z8Y7X6W5V4U3T2S1R/PLANTED=="
SAS_TOKEN = "sv=2026-01-01&sig=PLANTEDsasSIG%2Bq1w2e3r4&se=2027"
EXT_SECRET = "extSECRET-4d5e6f7a8b9c-PLANTED"
KV_TOKEN = "kvTOKEN-8e7f6a5b4c3d-PLANTED"
KV_ROTATED = "kvROTATED-2b3c4d5e6f7a-PLANTED"
SECRETS = {
    "git token": GIT_TOKEN,
    "ssh key": SSH_KEY,
    "account key": ACCOUNT_KEY,
    "sas token": SAS_TOKEN,
    "extension secret": EXT_SECRET,
    "key vault token": KV_TOKEN,
    "rotated key vault token": KV_ROTATED,
}
VAULT, KV_SECRET = "kv-fleet", "private-git-token"

PRIVATE = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: private-sources
spec:
  mode: enforce
  priority: 40
  targets:
    resourceGroups: ["rg-prod-*", "rg-stg-*"]
  fluxConfigurations:
    - name: private-git
      namespace: private-git
      gitRepository:
        url: https://github.com/fleet-examples/private-apps
        repositoryRef: {branch: main}
        httpsUser: git
      kustomizations:
        apps: {path: ./apps, prune: true}
      configurationProtectedSettings:
        httpsKey: {fromEnv: FLEET_TEST_GIT_TOKEN}
        sshPrivateKey: {fromFile: secrets/ssh.key}
    - name: blob-by-key
      namespace: blob-by-key
      azureBlob:
        url: https://fleetexamples.blob.core.windows.net
        containerName: manifests
        accountKey: {fromFile: secrets/account.key}
      kustomizations:
        apps: {path: ./apps, prune: true}
    - name: blob-by-sas
      namespace: blob-by-sas
      azureBlob:
        url: https://fleetexamples.blob.core.windows.net
        containerName: manifests
        sasToken: {fromEnv: FLEET_TEST_SAS}
      kustomizations:
        apps: {path: ./apps, prune: true}
    - name: kv-git
      namespace: kv-git
      gitRepository:
        url: https://github.com/fleet-examples/private-apps
        repositoryRef: {branch: main}
        httpsUser: git
      kustomizations:
        apps: {path: ./apps, prune: true}
      configurationProtectedSettings:
        httpsKey: {fromKeyVault: {vault: kv-fleet, name: private-git-token}}
"""

FORMATS = ("json", "csv", "md", "html", "policyreport", "junit", "prometheus")


def with_extension_secret(text: str) -> str:
    """baseline.yaml with an extension protected setting (every extension PUT carries it)."""
    anchor = '      multiTenancy.enforce: "true"\n'
    assert anchor in text
    return text.replace(
        anchor,
        anchor + "    configurationProtectedSettings:\n"
        "      telemetry.token: {fromEnv: FLEET_TEST_EXT_SECRET}\n",
        1,
    )


def needles(value: str) -> dict[str, bytes]:
    """Every form in which a value could leak."""
    raw = value.encode()
    out = {
        "raw": raw,
        "json": json.dumps(value)[1:-1].encode(),
        "url": urllib.parse.quote(value, safe="").encode(),
        "url+": urllib.parse.quote_plus(value).encode(),
        "html": html.escape(value).encode(),
    }
    for a in range(3):  # base64 of the value at each alignment inside a longer blob
        for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * a + raw)
            first = (a + 2) // 3  # the first 3-byte group that lies wholly inside the value
            whole = (a + len(raw) - 3 * first) // 3
            out[f"{name}@{a}"] = encoded[4 * first : 4 * (first + whole)]
    return out


class Haystack:
    """Everything fleet produced or stored, by where it came from."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def add(self, where: str, data: str | bytes) -> None:
        self.items[where] = data if isinstance(data, bytes) else data.encode("utf-8", "replace")

    def add_result(self, where: str, result: Any) -> None:
        self.add(f"{where}: stdout", result.stdout)
        self.add(f"{where}: stderr", result.stderr)

    def add_tree(self, where: str, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "secrets" not in path.parts:
                self.add(f"{where}: {path.relative_to(root)}", path.read_bytes())

    def add_emulator(self, emu: RunningEmulator) -> None:
        self.add("emulator request log", json.dumps(emu.admin.requests()))
        self.add("emulator state", json.dumps(emu.admin.snapshot()))
        self.add("emulator stats", json.dumps(emu.admin.stats()))
        self.add("emulator vaults and their request log", json.dumps(emu.admin.vaults()))

    def add_redis(self, url: str) -> int:
        client = redis.Redis.from_url(url)
        count = 0
        for key in client.scan_iter(count=1000):
            found = client.type(key)
            kind = found.decode() if isinstance(found, bytes) else str(found)
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(key)
            else:
                value = client.dump(key)
            self.add(f"redis {key!r}", repr((key, value)).encode())
            count += 1
        return count

    def leaks(self) -> list[tuple[str, str, str]]:
        found = []
        for secret_name, value in SECRETS.items():
            forms = needles(value)
            for where, data in self.items.items():
                for form, needle in forms.items():
                    if needle and needle in data:
                        found.append((secret_name, form, where))
        return found


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    redact.clear()
    policies = policy_dir(
        tmp_path,
        {"baseline.yaml": with_extension_secret},
        extra={"private.yaml": PRIVATE},
        only=["baseline.yaml", "cluster-config.yaml"],
    )
    secrets_dir = policies / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "ssh.key").write_text(SSH_KEY + "\n")
    (secrets_dir / "account.key").write_text(ACCOUNT_KEY + "\n")
    env = {
        "FLEET_TEST_GIT_TOKEN": GIT_TOKEN,
        "FLEET_TEST_SAS": SAS_TOKEN,
        "FLEET_TEST_EXT_SECRET": EXT_SECRET,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield {"policies": policies, "env": env}
    redact.clear()


def prove_the_secrets_were_used(
    emu: RunningEmulator, state_env: dict[str, str], after: dict[str, Any]
) -> None:
    resources = emu.admin.snapshot()["resources"]
    git = [r for r in resources if r["id"].endswith("/fluxConfigurations/private-git")]
    by_key = [r for r in resources if r["id"].endswith("/fluxConfigurations/blob-by-key")]
    by_sas = [r for r in resources if r["id"].endswith("/fluxConfigurations/blob-by-sas")]
    kv_git = [r for r in resources if r["id"].endswith("/fluxConfigurations/kv-git")]
    assert git and by_key and by_sas and kv_git
    assert all(
        r["properties"]["configurationProtectedSettings"] == {"httpsKey": ""} for r in kv_git
    )
    # the vault was read through the SDK's challenge, with tokens for the vault's audience
    reads = emu.admin.vaults()["requests"]
    assert {r["status"] for r in reads} == {200, 401}
    assert {r["audience"] for r in reads if r["status"] == 200} == {"https://vault.azure.net"}
    assert all(
        r["properties"]["configurationProtectedSettings"] == {"httpsKey": "", "sshPrivateKey": ""}
        for r in git
    )
    assert all(r["properties"]["azureBlob"]["accountKey"] == "" for r in by_key)
    assert all(r["properties"]["azureBlob"]["sasToken"] == "" for r in by_sas)
    extensions = [
        r
        for r in resources
        if r["type"].endswith("/extensions")
        and (r["properties"].get("configurationProtectedSettings") or {})
    ]
    assert extensions and all(
        r["properties"]["configurationProtectedSettings"] == {"telemetry.token": ""}
        for r in extensions
    )
    # the applied fingerprints match the references: no protected setting reads as drift,
    # and the written configurations that carry them show no drift at all
    findings = [f for c in after["clusters"] for f in c["findings"]]
    assert [f for f in findings if "protected setting" in f["message"]] == []
    private = ("/private-git", "/blob-by-key", "/blob-by-sas", "/kv-git")
    assert [
        f for f in findings if f["resource"].endswith(private) and f["code"] == "FLUX_CONFIG_DRIFT"
    ] == []


def test_secrets_never_leave_the_write_on_the_local_engine(
    planted: dict[str, Any], emulator_factory: Any, tmp_path: Path
) -> None:
    emu = emulator_factory().running
    emu.admin.add_secret_version(VAULT, KV_SECRET, KV_TOKEN)
    state = tmp_path / "state"
    out = tmp_path / "out"
    env = env_of(emu, state, FLEET_KEYVAULT_URL=emu.keyvault_url)
    policies = str(planted["policies"])
    hay = Haystack()

    for args in (
        ["sweep", "-p", policies, "-o", "json", "-vv"],
        ["sweep", "-p", policies, "-vv"],
        ["plan", "-p", policies, "-o", "json", "-vv", "--out", str(out / "plan.json")],
        ["plan", "-p", policies, "-vv"],
        ["remediate", "-p", policies, "--dry-run", "-o", "json", "-vv"],
    ):
        result = cli(args, env)
        assert result.exit_code == 0, result.stderr
        hay.add_result(" ".join(args[:2]), result)

    job = cli(["remediate", "-p", policies, "--yes", "-o", "json", "-vv"], env)
    assert job.exit_code == 0, job.stderr
    assert " INFO fleet.jobs.local" in job.stderr  # the logs really ran (-vv: DEBUG on)
    hay.add_result("remediate -o json -vv", job)
    job_id = json.loads(job.stdout)["job"]["id"]
    summary = json.loads(job.stdout)["summary"]
    assert summary["fixed"] > 5 and summary["failed"] == 0
    table = cli(["remediate", "-p", policies, "--yes", "-vv", "--out", str(out / "job.txt")], env)
    assert table.exit_code == 0, table.stderr
    hay.add_result("remediate table -vv", table)

    # A rotation in the vault: reported pending, applied by the next job, then clean.
    emu.admin.add_secret_version(VAULT, KV_SECRET, KV_ROTATED)
    pending = cli(["sweep", "-p", policies, "-o", "json", "-vv"], env)
    assert pending.exit_code == 0, pending.stderr
    hay.add_result("sweep with a pending rotation", pending)
    codes = {f["code"] for c in json.loads(pending.stdout)["clusters"] for f in c["findings"]}
    assert "SECRET_ROTATION_PENDING" in codes
    rotation = cli(["remediate", "-p", policies, "--yes", "-o", "json", "-vv"], env)
    assert rotation.exit_code == 0, rotation.stderr
    hay.add_result("remediate the rotation -vv", rotation)
    assert json.loads(rotation.stdout)["summary"]["fixed"] > 0

    after = cli(["sweep", "-p", policies, "-o", "json", "-vv"], env)
    assert after.exit_code == 0, after.stderr
    hay.add_result("sweep after", after)
    for fmt in FORMATS:
        shown = cli(["report", "latest", "--format", fmt], env)
        assert shown.exit_code == 0, (fmt, shown.stderr)
        hay.add_result(f"report {fmt}", shown)
        written = cli(["report", "latest", "--format", fmt, "--out", str(out / f"r.{fmt}")], env)
        assert written.exit_code == 0, (fmt, written.stderr)
    for args in (
        ["jobs", "show", job_id, "-o", "json"],
        ["jobs", "show", job_id],
        ["jobs", "audit", "-o", "json"],
        ["jobs", "audit"],
        ["jobs", "list"],
        ["jobs", "list", "-o", "json"],
    ):
        result = cli([*args, "-vv"], env)
        assert result.exit_code == 0, (args, result.stderr)
        hay.add_result(" ".join(args), result)

    prove_the_secrets_were_used(emu, env, json.loads(after.stdout))
    hay.add_tree("state dir", state)
    hay.add_tree("--out files", out)
    hay.add_emulator(emu)
    assert any("fleet.db" in w for w in hay.items)
    assert hay.leaks() == []


def test_secrets_never_leave_the_write_through_celery_workers(
    planted: dict[str, Any], emulator_factory: Any, tmp_path: Path
) -> None:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = RedisServer(free_port(), tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    emu = emulator_factory().running
    emu.admin.add_secret_version(VAULT, KV_SECRET, KV_TOKEN)
    state = tmp_path / "state"
    env = env_of(
        emu,
        state,
        FLEET_KEYVAULT_URL=emu.keyvault_url,
        FLEET_BROKER_URL=server.url,
        FLEET_REDIS_URL=server.url,
        FLEET_VISIBILITY_TIMEOUT=30,
        FLEET_BATCH_SIZE=5,
        FLEET_JSON_LOGS="true",
    )
    worker_env = {**env, **planted["env"]}
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    workers = Workers(worker_env, tmp_path)
    hay = Haystack()
    policies = str(planted["policies"])
    try:
        for log in logs:
            workers.start(log.stem)  # its log is tmp_path / f"{name}.log"
        swept = cli(["sweep", "-p", policies, "--engine", "celery", "-o", "json", "-vv"], env)
        assert swept.exit_code == 0, swept.stderr
        hay.add_result("sweep --engine celery", swept)
        job = cli(
            ["remediate", "-p", policies, "--engine", "celery", "--yes", "-o", "json", "-vv"], env
        )
        assert job.exit_code == 0, job.stderr + job.stdout
        hay.add_result("remediate --engine celery", job)
        report = json.loads(job.stdout)
        assert report["summary"]["fixed"] > 5 and report["summary"]["failed"] == 0
        after = cli(["sweep", "-p", policies, "--engine", "celery", "-o", "json"], env)
        assert after.exit_code == 0, after.stderr
        hay.add_result("sweep after --engine celery", after)
        shown = cli(["jobs", "show", report["job"]["id"], "-o", "json"], env)
        hay.add_result("jobs show celery job", shown)
        assert hay.add_redis(server.url) > 5
    finally:
        workers.stop_all()
        server.stop()
    prove_the_secrets_were_used(emu, env, json.loads(after.stdout))
    for log in logs:
        text = log.read_bytes()
        assert b"fleet.remediate" in text or b"fleet.sweep" in text
        hay.add(f"worker log {log.name}", text)
    assert all(b'"level": "info"' in hay.items[f"worker log {log.name}"] for log in logs)
    hay.add_tree("state dir", state)
    hay.add_emulator(emu)
    assert hay.leaks() == []


def test_the_needles_find_what_they_look_for() -> None:
    """The search is real: each value is found in every form, wherever it sits in a blob."""
    for value in SECRETS.values():
        for form, needle in needles(value).items():
            if not form.startswith("b64"):
                hay = Haystack()
                hay.add("text", b"..." + needle + b"...")
                assert hay.leaks(), (value, form)
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            for offset in range(6):
                hay = Haystack()
                hay.add("blob", encode(b"x" * offset + value.encode() + b"yy"))
                assert hay.leaks(), (value, encode, offset)
    assert Haystack().leaks() == []
