"""The history database's tables at the current schema revision (for queries).

The schema itself is created and upgraded by the Alembic migrations in
``fleet/record/migrations/versions`` (``fleet.record.migrate``); this module mirrors their end
state so that the store can build typed SQLAlchemy Core statements. A test checks that the two
agree (``tests/record/test_migrations.py``): change both together and add a migration.

Layout (one sweep has many cluster verdicts; a verdict has per-policy states and findings):

- ``sweeps``: one row per sweep: the report's ``sweep`` object and ``summary`` as JSON, plus
  the columns dashboards filter on (time, revision, completeness, counts per state).
- ``cluster_verdicts``: one row per cluster per sweep: identity columns, state, extension
  version, and the verdict exactly as recorded (``Verdict.to_report()``) as JSON.
- ``policy_states``, ``findings``: the verdict's parts as rows, for SQL questions such as
  "which clusters had FLUX_CONFIG_DRIFT on policy X last month".
- ``jobs``, ``arm_writes``, ``applied_fingerprints``: remediation jobs and the audit trail of
  every ARM write; fingerprints (never values) of the protected settings fleet applied.
- ``job_clusters``: each cluster of a remediation job: wave, status, reason, and the actions
  applied (secret references only), which ``fleet remediate --retry`` re-applies.
- ``controls``: installation-wide switches by name (the kill switch), JSON values.
- ``audit_events``: what people did (jobs started, approved, cancelled; the kill switch), by
  whom and when; insert-only.
- ``cluster_locks``: which local job writes a cluster now (until its lock expires).
- ``notify_outbox``, ``notify_findings``: webhook events waiting for (or past) delivery, one
  row per event and target; the findings already announced, by key hash.
- ``finding_ages``: when each finding still present was first seen, by key hash and cluster
  (drift age, ``fleet.record.finding_ages``).

Children carry ``sweep_id`` too, so retention deletes by an indexed column without joins.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from fleet.record.db import JsonText

#: Alembic's bookkeeping table. Not ``alembic_version``: the database may be shared with
#: another application that uses Alembic too.
VERSION_TABLE = "fleet_schema_version"

#: Surrogate keys: 64-bit on PostgreSQL, and SQLite's INTEGER PRIMARY KEY (the rowid) there.
Id = BigInteger().with_variant(Integer(), "sqlite")

#: Cluster ids compare and sort bytewise (``COLLATE "C"`` on PostgreSQL), so clusters come
#: back in the same order on every backend: the order ``build_report`` sorts them in.
ClusterKey = String(1024).with_variant(String(1024, collation="C"), "postgresql")

metadata = MetaData()

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("policy_revision", String(128), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("summary", JsonText),
    Column("inventory", String(32), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("interrupted", Boolean, nullable=False),
    Column("targets", Integer, nullable=False),
    Column("cluster_count", Integer, nullable=False),
    Column("compliance_percent", Float),
    Column("n_compliant", Integer, nullable=False),
    Column("n_noncompliant", Integer, nullable=False),
    Column("n_conflicting", Integer, nullable=False),
    Column("n_exempt", Integer, nullable=False),
    Column("n_unknown", Integer, nullable=False),
    Column("n_error", Integer, nullable=False),
    Column("findings_count", Integer, nullable=False),
    Column("requests", JsonText),
    Column("info", JsonText),
    Column("extra", JsonText),
    Index("ix_sweeps_started_at", "started_at"),
)

cluster_verdicts = Table(
    "cluster_verdicts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sweep_id", String(64), ForeignKey("sweeps.id", ondelete="CASCADE"), nullable=False),
    Column("cluster_id", String(1024), nullable=False),
    Column("name", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("verdict", JsonText, nullable=False),
    Column("cluster_key", ClusterKey, nullable=False),
    Column("type", String(32), nullable=False),
    Column("subscription_id", String(64), nullable=False),
    Column("resource_group", String(128), nullable=False),
    Column("location", String(64), nullable=False),
    Column("status", String(64)),
    Column("extension_version", String(64)),
    Column("in_window", Boolean),
    Column("tags", JsonText),
    Index("ix_cluster_verdicts_sweep_key", "sweep_id", "cluster_key"),
    Index("ix_cluster_verdicts_key", "cluster_key", "sweep_id"),
    Index("ix_cluster_verdicts_sweep_state", "sweep_id", "state"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("verdict_id", Id, ForeignKey("cluster_verdicts.id", ondelete="CASCADE"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("policy", String(256)),
    Column("resource", String(2048), nullable=False),
    Column("path", Text),
    Column("desired", JsonText),
    Column("actual", JsonText),
    Column("message", Text, nullable=False),
    Column("sweep_id", String(64), ForeignKey("sweeps.id", ondelete="CASCADE")),
    Column("severity", String(16), nullable=False),
    Index("ix_findings_verdict_id", "verdict_id"),
    Index("ix_findings_sweep_code", "sweep_id", "code"),
)

policy_states = Table(
    "policy_states",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sweep_id", String(64), ForeignKey("sweeps.id", ondelete="CASCADE"), nullable=False),
    Column("verdict_id", Id, ForeignKey("cluster_verdicts.id", ondelete="CASCADE"), nullable=False),
    Column("policy", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("mode", String(16)),
    Index("ix_policy_states_sweep_policy", "sweep_id", "policy", "state"),
    Index("ix_policy_states_verdict_id", "verdict_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("principal", String(256)),
    Column("plan_digest", String(128)),
    Column("sweep_id", String(64)),
    Column("policy_revision", String(128)),
    Column("options", JsonText),
    Column("counters", JsonText),
    Column("summary", JsonText),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("approvals", JsonText),
    Index("ix_jobs_created_at", "created_at"),
)

arm_writes = Table(
    "arm_writes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", String(64), ForeignKey("jobs.id", ondelete="CASCADE")),
    Column("cluster_id", String(1024), nullable=False),
    Column("cluster_key", ClusterKey, nullable=False),
    Column("resource_id", String(2048), nullable=False),
    Column("action", String(64), nullable=False),
    Column("method", String(16), nullable=False),
    Column("body_digest", String(80)),
    Column("principal", String(256)),
    Column("correlation_id", String(128)),
    Column("wave", String(128)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", String(32), nullable=False),
    Column("status_code", Integer),
    Column("error_code", String(256)),
    Column("error_message", Text),
    Column("continuation_token", Text),
    Index("ix_arm_writes_job_id", "job_id", "id"),
    Index("ix_arm_writes_cluster_key", "cluster_key", "id"),
)

applied_fingerprints = Table(
    "applied_fingerprints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("resource_key", String(2048), nullable=False),
    Column("setting", String(512), nullable=False),
    Column("fingerprint", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    # Not a foreign key: fingerprints must outlive the jobs that applied them (job records may
    # be pruned, the secret on the cluster is still the one fleet applied).
    Column("job_id", String(64)),
    Index("ix_applied_fingerprints_resource", "resource_key", "setting", "applied_at"),
)

job_clusters = Table(
    "job_clusters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", String(64), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("cluster_id", String(1024), nullable=False),
    Column("cluster_key", ClusterKey, nullable=False),
    Column("name", String(256), nullable=False),
    Column("wave", String(128)),
    Column("status", String(32), nullable=False),
    Column("reason", Text),
    Column("facts", JsonText),
    Column("actions", JsonText),
    Column("outcome", JsonText),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_job_clusters_job_key", "job_id", "cluster_key", unique=True),
    Index("ix_job_clusters_job_status", "job_id", "status"),
)

controls = Table(
    "controls",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", JsonText),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(256)),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor_oid", String(128)),
    Column("actor_name", String(256), nullable=False),
    Column("via", String(16), nullable=False),
    # Not a foreign key: the trail must outlive the jobs it mentions.
    Column("job_id", String(64)),
    Column("wave", String(128)),
    Column("detail", JsonText),
    Index("ix_audit_events_job_id", "job_id", "id"),
)

cluster_locks = Table(
    "cluster_locks",
    metadata,
    Column("cluster_key", ClusterKey, primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

notify_outbox = Table(
    "notify_outbox",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("target", String(256), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("subject", String(256)),
    Column("event", JsonText, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("last_error", String(256)),
    Index("ix_notify_outbox_status_next", "status", "next_attempt_at"),
)

notify_findings = Table(
    "notify_findings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("sweep_id", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

finding_ages = Table(
    "finding_ages",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("cluster_key", ClusterKey, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("sweep_id", String(64)),
    Index("ix_finding_ages_cluster", "cluster_key"),
)
