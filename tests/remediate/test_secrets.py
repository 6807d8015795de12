"""Protected settings: resolved at the last moment, sent to ARM, and found nowhere else.

A policy references a git token by environment variable. The job runs with ``-vv`` (debug
logs on stderr); afterwards the token's value must not appear in stdout, stderr, the SQLite
files (database and WAL), ``fleet jobs show -o json``, ``fleet jobs audit``, a report, the
emulator's request log or its state. A keyed fingerprint of it is what is stored, so the next
sweep sees no drift, and a rotated token shows as drift until a job applies it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from fleet.core import redact
from tests.remediate.conftest import env_for, policy_dir, report, run

TOKEN = "tok-9f8e7d6c5b4a-SECRET"
ROTATED = "tok-0a1b2c3d4e5f-ROTATED"

PRIVATE = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: private-repo
spec:
  mode: enforce
  priority: 40
  targets:
    resourceGroups: ["rg-prod-*"]
  fluxConfigurations:
    - name: private-apps
      scope: cluster
      namespace: private-apps
      gitRepository:
        url: https://github.com/fleet-examples/private-apps
        repositoryRef: {branch: main}
        httpsUser: git
      kustomizations:
        apps: {path: ./apps, prune: true}
      configurationProtectedSettings:
        httpsKey: {fromEnv: FLEET_TEST_GIT_TOKEN}
"""


def _absent(value: str, where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    assert value.encode() not in data, f"the secret leaked into {where}"


def test_a_protected_setting_never_leaves_the_write(start: Any, tmp_path: Path) -> None:
    redact.clear()
    policies = policy_dir(tmp_path, only=["baseline.yaml"], extra={"private.yaml": PRIVATE})
    with start() as emu:
        state = tmp_path / "state"
        env = env_for(emu, state, FLEET_TEST_GIT_TOKEN=TOKEN)
        result = run(["remediate", "-p", str(policies), "--yes", "-o", "json", "-vv"], env)
        assert result.exit_code == 0, result.stderr
        job = report(result)
        assert "DEBUG" in result.stderr  # the debug logs really ran
        private = [
            w
            for c in job["clusters"]
            for w in c["writes"]
            if w["resource"].endswith("/fluxConfigurations/private-apps")
        ]
        assert private and {w["outcome"] for w in private} == {"succeeded"}
        # ARM got the setting (the emulator keeps its key, blanks its value)
        configs = [
            r
            for r in emu.admin.snapshot()["resources"]
            if r["id"].endswith("/fluxConfigurations/private-apps")
        ]
        assert configs and all(
            r["properties"]["configurationProtectedSettings"] == {"httpsKey": ""} for r in configs
        )

        swept = run(["sweep", "-p", str(policies), "-o", "json", "-vv"], env)
        shown = run(
            [
                "jobs",
                "show",
                job["job"]["id"],
                "-o",
                "json",
            ],
            env,
        )
        table = run(["jobs", "show", job["job"]["id"]], env)
        audit = run(["jobs", "audit", "-o", "json"], env)
        rendered = run(["report", "latest", "--format", "json"], env)
        assert swept.exit_code == shown.exit_code == audit.exit_code == 0
        # no drift: the fingerprint of what was applied matches the reference's value
        private_ids = {w["resource"].lower() for w in private}
        findings = [
            f
            for c in report(swept)["clusters"]
            for f in c["findings"]
            if (f.get("resource") or "").lower() in private_ids
        ]
        assert findings == []

        outputs = {
            "remediate stdout": result.stdout,
            "remediate stderr": result.stderr,
            "sweep output": swept.stdout + swept.stderr,
            "jobs show -o json": shown.stdout,
            "jobs show": table.stdout,
            "jobs audit": audit.stdout,
            "report": rendered.stdout + rendered.stderr,
            "emulator request log": json.dumps(emu.admin.requests()),
            "emulator state": json.dumps(emu.admin.snapshot()),
        }
        for where, text in outputs.items():
            _absent(TOKEN, where, text)
        for f in state.glob("fleet.db*"):  # the database, its WAL and shared memory
            _absent(TOKEN, f.name, f.read_bytes())
        # continuation tokens carry ARM's response base64-encoded: look inside them too
        tokens = [w["continuationToken"] for w in report(shown)["writes"]]
        assert tokens and all(tokens)
        for token in tokens:
            decoded = base64.b64decode(token)
            _absent(TOKEN, "a continuation token", decoded)
            content = json.loads(decoded)["data"]["response"]["content"]
            _absent(TOKEN, "a continuation token's response", base64.b64decode(content))

        # rotation: the reference now holds another value: drift until a job applies it
        rotated_env = {**env, "FLEET_TEST_GIT_TOKEN": ROTATED}
        drift = report(run(["sweep", "-p", str(policies), "-o", "json"], rotated_env))
        paths = {
            f["path"]
            for c in drift["clusters"]
            for f in c["findings"]
            if f["code"] == "FLUX_CONFIG_DRIFT"
        }
        assert paths == {"/properties/configurationProtectedSettings/httpsKey"}
        again = run(["remediate", "-p", str(policies), "--yes", "-o", "json"], rotated_env)
        assert again.exit_code == 0, again.stderr
        assert report(again)["summary"]["fixed"] == len(private)
        clean = report(run(["sweep", "-p", str(policies), "-o", "json"], rotated_env))
        assert not [
            f for c in clean["clusters"] for f in c["findings"] if f["code"] == "FLUX_CONFIG_DRIFT"
        ]
        for f in state.glob("fleet.db*"):
            _absent(ROTATED, f.name, f.read_bytes())
        _absent(ROTATED, "remediate output", again.stdout + again.stderr)
    redact.clear()
