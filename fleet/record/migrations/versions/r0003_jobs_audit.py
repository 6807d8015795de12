"""0003: remediation jobs, the audit trail of ARM writes, and applied secret fingerprints.

``arm_writes`` records who wrote what, where and with which outcome; a request body is never
stored, only a digest of it with protected settings removed. ``applied_fingerprints`` holds
keyed HMAC fingerprints of the protected settings fleet applied (never the values): ARM does not
return secrets, so this is the only way to notice that a secret was rotated.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("principal", sa.String(256)),
        sa.Column("plan_digest", sa.String(128)),
        sa.Column("sweep_id", sa.String(64)),
        sa.Column("policy_revision", sa.String(128)),
        sa.Column("options", sa.Text),
        sa.Column("counters", sa.Text),
        sa.Column("summary", sa.Text),
    )
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_table(
        "arm_writes",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "job_id",
            sa.String(64),
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_arm_writes_job"),
        ),
        sa.Column("cluster_id", sa.String(1024), nullable=False),
        sa.Column("cluster_key", _KEY, nullable=False),
        sa.Column("resource_id", sa.String(2048), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("body_digest", sa.String(80)),
        sa.Column("principal", sa.String(256)),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("wave", sa.String(128)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error_code", sa.String(256)),
        sa.Column("error_message", sa.Text),
    )
    op.create_index("ix_arm_writes_job_id", "arm_writes", ["job_id", "id"])
    op.create_index("ix_arm_writes_cluster_key", "arm_writes", ["cluster_key", "id"])
    op.create_table(
        "applied_fingerprints",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("resource_key", sa.String(2048), nullable=False),
        sa.Column("setting", sa.String(512), nullable=False),
        sa.Column("fingerprint", sa.String(200), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(64)),
    )
    op.create_index(
        "ix_applied_fingerprints_resource",
        "applied_fingerprints",
        ["resource_key", "setting", "applied_at"],
    )


def downgrade() -> None:
    op.drop_table("applied_fingerprints")
    op.drop_table("arm_writes")
    op.drop_table("jobs")
