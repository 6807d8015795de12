"""Drift age: the history keeps when each finding was first seen, by finding key, while the
finding lasts; a fixed finding that comes back is new again; a cluster a sweep did not judge
keeps its ages; streamed and whole-report recording agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from fleet.core.vocabulary import Code, State
from fleet.evaluate.verdicts import Finding, PolicyResult, Verdict
from fleet.record.history import History, open_history
from fleet.record.schema import finding_ages
from fleet.report.model import SweepInfo, build_report

SUB = "00000000-0000-0000-0000-000000000001"
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def cid(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
        f"Microsoft.ContainerService/managedClusters/{name}"
    )


def verdict(name: str, *paths: str) -> Verdict:
    resource = f"{cid(name)}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/c"
    findings = [
        Finding(
            code=Code.FLUX_CONFIG_DRIFT,
            policy="baseline",
            resource=resource,
            path=p,
            desired="main",
            actual="dev",
            message="drift",
        )
        for p in paths
    ]
    state = State.NONCOMPLIANT if paths else State.COMPLIANT
    return Verdict(
        id=cid(name),
        name=name,
        type="managedClusters",
        subscription_id=SUB,
        resource_group="rg",
        state=state,
        policies=[PolicyResult(name="baseline", state=state)],
        findings=findings,
    )


def record(history: History, day: int, *verdicts: Verdict, stream: bool = False) -> str:
    started = T0 + timedelta(days=day)
    info = SweepInfo(
        id=f"sweep-{day}",
        started_at=started,
        finished_at=started + timedelta(minutes=5),
        policy_revision="r",
    )
    report = build_report(info, verdicts)
    if not stream:
        return history.record_sweep(report)
    sid = history.start_sweep(report["sweep"])
    for c in report["clusters"]:
        history.add_clusters(sid, [c])
    history.finish_sweep(sid, report["sweep"], report["summary"])
    return sid


def ages(history: History, sweep_id: str) -> dict[tuple[str, str], str]:
    report = history.load_report(sweep_id)
    return {
        (c["name"], f["path"]): f["firstSeen"] for c in report["clusters"] for f in c["findings"]
    }


def rows(history: History) -> int:
    with history._engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(finding_ages)).scalar_one())


def day(n: int) -> str:
    return (T0 + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_first_seen_lasts_while_the_finding_does(db_url: str) -> None:
    with open_history(db_url, upgrade=True) as history:
        s0 = record(history, 0, verdict("a", "/p/branch"), verdict("b"))
        assert ages(history, s0) == {("a", "/p/branch"): day(0)}
        s1 = record(history, 1, verdict("a", "/p/branch", "/p/prune"), verdict("b", "/p/x"))
        assert ages(history, s1) == {
            ("a", "/p/branch"): day(0),  # the same drift: still as old as it was
            ("a", "/p/prune"): day(1),
            ("b", "/p/x"): day(1),
        }
        # Fixed on a: its ledger rows go; b not judged this time keeps its age.
        s2 = record(history, 2, verdict("a", "/p/prune"))
        assert ages(history, s2) == {("a", "/p/prune"): day(1)}
        assert rows(history) == 2
        # The fixed drift comes back: it is new again. b is judged again: still day 1.
        s3 = record(history, 5, verdict("a", "/p/branch", "/p/prune"), verdict("b", "/p/x"))
        assert ages(history, s3) == {
            ("a", "/p/branch"): day(5),
            ("a", "/p/prune"): day(1),
            ("b", "/p/x"): day(1),
        }
        # Every finding fixed: the ledger is empty.
        record(history, 6, verdict("a"), verdict("b"))
        assert rows(history) == 0


def test_streamed_recording_gives_the_same_ages(db_url: str) -> None:
    with open_history(db_url, upgrade=True) as history:
        record(history, 0, verdict("a", "/p/branch"), stream=True)
        s1 = record(history, 3, verdict("a", "/p/branch", "/p/prune"), stream=True)
        assert ages(history, s1) == {("a", "/p/branch"): day(0), ("a", "/p/prune"): day(3)}


def test_a_report_recorded_again_keeps_its_times(tmp_path: Any) -> None:
    """Importing a report that carries ages (another database's) keeps the older time."""
    with open_history(f"sqlite:///{tmp_path / 'one.db'}", upgrade=True) as one:
        record(one, 0, verdict("a", "/p/branch"))
        later = one.load_report(record(one, 4, verdict("a", "/p/branch")))
    with open_history(f"sqlite:///{tmp_path / 'two.db'}", upgrade=True) as two:
        sid = two.record_sweep(later)
        assert ages(two, sid) == {("a", "/p/branch"): day(0)}
