"""Helpers for the policy tests: a valid policy document to start from, and issue formatting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fleet.core.errors import PolicyLoadError
from fleet.policy.loading import PolicySet, load, load_text

TODAY = date(2026, 11, 25)

#: A valid policy using most features; tests change one thing at a time. Line numbers in the
#: tests refer to this text (line 1 is ``apiVersion``).
VALID = """\
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: platform
  description: test policy
spec:
  mode: enforce
  priority: 100
  targets:
    subscriptions: ["00000000-0000-0000-0000-000000000001"]
    resourceGroups: ["rg-prod-*"]
    tags: {env: prod}
  exclusions:
    - names: ["aks-legacy-*"]
  exemptions:
    - cluster: "*/managedClusters/aks-lab-*"
      reason: lab
      expiresOn: 2099-12-31
  extension:
    autoUpgradeMinorVersion: true
    releaseTrain: Stable
    configurationSettings:
      multiTenancy.enforce: "true"
    versionWindow: 2
  fluxConfigurations:
    - name: cluster-config
      scope: cluster
      namespace: cluster-config
      gitRepository:
        url: https://github.com/fluxcd/flux2-kustomize-helm-example
        repositoryRef: {branch: main}
      kustomizations:
        infra: {path: ./infrastructure, prune: true}
        apps: {path: ./apps/staging, prune: true, dependsOn: [infra]}
      configurationProtectedSettings:
        httpsKey: {fromEnv: GIT_TOKEN}
  remediation:
    schedule: "0 */6 * * *"
    rollout:
      waves:
        - {name: canary, selector: {tags: {ring: "0"}}}
        - {name: broad, percent: 100}
      failureBudget: 5%
"""


def edit(old: str, new: str, text: str = VALID) -> str:
    """``text`` with the one occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def named(name: str) -> str:
    """``VALID`` with another policy name."""
    return edit("  name: platform\n", f"  name: {name}\n")


def errors_of(text: str, *, file: str = "p.yaml") -> list[str]:
    """The issues of loading ``text`` as strings (an empty list when it loads)."""
    try:
        load_text(text, file=file, today=TODAY)
    except PolicyLoadError as exc:
        return [str(i) for i in exc.issues]
    return []


def load_ok(text: str, *, file: str = "p.yaml") -> PolicySet:
    return load_text(text, file=file, today=TODAY)


def load_errors(paths: list[str | Path]) -> list[str]:
    try:
        load(paths, today=TODAY)
    except PolicyLoadError as exc:
        return [str(i) for i in exc.issues]
    raise AssertionError("expected a PolicyLoadError")
