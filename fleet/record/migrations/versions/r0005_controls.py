"""0005: installation-wide controls (the kill switch).

- ``controls``: one row per named control of the installation, its value as JSON, when and by
  whom it was last set. The first control is ``kill-switch`` (``fleet jobs kill-switch``):
  while engaged, every running job stops at its next step and no new job starts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "controls",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(256)),
    )


def downgrade() -> None:
    op.drop_table("controls")
