"""0004: what remediation jobs need beyond 0003: per-cluster job state, job control, LRO tokens.

- ``job_clusters``: one row per cluster of a remediation job: its wave, status (pending, fixed,
  failed, skipped, retry, not-started), the reason, the cluster facts and the actions the job
  applies to it (full desired bodies with protected settings as *references*, never values),
  so ``fleet remediate --retry JOB`` can re-apply exactly the same desired state;
- ``jobs.cancel_requested`` and ``jobs.approvals``: the controls another terminal uses
  (``fleet jobs cancel``, ``fleet jobs approve``) while the job runs;
- ``arm_writes.continuation_token``: the SDK's continuation token of a long-running operation
  (request method and URL, ARM's response, never the request body), so another process can
  resume polling it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("arm_writes") as batch:
        batch.add_column(sa.Column("continuation_token", sa.Text))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("approvals", sa.Text))
    op.create_table(
        "job_clusters",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "job_id",
            sa.String(64),
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_job_clusters_job"),
            nullable=False,
        ),
        sa.Column("cluster_id", sa.String(1024), nullable=False),
        sa.Column("cluster_key", _KEY, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("wave", sa.String(128)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("facts", sa.Text),
        sa.Column("actions", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_job_clusters_job_key", "job_clusters", ["job_id", "cluster_key"], unique=True
    )
    op.create_index("ix_job_clusters_job_status", "job_clusters", ["job_id", "status"])


def downgrade() -> None:
    op.drop_table("job_clusters")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("approvals")
        batch.drop_column("cancel_requested")
    with op.batch_alter_table("arm_writes") as batch:
        batch.drop_column("continuation_token")
