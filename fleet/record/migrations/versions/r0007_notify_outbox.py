"""0007 (notifications): the outbox of webhook events and the findings already announced.

- ``notify_outbox``: one row per event and webhook target (the target's label, never its URL):
  the CloudEvent as JSON, its delivery status (``pending``, ``delivered``, ``failed``), how
  many attempts were made, when the next one is due and the last error (a status code or an
  error class, never a message that could quote the URL).
- ``notify_findings``: per finding key (a hash of code, policy, resource, path) the last state
  announced (``drift`` or ``fixed``), so that a finding is never announced twice unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_outbox",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(256), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256)),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(256)),
    )
    op.create_index("ix_notify_outbox_status_next", "notify_outbox", ["status", "next_attempt_at"])
    op.create_table(
        "notify_findings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sweep_id", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notify_findings")
    op.drop_index("ix_notify_outbox_status_next", table_name="notify_outbox")
    op.drop_table("notify_outbox")
