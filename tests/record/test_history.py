"""The history store on SQLite and PostgreSQL: sweeps, streaming, lookups, retention, jobs,
the audit trail and fingerprints. Every test runs once per backend (``db_url``)."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from fleet.core import redact
from fleet.core.errors import AmbiguousSweep, DuplicateSweep, NoSweeps, SweepNotFound
from fleet.record import schema
from fleet.record.audit import body_digest
from fleet.record.history import History, open_history
from fleet.report.model import SweepInfo, build_report
from tests.report.sample import SWEEP_IDS, reports

FP_A = "hmac-sha256:" + "a" * 32
FP_B = "hmac-sha256:" + "b" * 32


def normal(value: Any) -> Any:
    """JSON normalisation (what a round trip through any JSON store gives back)."""
    return json.loads(json.dumps(value))


def unaged(report: dict[str, Any]) -> dict[str, Any]:
    """A loaded report without the ``firstSeen`` the history adds to every finding (after
    checking that it did); tests/record/test_finding_ages.py checks the times themselves."""
    clusters = []
    for c in report["clusters"]:
        assert all(f["firstSeen"] for f in c["findings"]), c["name"]
        clusters.append({**c, "findings": [{**f, "firstSeen": None} for f in c["findings"]]})
    return {**report, "clusters": clusters}


@pytest.fixture
def history(db_url: str) -> Any:
    with open_history(db_url, upgrade=True) as h:
        yield h


@pytest.fixture
def recorded(history: History) -> History:
    for report in reports():
        history.record_sweep(report)
    return history


def count(history: History, table: Any, *where: Any) -> int:
    with history._engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_a_recorded_report_reads_back_exactly(recorded: History) -> None:
    for report in reports():
        assert unaged(recorded.load_report(report["sweep"]["id"])) == normal(report)


def test_extra_top_level_keys_survive(history: History) -> None:
    report = {**reports()[0], "warnings": ["policy x expires soon"]}
    assert unaged(history.load_report(history.record_sweep(report))) == normal(report)


def test_child_rows_mirror_the_verdicts(recorded: History) -> None:
    latest = reports()[-1]
    sid = latest["sweep"]["id"]
    where = schema.findings.c.sweep_id == sid
    assert count(recorded, schema.findings, where) == sum(
        len(c["findings"]) for c in latest["clusters"]
    )
    for code, n in latest["summary"]["findingsTotal"].items():
        counted = count(
            recorded,
            schema.findings,
            where,
            schema.findings.c.code == code,
            schema.findings.c.severity.not_in(["warning", "info"]),
        )
        assert counted == n, code
    policies = sum(len(c["policies"]) for c in latest["clusters"])
    assert count(recorded, schema.policy_states, schema.policy_states.c.sweep_id == sid) == policies
    with recorded._engine.connect() as conn:
        row = conn.execute(select(schema.sweeps).where(schema.sweeps.c.id == sid)).one()
    assert (
        row.cluster_count == 30
        and row.n_noncompliant == latest["summary"]["byState"]["noncompliant"]
    )
    assert row.compliance_percent == latest["summary"]["compliancePercent"]
    assert row.complete is True and row.policy_revision == "rev2abcdef"


def test_streamed_sweep_equals_the_built_report(history: History) -> None:
    report = reports()[-1]
    info = dict(report["sweep"], finishedAt=None, complete=False)
    sid = history.start_sweep(info)
    shuffled = list(report["clusters"])
    random.Random(7).shuffle(shuffled)  # verdicts arrive in completion order, not sorted
    for start in range(0, len(shuffled), 7):
        assert history.add_clusters(sid, shuffled[start : start + 7]) == len(
            shuffled[start : start + 7]
        )
    # While running: listed without a summary, not what "latest" means.
    assert history.sweeps()[0] == {"sweep": normal(info), "summary": None}
    with pytest.raises(NoSweeps):
        history.resolve("latest")
    history.finish_sweep(sid, report["sweep"], report["summary"])
    assert history.resolve("latest") == sid
    assert unaged(history.load_report(sid)) == normal(
        report
    )  # sorted by cluster id like build_report


def test_streaming_into_an_unknown_sweep_is_refused(history: History) -> None:
    with pytest.raises(SweepNotFound):
        history.add_clusters("nope", reports()[0]["clusters"][:1])
    with pytest.raises(SweepNotFound):
        history.finish_sweep("nope", reports()[0]["sweep"], reports()[0]["summary"])


def test_a_sweep_is_recorded_once(recorded: History) -> None:
    with pytest.raises(DuplicateSweep):
        recorded.record_sweep(reports()[0])
    assert recorded.count() == 3


def test_resolve_references(recorded: History) -> None:
    first, second, third = SWEEP_IDS
    assert recorded.resolve("latest") == third
    assert recorded.resolve("previous") == second
    assert recorded.resolve("latest~2") == first
    assert recorded.resolve(second) == second
    assert recorded.resolve("20261123") == first
    with pytest.raises(AmbiguousSweep, match="several sweeps"):
        recorded.resolve("2026112")
    with pytest.raises(SweepNotFound, match="no sweep matches"):
        recorded.resolve("1999")
    with pytest.raises(SweepNotFound, match="only 3 finished"):
        recorded.resolve("latest~3")
    with pytest.raises(SweepNotFound):
        recorded.resolve("2026_")  # LIKE wildcards are literal


def test_an_empty_database_says_so(history: History) -> None:
    with pytest.raises(NoSweeps, match="run `fleet sweep` first"):
        history.resolve("latest")
    with pytest.raises(NoSweeps):
        history.resolve("abc")
    assert history.sweeps() == [] and history.trends() == []


def test_sweeps_previous_and_trends(recorded: History) -> None:
    first, second, third = SWEEP_IDS
    listed = recorded.sweeps(limit=2)
    assert [s["sweep"]["id"] for s in listed] == [third, second]
    assert listed[0]["summary"] == normal(reports()[-1]["summary"])
    assert recorded.previous(third) == second and recorded.previous(first) is None
    points = recorded.trends()
    assert [p["id"] for p in points] == [first, second, third]  # oldest first, for charts
    assert points[-1]["compliancePercent"] == 50.0
    assert points[-1]["byPolicy"]["team-apps"]["conflicting"] == 1
    assert [p["id"] for p in recorded.trends(2)] == [second, third]
    assert [p["id"] for p in recorded.trends(until=second)] == [first, second]


def test_incomplete_sweeps_are_left_out_of_trends_and_previous(history: History) -> None:
    a, b, c = reports()
    history.record_sweep(a)
    b = {**b, "sweep": {**b["sweep"], "complete": False, "interrupted": True}}
    history.record_sweep(b)
    history.record_sweep(c)
    assert [p["id"] for p in history.trends()] == [SWEEP_IDS[0], SWEEP_IDS[2]]
    assert len(history.trends(complete_only=False)) == 3
    assert history.previous(SWEEP_IDS[2]) == SWEEP_IDS[1]
    assert history.previous(SWEEP_IDS[2], complete_only=True) == SWEEP_IDS[0]


def test_cluster_history(recorded: History) -> None:
    cid = next(c["id"] for c in reports()[-1]["clusters"] if c["name"] == "aks-ext-drift")
    rows = recorded.cluster_history(cid.upper())  # ARM ids are case-insensitive
    assert [r["sweepId"] for r in rows] == list(reversed(SWEEP_IDS))
    assert [r["state"] for r in rows] == ["noncompliant", "noncompliant", "compliant"]
    assert rows[0]["codes"] == ["EXTENSION_DRIFT"] and rows[-1]["codes"] == []


def test_prune_deletes_old_sweeps_and_everything_under_them(recorded: History) -> None:
    now = datetime(2026, 11, 25, 5, tzinfo=UTC)
    assert recorded.prune(1, now=now) == 1  # only the 23rd, 06:00, is more than a day old
    assert [s["sweep"]["id"] for s in recorded.sweeps()] == [SWEEP_IDS[2], SWEEP_IDS[1]]
    for table in (schema.cluster_verdicts, schema.findings, schema.policy_states):
        assert count(recorded, table, table.c.sweep_id == SWEEP_IDS[0]) == 0
        assert count(recorded, table, table.c.sweep_id == SWEEP_IDS[1]) > 0
    assert recorded.prune(400, now=now) == 0
    with pytest.raises(ValueError):
        recorded.prune(0)


def test_fifty_thousand_cluster_shape_batches(history: History) -> None:
    """More clusters than one insert batch: ids, order and children stay aligned."""
    base = reports()[-1]["clusters"]
    clusters = []
    for i in range(2 * 2000 + 17):
        c = json.loads(json.dumps(base[i % len(base)]))
        c["id"] = c["id"] + f"-{i:05d}"
        c["name"] = c["name"] + f"-{i:05d}"
        clusters.append(c)
    clusters.sort(key=lambda c: c["id"].lower())
    info = SweepInfo(id="big", started_at=datetime(2026, 1, 1, tzinfo=UTC), policy_revision="r")
    report = {
        "sweep": info.to_report(),
        "summary": {"clusters": len(clusters)},
        "clusters": clusters,
    }
    history.record_sweep(report)
    assert unaged(history.load_report("big")) == normal(report)
    assert count(history, schema.findings, schema.findings.c.sweep_id == "big") == sum(
        len(c["findings"]) for c in clusters
    )


# --- jobs, the audit trail, fingerprints ------------------------------------------------


def test_jobs_lifecycle(history: History) -> None:
    t0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
    job = history.create_job(
        kind="remediate",
        principal="ops@example.com",
        plan_digest="sha256:1",
        options={"dryRun": False, "waves": ["canary"]},
        now=t0,
    )
    assert history.create_job(kind="remediate", job_id=job, plan_digest="sha256:1") == job  # retry
    with pytest.raises(ValueError, match="already exists"):
        history.create_job(kind="remediate", job_id=job, plan_digest="sha256:2")
    got = history.get_job(job)
    assert got is not None and got["status"] == "pending" and got["options"]["waves"] == ["canary"]
    assert got["createdAt"] == "2026-11-25T08:00:00Z" and got["finishedAt"] is None
    history.update_job(
        job, status="running", counters={"done": 3, "failed": 0}, now=t0 + timedelta(minutes=1)
    )
    done = history.update_job(
        job,
        status="succeeded",
        counters={"done": 10},
        summary={"written": 10},
        now=t0 + timedelta(minutes=5),
    )
    assert done["counters"] == {"done": 10, "failed": 0}  # merged
    assert done["finishedAt"] == "2026-11-25T08:05:00Z" and done["summary"] == {"written": 10}
    other = history.create_job(kind="sweep", now=t0 + timedelta(hours=1))
    assert [j["id"] for j in history.jobs()] == [other, job]
    assert [j["id"] for j in history.jobs(kind="remediate")] == [job]
    assert history.get_job("missing") is None
    with pytest.raises(KeyError):
        history.update_job("missing", status="failed")


def test_arm_writes_are_an_audit_trail(history: History) -> None:
    job = history.create_job(kind="remediate")
    cluster = (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/arc"
    )
    resource = cluster + "/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/cfg"
    digest = body_digest({"properties": {"configurationProtectedSettings": {"httpsKey": "x"}}})
    wid = history.record_write(
        job_id=job,
        cluster_id=cluster,
        resource_id=resource,
        action="ensure_flux_config",
        method="put",
        body_digest=digest,
        principal="sp-fleet",
        correlation_id="c-1",
        wave="canary",
    )
    history.finish_write(
        wid,
        outcome="failed",
        status_code=409,
        error_code="Conflict",
        error_message="operation in progress",
    )
    history.record_write(
        job_id=job,
        cluster_id=cluster,
        resource_id=resource,
        action="ensure_flux_config",
        method="PUT",
        outcome="succeeded",
    )
    writes = history.writes(job_id=job)
    assert [w["outcome"] for w in writes] == ["failed", "succeeded"]
    first = writes[0]
    assert first["method"] == "PUT" and first["bodyDigest"] == digest and first["statusCode"] == 409
    assert (
        first["errorCode"] == "Conflict"
        and first["finishedAt"] is not None
        and first["wave"] == "canary"
    )
    assert len(history.writes(cluster_id=cluster.upper())) == 2
    assert history.writes(cluster_id=cluster + "x") == []
    with pytest.raises(ValueError, match="body_digest"):
        history.record_write(
            job_id=job,
            cluster_id=cluster,
            resource_id=resource,
            action="a",
            method="PUT",
            body_digest='{"httpsKey": "s3cret"}',
        )
    with pytest.raises(KeyError):
        history.finish_write(10**9, outcome="failed")


def test_body_digest_ignores_secret_values_but_not_their_names() -> None:
    def body(secret: str, **extra: str) -> dict[str, Any]:
        return {
            "properties": {
                "gitRepository": {"url": "https://x"},
                "configurationProtectedSettings": {"httpsKey": secret, **extra},
                "azureBlob": {"accountKey": secret},
            }
        }

    assert body_digest(body("one")) == body_digest(body("two"))
    assert body_digest(body("one")) != body_digest(body("one", sshPrivateKey="k"))
    assert body_digest({"a": 1}) != body_digest({"a": 2})
    assert body_digest(body("one")).startswith("sha256:")


def test_fingerprints_latest_wins(history: History) -> None:
    rid = "/subscriptions/S/resourceGroups/RG/providers/X/fluxConfigurations/Cfg"
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    history.record_fingerprints(
        rid, {"httpsKey": FP_A, "/azureBlob/accountKey": FP_A}, "job-1", applied_at=t0
    )
    history.record_fingerprints(
        rid.lower(), {"httpsKey": FP_B}, "job-2", applied_at=t0 + timedelta(days=1)
    )
    other = rid.replace("Cfg", "other")
    history.record_fingerprints(other, {"httpsKey": FP_A})
    key = rid.lower()
    assert history.applied_fingerprints([rid]) == {
        key: {"httpsKey": FP_B, "/azureBlob/accountKey": FP_A}
    }
    assert set(history.applied_fingerprints(None)) == {key, other.lower()}
    assert history.applied_fingerprints([]) == {}


def test_a_secret_is_never_stored(history: History) -> None:
    secret = "ghp_s3cretTokenValue123"
    redact.register(secret)
    try:
        with pytest.raises(ValueError) as caught:
            history.record_fingerprints("/r", {"httpsKey": secret})
        assert secret not in str(caught.value)
        job = history.create_job(kind="remediate")
        wid = history.record_write(
            job_id=job,
            cluster_id="/c",
            resource_id="/c/r",
            action="a",
            method="PUT",
            body_digest=body_digest({"protectedSettings": {"k": secret}}),
            error_message=f"git auth failed with token {secret}",
        )
        history.finish_write(wid, outcome="failed", error_message=f"still {secret}")
        history.record_sweep(reports()[-1])
        dump = []
        with history._engine.connect() as conn:
            for table in schema.metadata.sorted_tables:
                dump += [repr(tuple(row)) for row in conn.execute(select(table))]
        text = "\n".join(dump)
        assert "still ***" in text
        assert secret not in text
    finally:
        redact.clear()


def test_old_jobs_and_superseded_fingerprints_are_pruned_on_request(history: History) -> None:
    old = datetime(2025, 1, 1, tzinfo=UTC)
    job = history.create_job(kind="remediate", now=old)
    history.update_job(job, status="succeeded", now=old)
    history.record_write(
        job_id=job, cluster_id="/c", resource_id="/c/r", action="a", method="PUT", started_at=old
    )
    history.record_fingerprints("/r", {"k": FP_A}, job, applied_at=old)
    history.record_fingerprints("/r", {"k": FP_B}, job, applied_at=old + timedelta(days=1))
    history.record_fingerprints("/r2", {"k": FP_A}, job, applied_at=old)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    history.prune(30, now=now)  # jobs are audit records: kept unless asked
    assert history.get_job(job) is not None
    history.prune(30, now=now, jobs=True)
    assert history.get_job(job) is None and history.writes(job_id=job) == []
    # The latest fingerprint of each setting survives: secret drift is judged against it.
    assert history.applied_fingerprints(None) == {"/r": {"k": FP_B}, "/r2": {"k": FP_A}}
    assert count(history, schema.applied_fingerprints) == 2


def test_concurrent_writers(history: History) -> None:
    """The sweep's worker threads share one History (a pooled engine)."""
    report = reports()[-1]
    sid = history.start_sweep(dict(report["sweep"], finishedAt=None))
    clusters = report["clusters"]
    errors: list[BaseException] = []

    def add(part: list[dict[str, Any]]) -> None:
        try:
            for c in part:
                history.add_clusters(sid, [c])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(clusters[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history.finish_sweep(sid, report["sweep"], report["summary"])
    assert unaged(history.load_report(sid)) == normal(report)


def test_build_report_output_is_accepted_as_is(history: History) -> None:
    """What the sweep runner passes (pydantic-built dicts) needs no preparation."""
    info = SweepInfo(id="s1", started_at=datetime(2026, 1, 1, tzinfo=UTC), policy_revision="r")
    report = build_report(info, [])
    assert unaged(history.load_report(history.record_sweep(report))) == normal(report)


def test_an_in_memory_database_works() -> None:
    """``sqlite://`` (tests, throwaway runs): one shared connection, migrated in place."""
    with open_history("sqlite://", upgrade=True) as history:
        sid = history.record_sweep(reports()[0])
        assert unaged(history.load_report(sid)) == normal(reports()[0])
