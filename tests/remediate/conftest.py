"""Shared set-up of the remediation tests: a generated fleet, a fast emulator, the real CLI.

Every test that writes starts its own emulator from the same generated snapshot (writes change
its state); the fleet is small (60 clusters in 2 subscriptions, every defect kind of
docs/scenario.md) and the emulator fast (no Retry-After, one poll per operation, Flux
reconciles at once, ARM throttling off: several full passes over the fleet in a few seconds
would drain the real read bucket, and throttling is the benchmark's subject, not these
tests'), so a whole remediation takes a few seconds.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.core.clusters import facts_from_arm
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import POLICIES, emulator_env

CLUSTERS = 60
SUBSCRIPTIONS = 2
SEED = 5
CLUSTER_TYPES = (
    "Microsoft.ContainerService/managedClusters",
    "Microsoft.Kubernetes/connectedClusters",
)
FAST = {"retry_after": 0, "lro_polls": 1, "reconcile_seconds": 0, "throttle": "off"}


@pytest.fixture(scope="session")
def snapshot() -> dict[str, Any]:
    return generate(clusters=CLUSTERS, subscriptions=SUBSCRIPTIONS, seed=SEED)


@pytest.fixture
def start(snapshot: dict[str, Any]) -> Callable[..., Any]:
    """``with start(**options) as emu``: an emulator with a private copy of the fleet."""

    @contextmanager
    def _start(**options: Any) -> Iterator[RunningEmulator]:
        with running_emulator(copy.deepcopy(snapshot), **{**FAST, **options}) as emu:
            yield emu

    return _start


def run(args: list[str], env: dict[str, str], **kw: Any) -> Any:
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False, **kw)


def env_for(emu: RunningEmulator, state: Path, **extra: Any) -> dict[str, str]:
    return emulator_env(emu, state, **extra)


def kinds(snapshot: dict[str, Any]) -> dict[str, str]:
    """cluster id (lower case) -> defect kind."""
    return {k.lower(): v for k, v in snapshot["generator"]["defects"].items()}


def clusters(snapshot: dict[str, Any]) -> dict[str, Any]:
    """cluster id (lower case) -> ClusterFacts."""
    return {
        r["id"].lower(): facts_from_arm(r)
        for r in snapshot["resources"]
        if r["type"] in CLUSTER_TYPES
    }


def cluster_of(path: str) -> str:
    """The cluster id (lower case) a request path or resource id is under."""
    m = re.match(
        r"(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/[^/]+/[^/]+/[^/?]+)", path.lower()
    )
    assert m, path
    return m.group(1)


def writes_by_cluster(emu: RunningEmulator) -> dict[str, list[tuple[str, str]]]:
    """The emulator's request log of writes: cluster -> [(method, path)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for r in emu.admin.requests():
        out.setdefault(cluster_of(r["path"]), []).append((r["method"], r["path"]))
    return out


def policy_dir(
    tmp: Path,
    edits: dict[str, Callable[[str], str]] | None = None,
    extra: dict[str, str] | None = None,
    only: list[str] | None = None,
) -> Path:
    """A copy of the example policies with textual edits per file (the files stay readable)."""
    target = tmp / "policies"
    target.mkdir(parents=True, exist_ok=True)
    for f in sorted(POLICIES.glob("*.yaml")):
        if only is not None and f.name not in only:
            continue
        text = f.read_text()
        if edits and f.name in edits:
            changed = edits[f.name](text)
            assert changed != text, f"edit of {f.name} changed nothing"
            text = changed
        (target / f.name).write_text(text)
    for name, text in (extra or {}).items():
        (target / name).write_text(text)
    return target


def with_rollout(rollout_yaml: str, **flags: str) -> Callable[[str], str]:
    """Replace baseline.yaml's remediation block (rollout + flags)."""

    def edit(text: str) -> str:
        head = text[: text.index("  remediation:\n")]
        block = "  remediation:\n" + rollout_yaml
        for name, value in flags.items():
            block += f"    {name}: {value}\n"
        return head + block

    return edit


def report(result: Any) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def fresh_state(tmp: Path, name: str) -> Path:
    state = tmp / name
    shutil.rmtree(state, ignore_errors=True)
    return state
