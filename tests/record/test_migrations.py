"""Schema versioning: ``History`` never migrates and refuses an empty, older or newer schema
with what to do; an upgrade (``open_history(..., upgrade=True)``) brings an issue-4 database
(revision 0001) to head without losing data; the migrated schema is the one the code queries."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect

from fleet.core.errors import SchemaOutOfDate, SchemaTooNew
from fleet.record import migrate, schema
from fleet.record.db import make_engine, redacted
from fleet.record.history import History, open_history
from fleet.settings import Settings
from tests.record.conftest import migrated_by_a_newer_fleet
from tests.record.test_history import unaged
from tests.report.sample import SWEEP_IDS, reports

# Issue 4's tables as its store wrote them (Core with SQLAlchemy types, as 0001 created them).
_SWEEPS_0001 = sa.table(
    "sweeps",
    sa.column("id", sa.String),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("finished_at", sa.DateTime(timezone=True)),
    sa.column("policy_revision", sa.String),
    sa.column("engine", sa.String),
    sa.column("summary", sa.Text),
)
_VERDICTS_0001 = sa.table(
    "cluster_verdicts",
    sa.column("id", sa.Integer),
    sa.column("sweep_id", sa.String),
    sa.column("cluster_id", sa.String),
    sa.column("name", sa.String),
    sa.column("state", sa.String),
    sa.column("verdict", sa.Text),
)
_FINDINGS_0001 = sa.table(
    "findings",
    sa.column("verdict_id", sa.Integer),
    sa.column("code", sa.String),
    sa.column("policy", sa.String),
    sa.column("resource", sa.String),
    sa.column("path", sa.Text),
    sa.column("desired", sa.Text),
    sa.column("actual", sa.Text),
    sa.column("message", sa.Text),
)


def _fill_0001(url: str) -> list[dict[str, Any]]:
    """Write two sweeps the way issue 4's store did: its three tables, its columns only."""
    engine = make_engine(url)
    written = reports()[:2]
    with engine.begin() as conn:
        for report in written:
            info = report["sweep"]
            conn.execute(
                _SWEEPS_0001.insert().values(
                    id=info["id"],
                    started_at=datetime.fromisoformat(info["startedAt"]),
                    finished_at=datetime.fromisoformat(info["finishedAt"]),
                    policy_revision=info["policyRevision"],
                    engine=info["engine"],
                    summary=json.dumps(report["summary"]),
                )
            )
            for c in report["clusters"]:
                verdict_id = conn.execute(
                    _VERDICTS_0001.insert()
                    .values(
                        sweep_id=info["id"],
                        cluster_id=c["id"],
                        name=c["name"],
                        state=c["state"],
                        verdict=json.dumps(c),
                    )
                    .returning(_VERDICTS_0001.c.id)
                ).scalar_one()
                for f in c["findings"]:
                    conn.execute(
                        _FINDINGS_0001.insert().values(
                            verdict_id=verdict_id,
                            code=f["code"],
                            policy=f["policy"],
                            resource=f["resource"],
                            path=f["path"],
                            desired=json.dumps(f["desired"]),
                            actual=json.dumps(f["actual"]),
                            message=f["message"],
                        )
                    )
    engine.dispose()
    return written


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_fresh_database_is_refused_not_migrated(db_url: str) -> None:
    with pytest.raises(SchemaOutOfDate) as caught:
        History(db_url)
    message = str(caught.value)
    assert redacted(db_url) in message and "holds no schema yet" in message
    assert f"needs revision {migrate.head()}" in message and "run: fleet db upgrade" in message
    assert (caught.value.found, caught.value.needed) == (None, migrate.head())
    password = sa.engine.make_url(db_url).password
    assert password is None or str(password) not in message
    with pytest.raises(SchemaOutOfDate):
        open_history(db_url, upgrade=False)
    with pytest.raises(SchemaOutOfDate):
        open_history(Settings(database_url=db_url, database_auto_upgrade=False))
    if db_url.startswith("sqlite"):
        assert not Path(sa.engine.make_url(db_url).database or "").exists()  # nothing created
    else:
        assert _tables(db_url) == set()


def test_an_older_database_names_both_revisions(db_url: str) -> None:
    migrate.upgrade(db_url, "0003")
    with pytest.raises(SchemaOutOfDate, match="is at schema revision 0003") as caught:
        History(db_url)
    assert f"needs revision {migrate.head()}" in str(caught.value)
    with open_history(Settings(database_url=db_url)) as history:  # the setting's default: on
        assert history.count() == 0
    History(db_url).close()  # at head: opens


