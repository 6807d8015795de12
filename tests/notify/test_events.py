"""The events as pure functions: what a sweep's changes, a job's report and the schedules give,
and how the renderings show them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet.core.errors import NotifyTargetInvalid
from fleet.notify import events as ev
from fleet.notify.delivery import backoff
from fleet.notify.events import (
    DRIFT,
    FIXED,
    Event,
    Thresholds,
    finding_hash,
    missed_sweeps,
    sweep_events,
)
from fleet.notify.render import FORMATS, as_cloudevent, headline
from fleet.notify.targets import parse
from fleet.report.changes import diff

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"


def cluster(name: str, *codes: str) -> dict[str, Any]:
    cid = f"{SUB}/providers/Microsoft.ContainerService/managedClusters/{name}"
    return {
        "id": cid,
        "name": name,
        "state": "noncompliant" if codes else "compliant",
        "findings": [
            {"code": c, "policy": "p", "resource": cid, "path": f"/properties/{c.lower()}"}
            for c in codes
        ],
    }


def notice(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    announced: dict[str, str] | None = None,
    **thresholds: Any,
) -> ev.SweepNotice:
    return sweep_events(
        diff(before, after),
        sweep={"id": "s2", "finishedAt": "2026-12-01T10:00:00+00:00"},
        summary={"compliancePercent": 50.0, "byState": {"compliant": 1, "noncompliant": 1}},
        previous={"id": "s1"},
        previous_summary={"compliancePercent": 100.0},
        announced=announced or {},
        thresholds=Thresholds(**thresholds),
    )


def test_new_and_fixed_findings_and_a_compliance_drop() -> None:
    found = notice(
        [cluster("a", "FLUX_CONFIG_MISSING"), cluster("b")],
        [cluster("a"), cluster("b", "EXTENSION_DRIFT")],
    )
    drift, fixed, drop = found.events
    assert (drift.type, fixed.type, drop.type) == (
        ev.SWEEP_DRIFT,
        ev.SWEEP_FIXED,
        ev.SWEEP_COMPLIANCE_DROPPED,
    )
    assert [(f["name"], f["code"]) for f in drift.data["findings"]] == [("b", "EXTENSION_DRIFT")]
    assert [(f["name"], f["code"]) for f in fixed.data["findings"]] == [
        ("a", "FLUX_CONFIG_MISSING")
    ]
    assert drop.data["drop"] == 50.0
    assert sorted(found.announced.values()) == [DRIFT, FIXED]
    # The same occurrence always has the same id (a finaliser run twice queues it once).
    assert drift.id == notice([cluster("b")], [cluster("b", "EXTENSION_DRIFT")]).events[0].id


def test_what_was_announced_is_not_announced_again() -> None:
    after = [cluster("b", "EXTENSION_DRIFT")]
    key = finding_hash(diff([cluster("b")], after)["newDrift"][0])
    found = notice([cluster("b")], after, {key: DRIFT}, compliance_drop=100)
    assert found.events == [] and found.announced == {}
    # Fixed, then drifted again: a change, so announced again.
    again = notice([cluster("b")], after, {key: FIXED}, compliance_drop=100)
    assert [e.type for e in again.events] == [ev.SWEEP_DRIFT]


def test_a_digest_above_the_threshold() -> None:
    before = [cluster(f"c{i:02}") for i in range(30)]
    after = [cluster(f"c{i:02}", "EXTENSION_DRIFT", "FLUX_CONFIG_DRIFT") for i in range(30)]
    [drift] = notice(before, after, digest=10, compliance_drop=100).events
    assert drift.data["digest"] is True and "findings" not in drift.data
    assert drift.data["counts"] == {"findings": 60, "clusters": 30}
    assert len(drift.data["clusters"]) == ev.DIGEST_CLUSTERS
    assert drift.data["clusters"][0] == {
        "clusterId": after[0]["id"],
        "name": "c00",
        "findings": 2,
        "codes": ["EXTENSION_DRIFT", "FLUX_CONFIG_DRIFT"],
    }
    title, lines = headline(drift)
    assert title == "fleet: 60 new finding(s) on 30 cluster(s)"
    assert lines[-2:] == ["... and 10 more cluster(s)", f"All of them: {drift.data['more']}"]


def _report(stop_kind: str | None, status: str) -> dict[str, Any]:
    return {
        "job": {
            "id": "j1",
            "status": status,
            "mode": "live",
            "policy": None,
            "stopKind": stop_kind,
            "stopReason": "failure budget exceeded in wave 'canary'" if stop_kind else None,
            "finishedAt": "2026-12-01T10:00:00+00:00",
            "rollout": {"failureBudget": "0 of 4"},
        },
        "summary": {"toWrite": 4, "fixed": 1, "failed": 1},
        "waves": [{"name": "canary", "clusters": 2, "approval": False, "implicit": False}],
    }


def test_job_events() -> None:
    budget, finished = ev.job_events(_report("failure-budget", "stopped"))
    assert (budget.type, finished.type) == (ev.JOB_BUDGET_EXCEEDED, ev.JOB_FINISHED)
    assert budget.data["failureBudget"] == "0 of 4"
    assert finished.data["waves"] == [{"name": "canary", "clusters": 2, "approval": False}]
    [only] = ev.job_events(_report(None, "succeeded"))
    assert headline(only)[0] == "fleet: job j1 succeeded"
    waiting = ev.awaiting_approval("j1", "rest", "p", "2026-12-01T10:00:00+00:00")
    assert waiting.data["approve"] == "fleet jobs approve j1"
    assert waiting.id != ev.awaiting_approval("j1", "other", "p", waiting.time).id


def test_missed_scheduled_sweeps() -> None:
    now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    hourly = {"p": "0 * * * *", "q": "0 * * * *", "new": "0 * * * *"}
    started = {"p": [now - timedelta(hours=3)], "q": [now - timedelta(minutes=58)]}
    [event] = missed_sweeps(hourly, started, now=now, grace=900)
    assert event.subject == "p" and event.data["dueAt"] == "2026-12-01T06:00:00+00:00"
    # The same missed run, looked at a minute later: the same event id.
    later = missed_sweeps(hourly, started, now=now + timedelta(minutes=1), grace=900)
    assert [e.id for e in later] == [event.id]


def test_renderings() -> None:
    event = Event(
        ev.JOB_FINISHED,
        "j1",
        "2026-12-01T10:00:00+00:00",
        {"jobId": "j1", "status": "completed", "counts": {"fixed": 3}},
    )
    headers, body = as_cloudevent(event)
    assert headers == {"content-type": "application/cloudevents+json"}
    ce = json.loads(body)
    assert (
        ce["specversion"] == "1.0" and ce["id"] == event.id and ce["time"] == "2026-12-01T10:00:00Z"
    )
    assert ce["data"] == event.data and ce["datacontenttype"] == "application/json"
    teams = json.loads(FORMATS["teams"](event)[1])
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == "fleet: job j1 completed"
    slack = json.loads(FORMATS["slack"](event)[1])
    assert slack["text"] == "fleet: job j1 completed"
    assert event.id in slack["blocks"][-1]["elements"][0]["text"]


def test_targets_and_their_labels() -> None:
    literal = "https://hooks.example.test/services/T1/B2/secret-token-abc?x=1"
    a, b, c = parse(f"env:HOOK, teams=file:/run/hook , {literal}")
    assert (a.format, a.label) == ("cloudevents", "cloudevents=env:HOOK")
    assert (b.format, b.label) == ("teams", "teams=file:/run/hook")
    assert c.format == "cloudevents" and c.label.startswith("cloudevents=url#")
    assert "secret-token" not in c.label
    with pytest.raises(NotifyTargetInvalid, match="entry 2: unknown format") as bad:
        parse("env:A,teems=https://hooks.example.test/secret-token-abc")
    assert "secret-token" not in str(bad.value)
    with pytest.raises(NotifyTargetInvalid, match="entry 1: neither"):
        parse("hooks.example.test/secret")
    with pytest.raises(NotifyTargetInvalid, match="entry 2: neither"):
        parse("env:A, keyvault:kv-platform/webhook")  # delivery holds no Azure credential
    plain = parse("http://hooks.example.test/x")[0]
    with pytest.raises(NotifyTargetInvalid, match="not an https"):
        plain.url()


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(n, 2.0, rng) for n in (1, 2, 3, 20)]
    assert 1.0 <= delays[0] <= 2.0 and 2.0 <= delays[1] <= 4.0 and 4.0 <= delays[2] <= 8.0
    assert 1800 <= delays[3] <= 3600
