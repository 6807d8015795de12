"""Extension version promotion: the version each cluster is pinned to (docs/promotion.md).

With ``extension.versionPolicy: promote`` fleet pins ``autoUpgradeMinorVersion: false`` and
chooses every cluster's version itself, from the whole fleet's standing at once:

* each cluster has a ``Standing``: its wave (the promoting policy's rollout waves), its
  location's catalogue of its train (a release reaches regions one after another), its
  version, since when it runs it (``systemData.lastModifiedAt`` of the extension: under
  promotion only fleet's own PUTs change the version, so the last write is when it moved;
  any other write of the extension only makes the soak longer), and the gate findings it
  shows now;
* a cluster takes the newest release of its regional catalogue inside its version window
  that its wave is *cleared* for. The first wave (the canary) is cleared for every release.
  A later wave is cleared for release ``v`` when every cluster of the earlier waves that can
  take ``v`` (its catalogue lists it) runs ``v`` or newer, pinned, for at least the soak, and
  shows none of the gate's findings; earlier-wave clusters of the cluster's own location
  decide, and only when its location has none that can take ``v`` do those of every other
  location (a region without a canary relies on the canaries elsewhere). So each region
  re-soaks a release as it arrives, wave by wave;
* a cluster whose wave is cleared for nothing in its window keeps its version when that is
  inside the window, and otherwise is moved to the oldest release inside it: promotion never
  takes a cluster out of the N-2 window, nor keeps one out of it (the window wins over the
  gate, and the reason says so); a new extension of such a wave is installed with the
  newest release the earlier waves all run. A version is never moved down.

``targets(standings, now)`` decides every cluster's ``Target``; ``pin(desired, version)`` is
the desired state with that version pinned, which evaluation and planning then treat like a
pinned ``version`` of a policy. Where nothing decided (a sweep, the retry actions of an
offline cluster, a write without an extension PUT) the pin is what the cluster ``running``
runs: no write ever moves a promoted version that the promotion did not choose. Pure: the
callers read the fleet and write the PUTs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet.core.diffing import copy_json
from fleet.core.ids import key
from fleet.desired.state import AUTO_UPGRADE_PATH, VERSION_PATH, DesiredState
from fleet.evaluate.verdicts import Verdict
from fleet.evaluate.versions import Catalog, Version, parse_version
from fleet.observe import essence
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import ObservedView
from fleet.observe.view import properties as properties_of
from fleet.plan.actions import Action, ActionKind

#: The code of a plan's note that a cluster's promotion is held (a ``Skipped`` entry).
HELD_CODE = "EXTENSION_PROMOTION_HELD"


@dataclass(frozen=True, slots=True)
class Standing:
    """One promoting cluster as the promotion sees it."""

    cluster_id: str
    name: str
    location: str
    #: Index of its wave in the promoting policy's rollout (the implicit last wave included).
    wave: int
    wave_name: str
    policy: str
    train: str
    #: Releases of its train in its location's catalogue, newest first.
    releases: tuple[Version, ...]
    window: int
    current: Version | None
    #: ``autoUpgradeMinorVersion`` is false on the cluster (only then is ``since`` its move).
    pinned: bool
    since: datetime | None
    soak: timedelta
    #: Gate findings the cluster shows now (codes).
    gate: tuple[str, ...]

    @property
    def key(self) -> str:
        return key(self.cluster_id)

    def offers(self, version: Version) -> bool:
        return any(r.release == version.release for r in self.releases)

    def runs_at_least(self, version: Version) -> bool:
        return self.current is not None and self.current.release >= version.release


@dataclass(frozen=True, slots=True)
class Target:
    """The version a cluster is pinned to now, and why."""

    version: str | None
    reason: str
    #: True when the cluster's wave is not cleared for the newest release it could take.
    held: bool = False


def _since(extension: object) -> datetime | None:
    system = extension.get("systemData") if isinstance(extension, Mapping) else None
    stamp = system.get("lastModifiedAt") if isinstance(system, Mapping) else None
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def standing(
    observed: ObservedCluster,
    desired: DesiredState,
    verdict: Verdict,
    seen: ObservedView,
    catalog: Catalog,
    *,
    wave: int,
    wave_name: str,
) -> Standing | None:
    """The cluster's standing, or None when no promoting policy owns its extension."""
    d = desired.extension
    if d is None or d.promotion is None:
        return None
    props = properties_of(seen.extension) if seen.extension is not None else {}
    train_name, releases, _ = catalog.train(str(d.body["properties"].get("releaseTrain") or ""))
    current = props.get("currentVersion") if props else None
    parsed = parse_version(current) if isinstance(current, str) else None
    rule = d.promotion
    return Standing(
        cluster_id=observed.facts.id,
        name=observed.facts.name,
        location=(observed.facts.location or "").lower().replace(" ", ""),
        wave=wave,
        wave_name=wave_name,
        policy=rule.policy,
        train=train_name.lower(),
        releases=releases,
        window=d.version_window,
        current=parsed if parsed is not None and not parsed.prerelease else None,
        pinned=props.get("autoUpgradeMinorVersion") is False,
        since=_since(seen.extension),
        soak=timedelta(seconds=rule.soak_seconds),
        gate=tuple(sorted({f.code.value for f in verdict.findings} & rule.gate)),
    )


