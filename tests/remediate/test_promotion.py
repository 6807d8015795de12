"""Extension version promotion end to end: the real CLI and SDK against the emulator over HTTPS,
on the emulated clock (``FLEET_CLOCK=emulator``), with the fleet of ``tests.promotion_fleet``:
three waves (canary, early, broad) in two regions (westeurope, eastus), soak 24h.

Every run is a plain ``fleet remediate --yes``; between runs the test moves the clock, publishes
the new release to a region's catalogue, or breaks a Flux object. After every run a sweep shows
no cluster outside the N-2 window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests import promotion_fleet as pf
from tests.conftest import emulator_env

FAST = {"retry_after": 0, "lro_polls": 1, "reconcile_seconds": 0, "throttle": "off"}


class Run:
    """One fleet and its state directory: run the CLI, move time, read what ARM holds."""

    def __init__(self, emu: RunningEmulator, tmp: Path) -> None:
        self.emu = emu
        self.policies = tmp / "policies"
        self.policies.mkdir(parents=True)
        (self.policies / "promoted.yaml").write_text(pf.POLICY)
        self.env = emulator_env(emu, tmp / "state", FLEET_CLOCK="emulator")

    def cli(self, *args: str) -> dict[str, Any]:
        result = CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)
        assert result.stdout.strip(), result.output
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def remediate(self) -> dict[str, Any]:
        job = self.cli("remediate", "-p", str(self.policies), "--yes", "-o", "json")
        assert job["job"]["status"] == "succeeded", job["job"]
        self.assert_in_window()
        return job

    def at(self, hours: float) -> None:
        """Set the clock to ``hours`` after T0 (the agents report then: ``pf.at``)."""
        pf.at(self.emu.admin, hours)

    def versions(self) -> dict[str, str | None]:
        found = pf.versions(self.emu.admin.snapshot())
        assert all(auto is False for _, auto in found.values()), found  # pinned by fleet
        return {name: version for name, (version, _) in found.items()}

    def on_new(self) -> set[str]:
        return {name for name, v in self.versions().items() if v == pf.NEW}

    def assert_in_window(self) -> None:
        report = self.cli("sweep", "-p", str(self.policies), "-o", "json")
        codes = {f["code"] for c in report["clusters"] for f in c["findings"]}
        assert "EXTENSION_VERSION_OUT_OF_WINDOW" not in codes, codes
        assert len(report["clusters"]) == len(pf.CLUSTERS)

    def publish(self, region: str) -> None:
        self.emu.admin.publish_release(pf.NEW, [region])


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    with running_emulator(pf.snapshot(), **FAST) as emu:
        fleet = Run(emu, tmp_path)
        fleet.at(0)
        yield fleet


def held(job: dict[str, Any]) -> dict[str, str]:
    return {
        c["name"]: c["reason"]
        for c in job["clusters"]
        if c["status"] == "skipped" and "EXTENSION_PROMOTION_HELD" in (c.get("reason") or "")
    }


def test_a_release_reaches_every_wave_of_both_regions_region_by_region(run: Run) -> None:
    first = run.remediate()  # promotion turned on: every cluster pinned where it is
    assert {c["status"] for c in first["clusters"]} == {"fixed"}
    assert set(run.versions().values()) == {pf.OLD}

    run.at(1)
    run.publish("westeurope")  # eastus does not serve 1.17.3 yet
    canary = run.remediate()
    assert run.on_new() == {"aks-we-0"}
    assert "aks-we-0 (wave canary) does not run 1.17.3 yet" in held(canary)["aks-we-1"]

    run.at(12)  # inside the soak: nothing moves
    soaking = run.remediate()
    assert run.on_new() == {"aks-we-0"}
    assert "soaking until 2027-01-05T11:00" in held(soaking)["aks-we-1"]

    run.at(26)
    run.publish("eastus")
    second = run.remediate()
    # westeurope's early wave after its canary's soak; eastus's canary as the release arrives.
    assert run.on_new() == {"aks-we-0", "aks-we-1", "aks-us-0"}
    assert "aks-we-1 (wave early) does not run 1.17.3" in held(second)["aks-we-2"]
    assert "aks-us-0 (wave canary) does not run 1.17.3" in held(second)["aks-us-1"]

    run.at(51)
    run.remediate()
    assert run.on_new() == {"aks-we-0", "aks-we-1", "aks-we-2", "aks-us-0", "aks-us-1"}

    run.at(76)
    last = run.remediate()
    assert run.on_new() == set(pf.CLUSTERS)
    assert not held(last)
    # ARM got version PUTs only: each cluster's extension was written once per move and pin.
    puts = [
        r
        for r in run.emu.admin.requests()
        if r["method"] == "PUT" and "/extensions/" in r["path"].lower()
    ]
    assert len(puts) == 2 * len(pf.CLUSTERS)


def test_a_failing_flux_object_in_the_canary_halts_the_promotion(run: Run) -> None:
    run.remediate()
    run.at(1)
    run.publish("westeurope")
    run.remediate()
    assert run.on_new() == {"aks-we-0"}

    config = pf.flux_config(run.emu.admin.snapshot(), "aks-we-0")
    run.emu.admin.put_resource(pf.failing(config))
    for hours in (26, 51, 76):  # soak after soak, the canary's failure holds every wave
        run.at(hours)
        job = run.cli("remediate", "-p", str(run.policies), "--yes", "-o", "json")
        run.assert_in_window()
        assert run.on_new() == {"aks-we-0"}
        reasons = held(job)
        assert {"aks-we-1", "aks-we-2"} <= set(reasons)
        assert all(
            "halted: aks-we-0 (wave canary) shows FLUX_CONFIG_NONCOMPLIANT" in reasons[n]
            for n in ("aks-we-1", "aks-we-2")
        ), reasons

    run.emu.admin.put_resource(pf.healthy(pf.flux_config(run.emu.admin.snapshot(), "aks-we-0")))
    run.at(77)
    run.remediate()
    assert run.on_new() == {"aks-we-0", "aks-we-1"}  # the gate opens, one wave at a time


def test_a_held_wave_is_moved_back_into_the_window_when_releases_pass_it_by(run: Run) -> None:
    run.remediate()
    run.at(1)
    # Three new releases at once: 1.17.2 falls out of N-2 (1.18.1, 1.18.0, 1.17.3).
    for version in ("1.17.3", "1.18.0", "1.18.1"):
        run.emu.admin.publish_release(version, ["westeurope", "eastus"])
    dry = run.cli("remediate", "-p", str(run.policies), "--dry-run", "-o", "json")
    pinned = {
        c["clusterName"]: a["body"]["properties"]["version"]
        for c in dry["clusters"]
        for a in c["actions"]
        if a["kind"] == "put_extension"
    }
    assert pinned["aks-we-1"] == pinned["aks-us-2"] == "1.17.3"  # the plan shows the move
    run.remediate()  # its sweep proves nobody is outside the window
    versions = run.versions()
    assert versions["aks-we-0"] == versions["aks-us-0"] == "1.18.1"  # the canaries: the newest
    later = {n: v for n, v in versions.items() if not n.endswith("-0")}
    assert set(later.values()) == {"1.17.3"}  # the oldest release inside the window
