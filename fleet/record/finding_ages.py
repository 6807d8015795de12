"""Drift age: when each finding was first seen, kept by finding key while it lasts.

Recording a sweep's verdicts (``fleet.record.sweep_recording``) passes each batch through
``stamp_ages`` in the same transaction: a finding the ledger knows gets the ``firstSeen`` it
was first recorded with; a new one is entered with the start of this sweep; a finding of a
judged cluster that is no longer there is deleted from the ledger, so drift that comes back
is new again. The key is ``fleet.core.finding_keys`` (code, policy, resource, path), the
identity ``fleet report diff`` and the notification ledger use, so "new drift", "announced"
and "drifted for 3 d" agree on what one finding is.

Cost: one indexed ``SELECT ... WHERE cluster_key IN (...)`` per batch, one multi-row INSERT of
the new findings, one DELETE of the fixed ones; nothing is written for findings that persist.
Concurrent recorders of the same cluster race harmlessly (an INSERT that loses keeps the
winner's time). Rows of a cluster that leaves the fleet stay (a few per finding it had).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from fleet.core.finding_keys import finding_key, key_hash
from fleet.core.ids import key as id_key
from fleet.record.db import chunks, iso, parse_time, utc
from fleet.record.schema import finding_ages

#: Cluster keys per ``IN (...)`` list (SQLite allows 32,766 parameters; keep it small).
_IN = 500


def stamp_ages(
    conn: Connection,
    sweep_id: str,
    seen_at: datetime,
    clusters: Sequence[Mapping[str, Any]],
    *,
    postgres: bool,
) -> list[dict[str, Any]]:
    """Copies of ``clusters`` whose findings carry ``firstSeen``; the ledger brought up to
    date for these clusters, in the caller's transaction."""
    keys = sorted({id_key(str(c["id"])) for c in clusters})
    known: dict[str, datetime] = {}
    by_cluster: dict[str, set[str]] = {}
    for part in chunks(keys, _IN):
        rows = conn.execute(
            select(
                finding_ages.c.key, finding_ages.c.cluster_key, finding_ages.c.first_seen_at
            ).where(finding_ages.c.cluster_key.in_(list(part)))
        )
        for row in rows:
            first = utc(row.first_seen_at)
            if first is not None:
                known[row.key] = first
            by_cluster.setdefault(row.cluster_key, set()).add(row.key)
    out: list[dict[str, Any]] = []
    new: dict[str, dict[str, Any]] = {}
    gone: list[str] = []
    for c in clusters:
        ckey = id_key(str(c["id"]))
        present: set[str] = set()
        stamped = []
        for f in c.get("findings") or ():
            h = key_hash(finding_key(f))
            present.add(h)
            first = known.get(h) or (new[h]["first_seen_at"] if h in new else None)
            if first is None:
                # A report recorded again (an import) keeps the time it already carries.
                first = min(seen_at, parse_time(f.get("firstSeen")) or seen_at)
                new[h] = {
                    "key": h,
                    "cluster_key": ckey,
                    "first_seen_at": first,
                    "sweep_id": sweep_id,
                }
            stamped.append({**f, "firstSeen": iso(first)})
        gone += sorted(by_cluster.get(ckey, set()) - present)
        out.append({**c, "findings": stamped} if c.get("findings") else dict(c))
    if gone:
        for part in chunks(gone, _IN):
            conn.execute(delete(finding_ages).where(finding_ages.c.key.in_(list(part))))
    if new:
        dialect = postgresql if postgres else sqlite
        for part in chunks(list(new.values()), _IN):
            conn.execute(dialect.insert(finding_ages).on_conflict_do_nothing(), list(part))
    return out


def read_ages(conn: Connection, cluster_ids: Sequence[str]) -> dict[str, datetime]:
    """First-seen time by finding key hash of every finding the ledger keeps for these
    clusters (for a report printed before it was read back, ``History.with_ages``)."""
    keys = sorted({id_key(str(c)) for c in cluster_ids})
    known: dict[str, datetime] = {}
    for part in chunks(keys, _IN):
        rows = conn.execute(
            select(finding_ages.c.key, finding_ages.c.first_seen_at).where(
                finding_ages.c.cluster_key.in_(list(part))
            )
        )
        for row in rows:
            first = utc(row.first_seen_at)
            if first is not None:
                known[row.key] = first
    return known


def with_ages(
    clusters: Sequence[Mapping[str, Any]], known: Mapping[str, datetime]
) -> list[dict[str, Any]]:
    """Copies of ``clusters`` whose findings carry the ``firstSeen`` the ledger knows."""
    out = []
    for c in clusters:
        findings = [
            {**f, "firstSeen": iso(known.get(key_hash(finding_key(f)))) or f.get("firstSeen")}
            for f in c.get("findings") or ()
        ]
        out.append({**c, "findings": findings} if findings else dict(c))
    return out