def test_an_issue_4_database_upgrades_without_losing_data(db_url: str) -> None:
    migrate.upgrade(db_url, "0001")
    engine = make_engine(db_url)
    assert set(inspect(engine).get_table_names()) == {
        "sweeps",
        "cluster_verdicts",
        "findings",
        schema.VERSION_TABLE,
    }
    engine.dispose()
    old = _fill_0001(db_url)

    with pytest.raises(SchemaOutOfDate, match="0001"):
        History(db_url)
    with open_history(db_url, upgrade=True) as history:
        engine = history._engine
        with engine.connect() as conn:
            assert migrate.current(conn) == migrate.head()
        assert {"policy_states", "jobs", "arm_writes", "applied_fingerprints"} <= set(
            inspect(engine).get_table_names()
        )
        # The data survived, and reads back through today's API.
        assert history.resolve("latest") == SWEEP_IDS[1]
        for report in old:
            loaded = history.load_report(report["sweep"]["id"])
            assert loaded["clusters"] == json.loads(json.dumps(report["clusters"]))
            assert loaded["summary"] == json.loads(json.dumps(report["summary"]))
            assert loaded["sweep"]["startedAt"] == report["sweep"]["startedAt"]
            assert loaded["sweep"]["policyRevision"] == report["sweep"]["policyRevision"]
        # New columns and rows were backfilled from the JSON 0001 kept.
        with engine.connect() as conn:
            sweep = conn.execute(
                sa.select(schema.sweeps).where(schema.sweeps.c.id == SWEEP_IDS[1])
            ).one()
            assert sweep.cluster_count == old[1]["summary"]["clusters"]
            assert sweep.n_noncompliant == old[1]["summary"]["byState"]["noncompliant"]
            assert sweep.complete is True
            row = conn.execute(
                sa.select(schema.cluster_verdicts).where(
                    schema.cluster_verdicts.c.name == "aks-arm64",
                    schema.cluster_verdicts.c.sweep_id == SWEEP_IDS[1],
                )
            ).one()
            assert (row.subscription_id, row.extension_version, row.in_window) == (
                "00000000-0000-0000-0000-000000000002",
                "1.6.3",
                False,
            )
            assert row.cluster_key == row.cluster_id.lower()
            severities = dict(
                conn.execute(
                    sa.select(schema.findings.c.code, schema.findings.c.severity).where(
                        schema.findings.c.verdict_id == row.id
                    )
                ).all()
            )
            assert severities == {
                "EXTENSION_VERSION_OUT_OF_WINDOW": "medium",
                "EXTENSION_VERSION_UNSUPPORTED_ARCH": "high",
            }
            states = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.policy_states)
                .where(schema.policy_states.c.sweep_id == SWEEP_IDS[1])
            ).scalar_one()
            assert states == sum(len(c["policies"]) for c in old[1]["clusters"])
            unlinked = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.findings)
                .where(schema.findings.c.sweep_id.is_(None))
            ).scalar_one()
            assert unlinked == 0
        # Old and new data live side by side, and retention reaches the migrated rows.
        history.record_sweep(reports()[2])
        assert [p["id"] for p in history.trends()] == list(SWEEP_IDS)
        assert history.prune(1, now=datetime(2026, 11, 25, 5, tzinfo=UTC)) == 1
        with engine.connect() as conn:
            for table in (schema.findings, schema.policy_states, schema.cluster_verdicts):
                left = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.sweep_id == SWEEP_IDS[0])
                ).scalar_one()
                assert left == 0, table.name


def test_the_migrated_schema_is_the_one_the_code_queries(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    found = inspect(engine)
    try:
        for table in schema.metadata.sorted_tables:
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, (
                    table.name,
                    column.name,
                )
            indexes = {i["name"] for i in found.get_indexes(table.name)}
            assert {i.name for i in table.indexes} <= indexes, table.name
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    with open_history(db_url, upgrade=True) as history:
        history.record_sweep(reports()[0])
    migrate.downgrade(db_url, "0001")
    with pytest.raises(SchemaOutOfDate, match="0001"):
        History(db_url)
    with open_history(db_url, upgrade=True) as history:
        assert unaged(history.load_report(SWEEP_IDS[0]))["clusters"] == json.loads(
            json.dumps(reports()[0]["clusters"])
        )


def test_a_newer_schema_is_refused(db_url: str) -> None:
    migrated_by_a_newer_fleet(db_url)
    with pytest.raises(SchemaTooNew, match="newer than this fleet"):
        History(db_url)
    with pytest.raises(SchemaTooNew, match="newer than this fleet"):
        open_history(db_url, upgrade=True)
    with pytest.raises(SchemaTooNew, match="schema revision 9999,"):  # not touched
        migrate.stored(db_url)


def test_concurrent_first_upgrades_migrate_once(db_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_history(db_url, upgrade=True).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with History(db_url) as history, history._engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
