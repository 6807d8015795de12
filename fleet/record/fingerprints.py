"""Fingerprints of the secrets fleet applied, so that secret drift can be judged.

ARM never returns protected settings, so what fleet applied is remembered as keyed HMAC
fingerprints (``fleet.desired.fingerprints.fingerprint``), one row per resource, setting and
time (with the Key Vault version id for a secret read from a vault); the latest per setting
is what a sweep compares the desired fingerprint with. Anything not
shaped like a fingerprint is refused without being echoed: it may be the secret itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import insert, select

from fleet.core.ids import key as id_key
from fleet.record.db import Store, chunks, now_utc, utc
from fleet.record.schema import applied_fingerprints as fp_table

#: ``hmac-sha256:`` + hex, as ``fleet.desired.fingerprints.fingerprint`` makes them, with the
#: Key Vault version id after ``@`` for a secret read from a vault. Anything else is refused: a
#: caller passing a secret value by mistake must not get it stored.
_FINGERPRINT = re.compile(r"^(?:[a-z0-9-]+:)?[0-9a-f]{16,128}(?:@[0-9A-Za-z]{1,64})?$")


class AppliedFingerprints(Store):
    """Records and reads applied fingerprints (a part of ``History``)."""

    def record_fingerprints(
        self,
        resource_id: str,
        fingerprints: Mapping[str, str],
        job_id: str | None = None,
        *,
        applied_at: datetime | None = None,
    ) -> int:
        """Remember the fingerprints of the protected settings just applied to a resource."""
        at = utc(applied_at) or now_utc()
        rows = []
        for setting, fp in sorted(fingerprints.items()):
            if not isinstance(fp, str) or not _FINGERPRINT.match(fp):
                # Never echo the value: it may be the very secret that must not be stored.
                raise ValueError(
                    f"setting {setting!r}: not a fingerprint (expected hmac-sha256:<hex>)"
                )
            rows.append(
                {
                    "resource_key": id_key(resource_id),
                    "setting": setting,
                    "fingerprint": fp,
                    "applied_at": at,
                    "job_id": job_id,
                }
            )
        if rows:
            with self._engine.begin() as conn:
                conn.execute(insert(fp_table), rows)
        return len(rows)

    def applied_fingerprints(
        self, resource_keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, str]]:
        """The latest fingerprint per resource and setting: ``{resource key: {setting: fp}}``.

        ``resource_keys`` are ARM ids (any case; keys are lower-cased); None means every
        resource (what a sweep loads once at its start).
        """
        out: dict[str, dict[str, str]] = {}
        base = select(fp_table.c.resource_key, fp_table.c.setting, fp_table.c.fingerprint).order_by(
            fp_table.c.resource_key, fp_table.c.setting, fp_table.c.applied_at, fp_table.c.id
        )
        with self._engine.connect() as conn:
            if resource_keys is None:
                queries = [base]
            else:
                wanted = sorted({id_key(k) for k in resource_keys})
                queries = [
                    base.where(fp_table.c.resource_key.in_(chunk)) for chunk in chunks(wanted, 500)
                ]
            for query in queries:
                for row in conn.execute(query):
                    # Ordered by time: the last one seen is the latest.
                    out.setdefault(row.resource_key, {})[row.setting] = row.fingerprint
        return out
