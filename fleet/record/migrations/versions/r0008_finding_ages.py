"""0008 (drift age): when each finding that is still there was first seen.

- ``finding_ages``: per finding key (a hash of code, policy, resource, path, the key of
  ``fleet.core.finding_keys``, the same the notification ledger uses) the cluster it belongs
  to, when a recorded sweep first saw it (that sweep's start) and that sweep's id. A row lives
  while the finding does: when a sweep judges the cluster and the finding is gone, the row is
  deleted, so drift that comes back is new again. Reports show the age ("drifted for 3 d").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_KEY = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "finding_ages",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("cluster_key", _KEY, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sweep_id", sa.String(64)),
    )
    op.create_index("ix_finding_ages_cluster", "finding_ages", ["cluster_key"])


def downgrade() -> None:
    op.drop_index("ix_finding_ages_cluster", table_name="finding_ages")
    op.drop_table("finding_ages")
