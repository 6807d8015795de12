"""What changed between sweeps (``changes.diff``) and compliance over time (``trends``)."""

from __future__ import annotations

import copy
from typing import Any

from fleet.report.changes import diff, finding_key
from fleet.report.model import compliance_percent
from fleet.report.trends import delta, series, sparkline
from tests.report.sample import SWEEP_IDS, reports


def _diff(before: dict[str, Any], after: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return diff(
        before["clusters"],
        after["clusters"],
        before_info=before["sweep"],
        after_info=after["sweep"],
        **kw,
    )


def test_the_sample_sweeps_differ_as_built() -> None:
    _, before, after = reports()
    d = _diff(before, after)
    assert d["from"]["id"] == SWEEP_IDS[1] and d["to"]["id"] == SWEEP_IDS[2]
    assert [(i["name"], i["code"], i["path"]) for i in d["newDrift"]] == [
        ("aks-cfg-drift", "FLUX_CONFIG_DRIFT", "/properties/kustomizations/apps/path")
    ]
    assert d["newDrift"][0]["actual"] == "./apps/staging </script><b>x</b>"
    assert [(i["name"], i["code"]) for i in d["fixed"]] == [("arc-004", "FLUX_CONFIG_MISSING")]
    assert [i["name"] for i in d["newClusters"]] == ["aks-new-1", "aks-new-2"]
    assert [i["name"] for i in d["goneClusters"]] == ["aks-retired"]
    assert [(i["name"], i["from"], i["to"], i["direction"]) for i in d["stateChanges"]] == [
        ("arc-004", "noncompliant", "compliant", "better")
    ]
    assert d["counts"] == {
        "newDrift": 1,
        "fixed": 1,
        "newClusters": 2,
        "goneClusters": 1,
        "stateChanges": 1,
        "worse": 0,
        "better": 1,
    }
    assert d["comparable"] is True
    assert [n["kind"] for n in d["notes"]] == ["policies"]  # the revision changed


def test_worse_states_and_the_first_sweep() -> None:
    first, second, _ = reports()
    d = _diff(first, second)
    worse = {
        i["name"]: (i["from"], i["to"]) for i in d["stateChanges"] if i["direction"] == "worse"
    }
    assert worse == {
        "aks-ext-drift": ("compliant", "noncompliant"),
        "aks-conflict": ("compliant", "conflicting"),
    }
    new = {(i["name"], i["code"], i["policy"]) for i in d["newDrift"]}
    assert new == {
        ("aks-ext-drift", "EXTENSION_DRIFT", "platform-baseline"),
        ("aks-conflict", "POLICY_CONFLICT", "platform-baseline"),
        ("aks-conflict", "POLICY_CONFLICT", "team-apps"),
    }


def test_same_finding_with_a_new_value_is_not_new_drift() -> None:
    _, before, after = reports()
    after = copy.deepcopy(before)
    cluster = next(c for c in after["clusters"] if c["name"] == "aks-cfg-drift")
    cluster["findings"][0]["actual"] = "feature-x"
    cluster["id"] = cluster["id"].upper()  # ids compare case-insensitively
    for f in cluster["findings"]:
        f["resource"] = f["resource"].upper()
    d = _diff(before, after)
    assert d["counts"]["newDrift"] == d["counts"]["fixed"] == d["counts"]["newClusters"] == 0


def test_non_counting_findings_do_not_count() -> None:
    _, before, _ = reports()
    after = copy.deepcopy(before)
    cluster = next(c for c in after["clusters"] if c["name"] == "aks-006")
    cluster["findings"].append(
        {
            "code": "FLUX_CONFIG_UNMANAGED",
            "policy": None,
            "resource": cluster["id"] + "/x",
            "path": None,
            "desired": None,
            "actual": None,
            "message": "m",
            "severity": "warning",
        }
    )
    assert _diff(before, after)["counts"]["newDrift"] == 0


def test_limits_and_incomplete_sweeps() -> None:
    first, _, after = reports()
    before = copy.deepcopy(first)
    before["sweep"]["complete"] = False
    d = _diff(before, after, limit=1)
    assert d["comparable"] is False and d["notes"][0]["kind"] == "incomplete"
    assert d["truncated"] is True
    assert d["counts"]["newDrift"] > 1 and len(d["newDrift"]) == 1
    assert len(d["newClusters"]) == 1 and d["counts"]["newClusters"] == 2


def test_empty_sides() -> None:
    after = reports()[-1]
    d = diff([], after["clusters"])
    assert d["counts"]["newClusters"] == 30 and d["from"] is None and d["notes"] == []
    d = diff(after["clusters"], [])
    assert d["counts"]["goneClusters"] == 30


def test_finding_identity() -> None:
    f = {"code": "X", "policy": None, "resource": "/A/B", "path": None}
    assert finding_key(f) == ("X", "", "/a/b", "")


def test_trend_series() -> None:
    points = [
        {
            "id": "a",
            "finishedAt": "t1",
            "compliancePercent": 50.0,
            "clusters": 2,
            "byState": {"compliant": 1, "noncompliant": 1},
            "byPolicy": {"p": {"compliant": 1, "noncompliant": 1}},
            "bySubscription": {"s": {"compliant": 2}},
        },
        {
            "id": "b",
            "finishedAt": "t2",
            "compliancePercent": 100.0,
            "clusters": 2,
            "byState": {"compliant": 2},
            "byPolicy": {"p": {"compliant": 2}, "q": {"unknown": 1, "exempt": 1}},
            "bySubscription": {},
        },
    ]
    s = series(points)
    assert [p["id"] for p in s["sweeps"]] == ["a", "b"]
    assert s["policies"] == {"p": [50.0, 100.0], "q": [None, 100.0]}  # absent = gap, not zero
    assert s["subscriptions"] == {"s": [100.0, None]}
    assert delta(s["policies"]["p"]) == 50.0 and delta([None, 3.0]) is None
    assert sparkline([0.0, None, 100.0]) == "▁ █"


def test_compliance_percent_matches_the_summary() -> None:
    for report in reports():
        summary = report["summary"]
        assert compliance_percent(summary["byState"]) == summary["compliancePercent"]
    assert compliance_percent({}) == 100.0
    assert compliance_percent({"unknown": 3}) == 100.0
    assert compliance_percent({"compliant": 1, "exempt": 1, "error": 2, "unknown": 5}) == 50.0
