"""``fleet.plan.promotion``: each cluster's version from the fleet's standing, by hand-worked
cases (pure: no emulator), and ``pin`` through evaluation and planning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet.desired.render import render
from fleet.evaluate.versions import Version, parse_version
from fleet.observe.view import view
from fleet.plan import pipeline, promotion
from fleet.plan.actions import ActionKind
from fleet.policy import promotion as policy_promotion
from tests.engine.fixtures import CATALOG, NOW, aks, applicable, extension_json, observe, policy

SOAK = timedelta(hours=24)
T = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
WE = ("1.17.3", "1.17.2", "1.16.12", "1.16.3")
US = ("1.17.2", "1.16.12", "1.16.3")


def _v(text: str | None) -> Version | None:
    return parse_version(text) if text else None


def standing(
    name: str,
    wave: int,
    current: str | None,
    *,
    location: str = "westeurope",
    releases: tuple[str, ...] = WE,
    since: datetime | None = T,
    pinned: bool = True,
    gate: tuple[str, ...] = (),
) -> promotion.Standing:
    versions = tuple(v for v in (_v(r) for r in releases) if v is not None)
    return promotion.Standing(
        cluster_id=f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}",
        name=name,
        location=location,
        wave=wave,
        wave_name=("canary", "early", "broad")[wave],
        policy="promoted",
        train="stable",
        releases=versions,
        window=2,
        current=_v(current),
        pinned=pinned,
        since=since,
        soak=SOAK,
        gate=gate,
    )


def decide(*fleet: promotion.Standing, now: datetime) -> dict[str, promotion.Target]:
    found = promotion.targets(fleet, now)
    return {s.name: found[s.key] for s in fleet}


def test_the_canary_takes_the_newest_release_of_its_region_and_the_next_wave_waits() -> None:
    got = decide(
        standing("we-0", 0, "1.17.2"),
        standing("we-1", 1, "1.17.2"),
        standing("us-0", 0, "1.17.2", location="eastus", releases=US),
        now=T + timedelta(hours=1),
    )
    assert got["we-0"].version == "1.17.3" and not got["we-0"].held
    assert got["we-1"].version == "1.17.2" and got["we-1"].held
    assert "we-0 (wave canary) does not run 1.17.3 yet" in got["we-1"].reason
    assert got["us-0"].version == "1.17.2" and not got["us-0"].held  # eastus lacks 1.17.3


def test_the_next_wave_moves_once_the_earlier_waves_soaked_without_gate_findings() -> None:
    fleet = [standing("we-0", 0, "1.17.3"), standing("we-1", 1, "1.17.2")]
    early = decide(*fleet, now=T + SOAK - timedelta(minutes=1))
    assert early["we-1"].version == "1.17.2"
    assert "soaking until 2027-01-05T10:00:00+00:00" in early["we-1"].reason
    assert decide(*fleet, now=T + SOAK)["we-1"].version == "1.17.3"


def test_a_gate_finding_in_an_earlier_wave_halts_every_later_wave() -> None:
    got = decide(
        standing("we-0", 0, "1.17.3", gate=("FLUX_CONFIG_NONCOMPLIANT",)),
        standing("we-1", 1, "1.17.2"),
        standing("we-2", 2, "1.17.2"),
        now=T + 10 * SOAK,
    )
    for name in ("we-1", "we-2"):
        assert got[name].version == "1.17.2" and got[name].held
        assert "halted: we-0 (wave canary) shows FLUX_CONFIG_NONCOMPLIANT" in got[name].reason


def test_a_cluster_not_pinned_yet_gives_no_soak_start() -> None:
    got = decide(
        standing("we-0", 0, "1.17.3", pinned=False),
        standing("we-1", 1, "1.17.2"),
        now=T + 10 * SOAK,
    )
    assert got["we-1"].version == "1.17.2"
    assert "not pinned yet" in got["we-1"].reason


def test_a_region_re_soaks_with_its_own_earlier_waves_and_one_without_canary_borrows() -> None:
    fleet = [
        standing("we-0", 0, "1.17.3"),
        standing("we-1", 1, "1.17.2"),
        standing("us-0", 0, "1.17.3", location="eastus", since=T + 2 * SOAK),
        standing("us-1", 1, "1.17.2", location="eastus"),
        # A region whose only cluster is in the early wave relies on every region's canaries.
        standing("ne-1", 1, "1.17.2", location="northeurope"),
    ]
    got = decide(*fleet, now=T + 2 * SOAK + timedelta(hours=1))
    assert got["we-1"].version == "1.17.3"  # its region's canary soaked two days
    assert got["us-1"].version == "1.17.2"  # its own canary has just moved
    assert "us-0 (wave canary) runs 1.17.3 since" in got["us-1"].reason
    assert got["ne-1"].version == "1.17.2"  # borrows: we-0 soaked, us-0 not yet
    assert "us-0 (wave canary) runs 1.17.3 since" in got["ne-1"].reason
    later = decide(*fleet, now=T + 3 * SOAK)
    assert later["us-1"].version == later["ne-1"].version == "1.17.3"


def test_borrowed_evidence_needs_every_canary_that_can_take_the_release() -> None:
    got = decide(
        standing("we-0", 0, "1.17.3"),
        standing("us-0", 0, "1.17.2", location="eastus"),
        standing("ne-1", 1, "1.17.2", location="northeurope"),
        now=T + 2 * SOAK,
    )
    assert got["ne-1"].version == "1.17.2"
    assert "us-0 (wave canary) does not run 1.17.3 yet" in got["ne-1"].reason


def test_promotion_never_leaves_or_keeps_a_cluster_outside_the_window() -> None:
    releases = ("1.18.1", "1.18.0", "1.17.3", "1.17.2")
    got = decide(
        standing("we-0", 0, "1.17.2", releases=releases),
        standing("we-1", 1, "1.17.2", releases=releases),
        now=T + timedelta(hours=1),
    )
    assert got["we-0"].version == "1.18.1"
    # 1.17.2 is N-3 now: the held wave goes to the oldest release inside N-2, not beyond it.
    assert got["we-1"].version == "1.17.3" and got["we-1"].held
    assert "the window wins" in got["we-1"].reason


def test_never_down_and_a_new_extension_gets_what_the_earlier_waves_run() -> None:
    got = decide(
        standing("we-0", 0, "1.17.2"),
        # newer than its regional catalogue knows (a release that reached it first): kept
        standing("we-1", 1, "1.18.0"),
        standing("we-2", 2, None, since=None, pinned=False),
        now=T + timedelta(hours=1),
    )
    assert got["we-0"].version == "1.17.3"
    assert got["we-1"].version == "1.18.0"
    assert got["we-2"].version == "1.17.2"  # installed with what waves 0 and 1 all run


def test_no_release_in_the_window_leaves_the_version_alone() -> None:
    got = decide(standing("we-0", 0, "1.17.2", releases=()), now=T)
    assert got["we-0"].version is None


def test_pin_makes_the_target_the_desired_version_and_plans_a_put() -> None:
    promoting = policy(
        "promoted",
        extension={"versionPolicy": "promote", "promotion": {"soak": "2d"}},
    )
    facts = aks("aks-1", tags={"ring": "0"})
    ext = extension_json(facts.id, current="1.17.2", autoUpgradeMinorVersion=False)
    ext["properties"]["version"] = "1.17.2"
    observed = observe(facts, extensions=[ext])
    chosen = applicable(promoting)
    desired = render(chosen, facts)
    assert desired.extension is not None and desired.extension.promotion is not None
    assert desired.extension.promotion.soak_seconds == 2 * 86400
    assert desired.extension.promotion.gate == frozenset(policy_promotion.DEFAULT_GATE)
    unpinned = pipeline.judge(observed, chosen, catalog=CATALOG, now=NOW)
    assert not unpinned.plan.actions  # without a target only the pin is governed
    found = promotion.standing(
        observed,
        unpinned.desired,
        unpinned.verdict,
        view(observed, "flux"),
        CATALOG,
        wave=0,
        wave_name="canary",
    )
    assert found is not None
    assert (found.current, found.pinned, found.location, found.gate) == (
        _v("1.17.2"),
        True,
        "westeurope",
        (),
    )
    assert found.since == datetime(2026, 9, 8, 5, 10, 57, tzinfo=UTC)  # systemData
    assert found.soak == timedelta(days=2)
    target = promotion.Target("1.17.3", "promoted to 1.17.3 (wave canary)")
    judged = pipeline.judge(observed, chosen, catalog=CATALOG, now=NOW, target=target)
    (put,) = judged.plan.actions
    assert put.kind is ActionKind.PUT_EXTENSION
    assert put.body is not None
    assert put.body["properties"]["version"] == "1.17.3"
    assert put.body["properties"]["autoUpgradeMinorVersion"] is False
    assert promotion.pinned_version(judged.plan.actions) == "1.17.3"
    held = promotion.Target("1.17.2", "1.17.3 held for wave early: ...", held=True)
    kept = pipeline.judge(observed, chosen, catalog=CATALOG, now=NOW, target=held)
    assert not kept.plan.actions
    assert [s.code for s in kept.plan.skipped] == [promotion.HELD_CODE]


def test_a_policy_that_does_not_promote_has_no_rule_and_pin_changes_nothing() -> None:
    plain = policy("plain", extension={"releaseTrain": "Stable"})
    facts = aks("aks-2")
    desired = render(applicable(plain), facts)
    assert desired.extension is not None and desired.extension.promotion is None
    assert promotion.pin(desired, "1.17.3") is desired


def test_the_default_gate_is_one_list_of_strings_and_unknown_codes_are_accepted() -> None:
    assert "FLUX_OBJECT_NOT_READY" in policy_promotion.DEFAULT_GATE
    assert policy_promotion.known_gate_code("FLUX_OBJECT_NOT_READY")
    assert not policy_promotion.known_gate_code("FLUX_BROKEN")
    assert policy_promotion.parse_soak("1d12h") == timedelta(hours=36)
    assert policy_promotion.parse_soak("PT90M") == timedelta(minutes=90)


def test_without_a_decision_a_promoted_version_is_pinned_where_it_is() -> None:
    # A sweep, or the retry actions of an offline cluster: no target was decided, so a write
    # pins what the cluster runs (1.17.2), never the train's newest (1.17.3) behind the gate.
    promoting = policy("promoted", extension={"versionPolicy": "promote"})
    facts = aks("aks-3")
    observed = observe(facts, extensions=[extension_json(facts.id, current="1.17.2")])
    judged = pipeline.judge(observed, applicable(promoting), catalog=CATALOG, now=NOW)
    (put,) = judged.plan.actions
    assert put.body is not None
    assert put.body["properties"]["version"] == "1.17.2"
    assert put.body["properties"]["autoUpgradeMinorVersion"] is False
    drifted = {f.path for f in judged.verdict.findings if f.code.value == "EXTENSION_DRIFT"}
    assert drifted == {"/properties/autoUpgradeMinorVersion", "/properties/version"}
