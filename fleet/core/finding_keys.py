"""The identity of a finding across sweeps: its key, and the fixed-length hash stores keep.

A finding is (code, policy, resource, path): the resource compared by its case-insensitive ARM
id, so a drifted field whose value changed again is still the same drift. ``fleet report
diff`` (``fleet.report.changes``), the notification ledger (``fleet.notify``) and the history's
first-seen ledger (``fleet.record.finding_ages``) all use these two functions, so "new",
"announced" and "drifted for 3 d" agree on what one finding is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from fleet.core.ids import key as id_key

FindingKey = tuple[str, str, str, str]


def finding_key(finding: Mapping[str, Any]) -> FindingKey:
    """(code, policy, resource key, path) of a finding in its report form."""
    return (
        str(finding.get("code", "")),
        str(finding.get("policy") or ""),
        id_key(str(finding.get("resource") or "")),
        str(finding.get("path") or ""),
    )


def key_hash(key: FindingKey) -> str:
    """A finding key as stores keep it (fixed length; resource ids can be long)."""
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()
