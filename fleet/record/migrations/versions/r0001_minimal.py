"""0001: the minimal history of issue 4: sweeps, cluster verdicts, findings.

Kept exactly as first shipped, so that databases created by that version upgrade through the
same path as new ones. Never edit a released migration: add the next one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("policy_revision", sa.String(128), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text),
    )
    op.create_index("ix_sweeps_started_at", "sweeps", ["started_at"])
    op.create_table(
        "cluster_verdicts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "sweep_id",
            sa.String(64),
            sa.ForeignKey("sweeps.id", ondelete="CASCADE", name="fk_cluster_verdicts_sweep"),
            nullable=False,
        ),
        sa.Column("cluster_id", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
    )
    op.create_index("ix_cluster_verdicts_sweep_id", "cluster_verdicts", ["sweep_id"])
    op.create_table(
        "findings",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "verdict_id",
            _ID,
            sa.ForeignKey("cluster_verdicts.id", ondelete="CASCADE", name="fk_findings_verdict"),
            nullable=False,
        ),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("policy", sa.String(256)),
        sa.Column("resource", sa.String(2048), nullable=False),
        sa.Column("path", sa.Text),
        sa.Column("desired", sa.Text),
        sa.Column("actual", sa.Text),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_findings_verdict_id", "findings", ["verdict_id"])


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("cluster_verdicts")
    op.drop_table("sweeps")
