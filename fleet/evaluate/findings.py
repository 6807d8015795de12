"""Findings while a cluster is judged: the collector, and the findings of a diff.

``Findings`` collects findings with the default severity of their code, one per owning policy.
``drift_findings`` turns the differences between a desired and an observed essence into drift
findings (conflicting fields are never judged), and ``secret_findings`` the protected settings
whose fingerprints no longer match what fleet applied (``SECRET_ROTATION_PENDING`` when a Key
Vault reference now resolves to another version). Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fleet.core.diffing import Difference, copy_json, overlaps
from fleet.core.vocabulary import CODE_SEVERITY, Code, Severity
from fleet.desired.fingerprints import Fingerprints, short, version_of
from fleet.evaluate.verdicts import Finding

#: Who owns the field at a JSON pointer (the policies a finding there counts against).
Owners = Callable[[str], Sequence[str]]


def show(value: Any) -> str:
    """A short printable form of a value for messages."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        text = json.dumps(value)
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def as_text(value: Any) -> str | None:
    """``value`` as a string (None stays None): observed JSON may hold any type."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


class Findings:
    """Collects findings with the default severity of their code."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(
        self,
        code: Code,
        policies: Sequence[str | None],
        resource: str,
        message: str,
        *,
        path: str | None = None,
        desired: Any = None,
        actual: Any = None,
        severity: Severity | None = None,
    ) -> None:
        sev = severity or CODE_SEVERITY[code]
        for policy in policies:
            # Plain validated construction: with pydantic 2.14 it is faster than
            # model_construct for models this small (measured in benchmarks/bench_engine.py).
            self.items.append(
                Finding(
                    code=code,
                    policy=policy,
                    resource=resource,
                    path=path,
                    desired=desired,
                    actual=actual,
                    message=message,
                    severity=sev,
                )
            )


def drift_findings(
    code: Code,
    diffs: list[Difference],
    conflict_paths: Sequence[str],
    owners_of: Owners,
    resource: str,
    kind: str,
    found: Findings,
) -> None:
    for d in diffs:
        if any(overlaps(d.path, c) for c in conflict_paths):
            continue
        if d.actual is None:
            what = f"{kind} lacks {d.path} (policy wants {show(d.desired)})"
        elif d.desired is None:
            what = f"{kind} has {d.path} = {show(d.actual)}, which no policy declares"
        else:
            what = f"{kind} {d.path} is {show(d.actual)}, policy wants {show(d.desired)}"
        found.add(
            code,
            owners_of(d.path),
            resource,
            what,
            path=d.path,
            desired=copy_json(d.desired),
            actual=copy_json(d.actual),
        )


def secret_findings(
    code: Code,
    fingerprints: Fingerprints | None,
    resource: str,
    protected: Mapping[str, str],
    owners: Owners,
    found: Findings,
) -> None:
    if fingerprints is None or not protected:
        return
    for drift in fingerprints.drift(resource, protected):
        if drift.rotation:
            found.add(
                Code.SECRET_ROTATION_PENDING,
                owners(drift.path),
                resource,
                f"protected setting {drift.setting} ({drift.ref}): Key Vault has version "
                f"{version_of(drift.desired)}, fleet applied {version_of(drift.applied)}: the "
                "rotation is pending (a remediation re-applies it)",
                path=drift.path,
                desired=version_of(drift.desired),
                actual=version_of(drift.applied),
            )
            continue
        found.add(
            code,
            owners(drift.path),
            resource,
            f"protected setting {drift.setting} ({drift.ref}) no longer matches what fleet "
            f"applied (fingerprint {short(drift.desired)}, applied {short(drift.applied)})",
            path=drift.path,
            desired=short(drift.desired),
            actual=short(drift.applied),
        )
