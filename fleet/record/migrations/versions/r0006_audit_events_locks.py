"""0006: the audit trail of people's actions, and per-cluster write locks of local jobs.

- ``audit_events``: one row per thing a person did to the installation: a job started,
  approved or cancelled, the kill switch engaged or released, a sweep started. Who (the
  caller's Entra ID ``oid`` and display name, or the local OS user), when, through what (the
  API or the command line), on which job and wave, and a few details as JSON. Rows are only
  ever inserted: nothing in fleet updates or deletes them.
- ``cluster_locks``: which job writes a cluster now, until when. The local engine takes a
  cluster's lock before its first write and releases it once the cluster is settled, so two
  jobs (two terminals, or the server and a terminal) never write one cluster at once; a lock
  left by a dead process expires on its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor_oid", sa.String(128)),
        sa.Column("actor_name", sa.String(256), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(64)),
        sa.Column("wave", sa.String(128)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_events_job_id", "audit_events", ["job_id", "id"])
    op.create_table(
        "cluster_locks",
        sa.Column("cluster_key", _KEY, primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_locks")
    op.drop_table("audit_events")
