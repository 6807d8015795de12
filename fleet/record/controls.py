"""Installation-wide controls: named values every fleet process reads, the kill switch's row
first among them (``fleet.jobs.killswitch``).

A control is one row per name holding a JSON value and who set it when. The last writer wins;
two processes setting a control for the first time at once do not fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from fleet.record.db import Store, iso, now_utc
from fleet.record.schema import controls


class Controls(Store):
    """Reads and sets controls (a part of ``History``)."""

    def control(self, name: str) -> dict[str, Any] | None:
        """A control's value (with ``updatedAt``/``updatedBy``), or None when never set."""
        with self._engine.connect() as conn:
            row = conn.execute(select(controls).where(controls.c.name == name)).first()
        if row is None or row.value is None:
            return None
        value = dict(row.value)
        value.update(updatedAt=iso(row.updated_at), updatedBy=row.updated_by)
        return value

    def set_control(
        self, name: str, value: Mapping[str, Any] | None, *, by: str | None = None
    ) -> None:
        """Set (or, with None, clear) a control; the last writer wins."""
        values = {
            "value": dict(value) if value is not None else None,
            "updated_at": now_utc(),
            "updated_by": by,
        }
        with self._engine.begin() as conn:
            done = conn.execute(update(controls).where(controls.c.name == name).values(**values))
            if done.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(controls).values(name=name, **values))
                except IntegrityError:  # another process inserted it meanwhile
                    conn.execute(update(controls).where(controls.c.name == name).values(**values))
