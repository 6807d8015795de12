"""Commit convergence for the renderers: per flux configuration, the commits clusters run, the
majority one, and the clusters lagging behind it (named, a bounded list, with the count of the
rest).

The counts come from ``summary.fluxCommits`` (``fleet.report.model``), so every format shows the
same figures; the names of the lagging clusters need the clusters themselves, so a renderer
feeds each cluster to ``Convergence.add`` during the one pass it already makes over them.
Memory stays flat in the fleet size: at most ``LAGGING_NAMED`` names per configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Lagging clusters named per configuration; the rest are counted.
LAGGING_NAMED = 10
_SHA = re.compile(r"^(?P<ref>.*?)(?P<sep>@?sha(?:1|256):)(?P<hex>[0-9a-fA-F]+)$")


def short_commit(commit: Any) -> str:
    """``main@sha1:0ba6f0d30760d5...`` as ``main@sha1:0ba6f0d30760``; null as "not synced"."""
    if not isinstance(commit, str) or not commit:
        return "not synced"
    found = _SHA.match(commit)
    if found is None:
        return commit if len(commit) <= 48 else commit[:47] + "…"
    return f"{found['ref']}{found['sep']}{found['hex'][:12]}"


@dataclass
class _Config:
    name: str
    clusters: int
    majority: str | None
    commits: list[dict[str, Any]]
    lagging: list[dict[str, str]] = field(default_factory=list)
    lagging_total: int = 0


class Convergence:
    """Per configuration of the summary: its commits, and the clusters off the majority."""

    def __init__(self, flux_commits: Mapping[str, Any] | None) -> None:
        self._configs: dict[str, _Config] = {}
        for name, entry in (flux_commits or {}).items():
            if not isinstance(entry, Mapping):
                continue
            self._configs[str(name)] = _Config(
                name=str(name),
                clusters=int(entry.get("clusters") or 0),
                majority=entry.get("majority"),
                commits=[dict(c) for c in entry.get("commits") or () if isinstance(c, Mapping)],
            )

    def add(self, cluster: Mapping[str, Any]) -> None:
        """Note the cluster if one of its configurations runs another commit than most."""
        for fc in cluster.get("fluxCommits") or ():
            config = self._configs.get(str(fc.get("configuration")))
            if config is None or fc.get("commit") == config.majority:
                continue
            config.lagging_total += 1
            if len(config.lagging) < LAGGING_NAMED:
                config.lagging.append(
                    {
                        "name": str(cluster.get("name") or cluster.get("id")),
                        "id": str(cluster.get("id")),
                        "commit": short_commit(fc.get("commit")),
                    }
                )

    def rows(self) -> list[dict[str, Any]]:
        """Per configuration (by name): clusters, the share on the majority, each commit with
        its clusters and share (most first, the majority marked), the lagging clusters (name,
        id, short commit) and how many more lag than are named."""
        out = []
        for config in sorted(self._configs.values(), key=lambda c: c.name):
            total = config.clusters or 1
            commits = [
                {
                    "commit": c.get("commit"),
                    "short": short_commit(c.get("commit")),
                    "clusters": int(c.get("clusters") or 0),
                    "share": round(100.0 * int(c.get("clusters") or 0) / total, 1),
                    "majority": c.get("commit") is not None and c.get("commit") == config.majority,
                }
                for c in config.commits
            ]
            on_majority = sum(int(c["clusters"] or 0) for c in commits if c["majority"])
            out.append(
                {
                    "name": config.name,
                    "clusters": config.clusters,
                    "majority": config.majority,
                    "converged": len(commits) == 1 and config.majority is not None,
                    "onMajority": round(100.0 * on_majority / total, 1),
                    "commits": commits,
                    "lagging": list(config.lagging),
                    "laggingMore": max(0, config.lagging_total - len(config.lagging)),
                }
            )
        return out