def _blocker(s: Standing, v: Version, earlier: Sequence[Standing], now: datetime) -> str | None:
    """Why ``s``'s wave is not cleared for ``v`` (None: it is)."""
    if s.wave == 0:
        return None
    able = [d for d in earlier if d.offers(v)]
    local = [d for d in able if d.location == s.location]
    judged = local or able
    if not judged:
        return f"no cluster of an earlier wave can take {v} yet"
    for d in sorted(judged, key=lambda d: (d.wave, d.key)):
        where = f"{d.name} (wave {d.wave_name})"
        if d.gate:
            return f"halted: {where} shows {', '.join(d.gate)}"
        if not d.runs_at_least(v):
            return f"{where} does not run {v} yet"
        if not d.pinned or d.since is None:
            return f"{where} is not pinned yet (its soak has no start)"
        if now - d.since < s.soak:
            since = d.since.isoformat(timespec="seconds")
            until = (d.since + s.soak).isoformat(timespec="seconds")
            return f"{where} runs {v} since {since}: soaking until {until}"
    return None


def _target(s: Standing, earlier: Sequence[Standing], now: datetime) -> Target:
    in_window = s.releases[: s.window + 1]
    if not in_window:
        return Target(None, f"no known {s.train} release in {s.location}: the version is left")
    held: str | None = None
    chosen: Version | None = None
    for v in in_window:
        if s.runs_at_least(v):
            chosen = v  # what it runs needs no clearing (and it never moves down)
            break
        why = _blocker(s, v, earlier, now)
        if why is None:
            chosen = v
            break
        held = held or f"{v} held for wave {s.wave_name}: {why}"
    note = held or ""
    if chosen is None:
        current = s.current
        if current is not None and (
            current.release > in_window[0].release
            or any(r.release == current.release for r in in_window)
        ):
            return Target(str(current), note, held=True)
        if current is None:
            # A new extension: the newest release the earlier waves all run already.
            settled = [v for v in in_window if all(d.runs_at_least(v) for d in earlier)]
            chosen = settled[0] if settled and earlier else in_window[-1]
            note = f"{note}; installed with {chosen}, which the earlier waves run"
        else:
            chosen = in_window[-1]
            note = f"{note}; {chosen} is the oldest release inside the window (the window wins)"
    if s.current is not None and s.current.release > chosen.release:
        # Never down: a newer version stays (it is inside the window, or newer than it).
        return Target(str(s.current), note, held=held is not None)
    if s.current is not None and s.current.release == chosen.release:
        return Target(str(s.current), note or f"runs {chosen}", held=held is not None)
    reason = f"promoted to {chosen} (wave {s.wave_name})" + (f"; {note}" if note else "")
    return Target(str(chosen), reason, held=held is not None)


def targets(standings: Iterable[Standing], now: datetime) -> dict[str, Target]:
    """Every promoting cluster's target by cluster key (see the module docstring)."""
    groups: dict[tuple[str, str], list[Standing]] = {}
    for s in standings:
        groups.setdefault((s.policy, s.train), []).append(s)
    out: dict[str, Target] = {}
    for members in groups.values():
        for s in members:
            earlier = [d for d in members if d.wave < s.wave]
            out[s.key] = _target(s, earlier, now)
    return out


def pin(desired: DesiredState, version: str | None) -> DesiredState:
    """``desired`` with the promotion's ``version`` pinned (unchanged without a promotion)."""
    d = desired.extension
    if d is None or d.promotion is None or version is None:
        return desired
    properties = {**copy_json(d.body["properties"]), "version": version}
    properties["autoUpgradeMinorVersion"] = False
    body = {"properties": properties}
    fields = frozenset({*d.fields, "version", "autoUpgradeMinorVersion"})
    essence_body = {"name": d.name, **body} if d.name_governed else body
    ess = essence.restrict_extension(
        essence.extension(essence_body, governed_settings=d.settings),
        fields,
        name=d.name_governed,
    )
    owners = {
        **d.owners,
        VERSION_PATH: d.promotion.policies,
        AUTO_UPGRADE_PATH: d.owners.get(AUTO_UPGRADE_PATH) or d.promotion.policies,
    }
    extension = dataclasses.replace(
        d, body=body, essence=ess, fields=fields, owners=owners, version=version
    )
    return dataclasses.replace(desired, extension=extension)


def running(seen: ObservedView) -> str | None:
    """The release the observed extension runs (None: none installed, or not a release)."""
    current = properties_of(seen.extension).get("currentVersion") if seen.extension else None
    parsed = parse_version(current) if isinstance(current, str) else None
    return str(current) if parsed is not None and not parsed.prerelease else None


def pinned_version(actions: Iterable[Action]) -> str | None:
    """The version a job's extension PUT pins (what ``pin`` put there), or None."""
    for action in actions:
        if action.kind is ActionKind.PUT_EXTENSION and action.body:
            props = action.body.get("properties") or {}
            if props.get("autoUpgradeMinorVersion") is False and props.get("version"):
                return str(props["version"])
    return None
