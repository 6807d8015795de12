"""docs/scenario.md as test expectations, shared by the generator and end-to-end tests.

The expectations are read from the document itself (the defect table and the policy table), not
from the generator's code, so a test built on them checks the generator, the engine and the
whole sweep path against the specification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from fleet.core.clusters import ClusterFacts

REPO = Path(__file__).resolve().parents[1]


def declared(facts: ClusterFacts) -> list[str]:
    """docs/scenario.md's policy table: which flux configurations target a cluster, in order."""
    names = []
    if re.match(r"rg-(prod|stg|edge)-", facts.resource_group):
        names.append("cluster-config")
    if facts.tags.get("team") == "alpha" and facts.tags.get("env") != "dev":
        names.append("team-alpha")
    if facts.cluster_type == "connectedClusters":
        names.append("edge-baseline")
    return names


@cache
def scenario_verdicts() -> dict[str, tuple[str, set[str], set[str], set[str]]]:
    """docs/scenario.md's defect table: kind -> (state, codes, optional codes, drift paths)."""
    text = (REPO / "docs" / "scenario.md").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\| `(\w+)` \|(.*)\|(.*)\|\s*(\w+)\s*\|", line)
        if m is None:
            continue
        kind, _change, codes, state = m.groups()
        # "(+ FLUX_CONFIG_MISSING for each declared config)": present only when configs are.
        optional = set(
            re.findall(r"[A-Z][A-Z0-9_]{3,}", " ".join(re.findall(r"\(\+[^)]*\)", codes)))
        )
        required = set(re.findall(r"[A-Z][A-Z0-9_]{3,}", codes)) - optional
        paths = set(re.findall(r"`(/properties/[^`]+)`", codes))
        out[kind] = (state, required, optional, paths)
    return out


def mismatch(kind: str, facts: ClusterFacts, verdict: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """None when a verdict (report JSON of one cluster) is what the scenario says for its kind,
    else a tuple describing the difference (for a readable assertion)."""
    findings = [x for x in verdict["findings"] if x.get("severity") != "info"]
    codes = {x["code"] for x in findings}
    state, required, optional, paths = scenario_verdicts()[kind]
    if declared(facts):
        required = required | optional  # "(+ FLUX_CONFIG_MISSING for each declared config)"
    if (
        verdict["state"] != state
        or not required <= codes <= required | optional
        or not paths <= {x.get("path") for x in findings}
    ):
        return (
            kind,
            verdict["id"],
            verdict["state"],
            sorted(codes),
            "expected",
            state,
            sorted(required),
        )
    return None
