"""0002: everything the reports and dashboards query, backfilled from the recorded JSON.

- ``sweeps``: inventory, completeness, targets, counts per state, compliance, requests, and the
  whole ``sweep`` object (``info``) so a report reads back exactly as recorded;
- ``cluster_verdicts``: the cluster's identity columns, extension version and window, tags,
  and a case-insensitive ``cluster_key`` to follow one cluster across sweeps;
- ``findings``: ``severity`` and ``sweep_id`` (retention deletes by it without joins);
- ``policy_states``: one row per cluster and policy.

Old rows are backfilled from the verdict and summary JSON that 0001 already stored, so nothing
recorded before the upgrade is lost or reads back differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")
_STATES = ("compliant", "noncompliant", "conflicting", "exempt", "unknown", "error")
_PAGE = 1000

# Frozen views of the tables as this migration sees them (never the live schema module).
_sweeps = sa.table(
    "sweeps",
    sa.column("id", sa.String),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("finished_at", sa.DateTime(timezone=True)),
    sa.column("policy_revision", sa.String),
    sa.column("engine", sa.String),
    sa.column("summary", sa.Text),
    sa.column("complete", sa.Boolean),
    sa.column("cluster_count", sa.Integer),
    sa.column("compliance_percent", sa.Float),
    sa.column("findings_count", sa.Integer),
    sa.column("info", sa.Text),
    *(sa.column(f"n_{s}", sa.Integer) for s in _STATES),
)
_verdicts = sa.table(
    "cluster_verdicts",
    sa.column("id", _ID),
    sa.column("sweep_id", sa.String),
    sa.column("cluster_id", sa.String),
    sa.column("verdict", sa.Text),
    sa.column("cluster_key", sa.String),
    sa.column("type", sa.String),
    sa.column("subscription_id", sa.String),
    sa.column("resource_group", sa.String),
    sa.column("location", sa.String),
    sa.column("status", sa.String),
    sa.column("extension_version", sa.String),
    sa.column("in_window", sa.Boolean),
    sa.column("tags", sa.Text),
)
_findings = sa.table(
    "findings",
    sa.column("id", _ID),
    sa.column("verdict_id", _ID),
    sa.column("code", sa.String),
    sa.column("resource", sa.String),
    sa.column("path", sa.Text),
    sa.column("sweep_id", sa.String),
    sa.column("severity", sa.String),
)


def upgrade() -> None:
    _sweep_columns()
    _verdict_columns()
    _finding_columns()
    op.create_table(
        "policy_states",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "sweep_id",
            sa.String(64),
            sa.ForeignKey("sweeps.id", ondelete="CASCADE", name="fk_policy_states_sweep"),
            nullable=False,
        ),
        sa.Column(
            "verdict_id",
            _ID,
            sa.ForeignKey(
                "cluster_verdicts.id", ondelete="CASCADE", name="fk_policy_states_verdict"
            ),
            nullable=False,
        ),
        sa.Column("policy", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16)),
    )
    op.create_index(
        "ix_policy_states_sweep_policy", "policy_states", ["sweep_id", "policy", "state"]
    )
    op.create_index("ix_policy_states_verdict_id", "policy_states", ["verdict_id"])
    _backfill_sweeps()
    _backfill_verdicts()


def downgrade() -> None:
    op.drop_table("policy_states")
    with op.batch_alter_table("findings") as batch:
        batch.drop_index("ix_findings_sweep_code")
        batch.drop_constraint("fk_findings_sweep", type_="foreignkey")
        batch.drop_column("sweep_id")
        batch.drop_column("severity")
    with op.batch_alter_table("cluster_verdicts") as batch:
        batch.create_index("ix_cluster_verdicts_sweep_id", ["sweep_id"])
        for name in (
            "ix_cluster_verdicts_sweep_key",
            "ix_cluster_verdicts_key",
            "ix_cluster_verdicts_sweep_state",
        ):
            batch.drop_index(name)
        for column in (
            "cluster_key",
            "type",
            "subscription_id",
            "resource_group",
            "location",
            "status",
            "extension_version",
            "in_window",
            "tags",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("sweeps") as batch:
        for column in (
            "inventory",
            "complete",
            "interrupted",
            "targets",
            "cluster_count",
            "compliance_percent",
            *(f"n_{s}" for s in _STATES),
            "findings_count",
            "requests",
            "info",
            "extra",
        ):
            batch.drop_column(column)


# --- schema ------------------------------------------------------------------------------


def _sweep_columns() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(
            sa.Column("inventory", sa.String(32), nullable=False, server_default="arm")
        )
        batch.add_column(
            sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("interrupted", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("targets", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("cluster_count", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("compliance_percent", sa.Float))
        for state in _STATES:
            batch.add_column(
                sa.Column(f"n_{state}", sa.Integer, nullable=False, server_default="0")
            )
        batch.add_column(
            sa.Column("findings_count", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("requests", sa.Text))
        batch.add_column(sa.Column("info", sa.Text))
        batch.add_column(sa.Column("extra", sa.Text))


def _verdict_columns() -> None:
    with op.batch_alter_table("cluster_verdicts") as batch:
        batch.add_column(sa.Column("cluster_key", _KEY, nullable=False, server_default=""))
        batch.add_column(sa.Column("type", sa.String(32), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("subscription_id", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("resource_group", sa.String(128), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("location", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("status", sa.String(64)))
        batch.add_column(sa.Column("extension_version", sa.String(64)))
        batch.add_column(sa.Column("in_window", sa.Boolean))
        batch.add_column(sa.Column("tags", sa.Text))
        # (sweep_id, cluster_key) serves every lookup by sweep: 0001's sweep_id index goes.
        batch.drop_index("ix_cluster_verdicts_sweep_id")
        batch.create_index("ix_cluster_verdicts_sweep_key", ["sweep_id", "cluster_key"])
        batch.create_index("ix_cluster_verdicts_key", ["cluster_key", "sweep_id"])
        batch.create_index("ix_cluster_verdicts_sweep_state", ["sweep_id", "state"])


def _finding_columns() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("sweep_id", sa.String(64)))
        batch.add_column(
            sa.Column("severity", sa.String(16), nullable=False, server_default="medium")
        )
        batch.create_foreign_key(
            "fk_findings_sweep", "sweeps", ["sweep_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_findings_sweep_code", ["sweep_id", "code"])


# --- data ----------------------------------------------------------------------------------


def _json(text: Any) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _backfill_sweeps() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            _sweeps.c.id,
            _sweeps.c.started_at,
            _sweeps.c.finished_at,
            _sweeps.c.policy_revision,
            _sweeps.c.engine,
            _sweeps.c.summary,
        )
    ).all()
    for row in rows:
        summary = _json(row.summary) or {}
        by_state = summary.get("byState") or {}
        totals = summary.get("findingsTotal") or summary.get("byFinding") or {}
        started, finished = row.started_at, row.finished_at
        duration = None
        if started is not None and finished is not None:
            duration = round((finished - started).total_seconds(), 3)
        # 0001 kept only these sweep fields; the report's other keys get their defaults.
        info = {
            "id": row.id,
            "startedAt": _iso(started),
            "finishedAt": _iso(finished),
            "policyRevision": row.policy_revision,
            "engine": row.engine,
            "complete": finished is not None,
            "durationSeconds": duration,
        }
        values: dict[str, Any] = {
            "complete": finished is not None,
            "cluster_count": int(summary.get("clusters") or 0),
            "compliance_percent": summary.get("compliancePercent"),
            "findings_count": int(sum(v for v in totals.values() if isinstance(v, int))),
            "info": json.dumps(info),
        }
        for state in _STATES:
            values[f"n_{state}"] = int(by_state.get(state) or 0)
        bind.execute(_sweeps.update().where(_sweeps.c.id == row.id).values(**values))


def _pages() -> Iterator[Sequence[Any]]:
    bind = op.get_bind()
    last = -1
    while True:
        page = bind.execute(
            sa.select(
                _verdicts.c.id, _verdicts.c.sweep_id, _verdicts.c.cluster_id, _verdicts.c.verdict
            )
            .where(_verdicts.c.id > last)
            .order_by(_verdicts.c.id)
            .limit(_PAGE)
        ).all()
        if not page:
            return
        yield page
        last = page[-1].id


def _backfill_verdicts() -> None:
    bind = op.get_bind()
    policy_states = sa.table(
        "policy_states",
        sa.column("sweep_id", sa.String),
        sa.column("verdict_id", _ID),
        sa.column("policy", sa.String),
        sa.column("state", sa.String),
        sa.column("mode", sa.String),
    )
    for page in _pages():
        updates: list[dict[str, Any]] = []
        states: list[dict[str, Any]] = []
        severities: list[dict[str, Any]] = []
        ids = [row.id for row in page]
        existing: dict[int, list[Any]] = {}
        for f in bind.execute(
            sa.select(
                _findings.c.id,
                _findings.c.verdict_id,
                _findings.c.code,
                _findings.c.resource,
                _findings.c.path,
            )
            .where(_findings.c.verdict_id.in_(ids))
            .order_by(_findings.c.id)
        ):
            existing.setdefault(f.verdict_id, []).append(f)
        for row in page:
            v = _json(row.verdict) or {}
            window = v.get("extensionVersionInWindow")
            updates.append(
                {
                    "b_id": row.id,
                    "cluster_key": str(row.cluster_id).rstrip("/").lower(),
                    "type": str(v.get("type") or ""),
                    "subscription_id": str(v.get("subscriptionId") or ""),
                    "resource_group": str(v.get("resourceGroup") or ""),
                    "location": str(v.get("location") or ""),
                    "status": v.get("status"),
                    "extension_version": v.get("extensionVersion"),
                    "in_window": window if isinstance(window, bool) else None,
                    "tags": json.dumps(v.get("tags") or {}),
                }
            )
            for p in v.get("policies") or ():
                if isinstance(p, dict) and p.get("name") and p.get("state"):
                    states.append(
                        {
                            "sweep_id": row.sweep_id,
                            "verdict_id": row.id,
                            "policy": p["name"],
                            "state": p["state"],
                            "mode": p.get("mode"),
                        }
                    )
            # The verdict JSON holds each finding's severity; 0001's rows are in the same order.
            documented = [f for f in v.get("findings") or () if isinstance(f, dict)]
            for i, f in enumerate(existing.get(row.id, ())):
                match = (
                    documented[i]
                    if i < len(documented) and documented[i].get("code") == f.code
                    else next(
                        (
                            d
                            for d in documented
                            if (d.get("code"), d.get("resource"), d.get("path"))
                            == (f.code, f.resource, f.path)
                        ),
                        {},
                    )
                )
                severities.append(
                    {"b_id": f.id, "severity": str(match.get("severity") or "medium")}
                )
        if updates:
            bind.execute(
                _verdicts.update()
                .where(_verdicts.c.id == sa.bindparam("b_id"))
                .values(**{k: sa.bindparam(k) for k in updates[0] if k != "b_id"}),
                updates,
            )
        if severities:
            bind.execute(
                _findings.update()
                .where(_findings.c.id == sa.bindparam("b_id"))
                .values(severity=sa.bindparam("severity")),
                severities,
            )
        if states:
            bind.execute(policy_states.insert(), states)
    # Findings learn their sweep from their verdict (one statement, any backend).
    bind.execute(
        _findings.update().values(
            sweep_id=sa.select(_verdicts.c.sweep_id)
            .where(_verdicts.c.id == _findings.c.verdict_id)
            .scalar_subquery()
        )
    )
