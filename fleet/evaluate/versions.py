"""Extension version compliance: the N-2 window and the ARM64 floor (docs/contracts.md, Domain
facts).

Microsoft supports the newest ``microsoft.flux`` release and the two before it, counted per
*release* (1.17.3, 1.17.2, 1.16.12 -- not per minor line). A policy may narrow or widen that with
``versionWindow``. The catalogue comes from ``extensionTypes/microsoft.flux/versions`` (or a
snapshot's ``extensionTypeVersions``), per release train, newest first -- but nothing here
relies on that order.

Rules, in the order ``judge`` applies them:

* no current version (not installed yet, ``Creating``): not judged (``in_window`` None);
* not a semantic version: out of window, and says so -- a garbage string never raises;
* a pre-release: out of window (pre-releases are not supported releases);
* newer than the newest known release: in window (new releases reach regions late, so a
  regional catalogue can lag behind what a cluster already runs);
* one of the newest ``window + 1`` releases: in window; anything else, including a version the
  catalogue does not know, is out of window;
* on an ARM64 cluster anything below 1.7.0 is also ``EXTENSION_VERSION_UNSUPPORTED_ARCH``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from fleet.core.vocabulary import Code
from fleet.policy.models import DEFAULT_WINDOW as DEFAULT_WINDOW  # re-exported

DEFAULT_TRAIN = "Stable"

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True, slots=True)
class Version:
    """A semantic version; ordering follows SemVer 2.0 precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    text: str = field(default="", compare=False)

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def prerelease(self) -> bool:
        return bool(self.pre)

    def sort_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release sorts after its pre-releases; numeric identifiers sort before alphanumeric.
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, ids)

    def __lt__(self, other: Version) -> bool:
        return self.sort_key() < other.sort_key()

    def __str__(self) -> str:
        return self.text or ".".join(map(str, self.release)) + (
            "-" + ".".join(self.pre) if self.pre else ""
        )


@lru_cache(maxsize=4096)
def parse_version(text: str) -> Version | None:
    """Parse ``1.17.3``, ``1.18.0-preview.1``, ``1.2.3+build`` (None when it is not SemVer)."""
    match = _SEMVER.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre, _build = match.groups()
    return Version(int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), text)


ARM64_MINIMUM = Version(1, 7, 0, (), "1.7.0")


@dataclass(frozen=True, slots=True)
class Catalog:
    """Known releases per release train (keys lower-cased: trains compare case-insensitively)."""

    #: lower-cased train -> its releases (no pre-releases), newest first, distinct.
    releases: Mapping[str, tuple[Version, ...]]
    #: lower-cased train -> the train's name as the catalogue spells it.
    names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> Catalog:
        """Build from ``{train: [versions]}`` (a snapshot's ``extensionTypeVersions[type]``).

        Strings that do not parse and pre-releases are ignored: the window counts releases.
        """
        releases: dict[str, tuple[Version, ...]] = {}
        names: dict[str, str] = {}
        for train, versions in mapping.items():
            parsed: dict[tuple[int, int, int], Version] = {}
            for text in versions or ():
                v = parse_version(str(text))
                if v is not None and not v.prerelease:
                    parsed.setdefault(v.release, v)
            key = str(train).lower()
            merged = {r.release: r for r in releases.get(key, ())}
            merged.update(parsed)
            releases[key] = tuple(sorted(merged.values(), reverse=True))
            names.setdefault(key, str(train))
        return cls(releases=releases, names=names)

    def train(self, name: str | None) -> tuple[str, tuple[Version, ...], str | None]:
        """(train name used, its releases, a note when the requested train is unknown)."""
        wanted = (name or DEFAULT_TRAIN).lower()
        found = self.releases.get(wanted)
        if found:
            return self.names.get(wanted, name or DEFAULT_TRAIN), found, None
        stable = DEFAULT_TRAIN.lower()
        fallback = self.releases.get(stable, ())
        note = (
            f"release train {name!r} is not in the version catalogue; judged against "
            f"{DEFAULT_TRAIN}"
            if wanted != stable
            else None
        )
        return self.names.get(stable, DEFAULT_TRAIN), fallback, note

    def window(self, train: str | None, window: int) -> tuple[str, ...]:
        """The versions inside an N-``window`` window of ``train``, newest first."""
        _, releases, _ = self.train(train)
        return tuple(str(v) for v in releases[: max(window, 0) + 1])


class VersionJudgement(NamedTuple):
    """Whether the installed version complies, the finding codes it implies, and why."""

    in_window: bool | None
    codes: tuple[Code, ...]
    message: str
    #: The versions that comply (newest first), for reports.
    window_versions: tuple[str, ...] = ()


def _label(window: int) -> str:
    return f"N-{window}" if window else "N (the newest release only)"


def judge(
    current: str | None,
    *,
    catalog: Catalog,
    train: str | None,
    window: int = DEFAULT_WINDOW,
    arm64: bool = False,
    pinned: bool = False,
) -> VersionJudgement:
    """Judge an installed extension version against the catalogue.

    ``pinned`` is True when the extension has ``autoUpgradeMinorVersion: false`` (it only changes
    the wording: a pinned version is the policy's or an operator's choice; an auto-upgrading
    one outside the window is stuck).
    """
    if current is None:
        return VersionJudgement(None, (), "no installed version yet (not judged)")
    text = current if isinstance(current, str) else str(current)
    train_name, releases, note = catalog.train(train)
    prefix = f"{note}. " if note else ""
    window = max(int(window), 0)
    in_window_versions = releases[: window + 1]
    shown = tuple(str(v) for v in in_window_versions)
    span = f"{_label(window)} of {train_name} ({', '.join(shown)})"
    version = parse_version(text)
    codes: list[Code] = []
    arch = ""
    if version is not None and arm64 and version < ARM64_MINIMUM:
        codes.append(Code.EXTENSION_VERSION_UNSUPPORTED_ARCH)
        arch = f"; ARM64 clusters need {ARM64_MINIMUM} or later"
    if version is None:
        return VersionJudgement(
            False,
            (Code.EXTENSION_VERSION_OUT_OF_WINDOW,),
            f"{prefix}{text!r} is not a version (expected major.minor.patch); outside {span}"
            if releases
            else f"{prefix}{text!r} is not a version (expected major.minor.patch)",
            shown,
        )
    if not releases:
        # Without a catalogue only the architecture floor can be judged.
        return VersionJudgement(
            None,
            tuple(codes),
            f"{prefix}no known releases for train {train_name!r}: {text} not judged{arch}",
            shown,
        )
    if version.prerelease:
        codes.append(Code.EXTENSION_VERSION_OUT_OF_WINDOW)
        return VersionJudgement(
            False,
            tuple(codes),
            f"{prefix}{text} is a pre-release; only releases are supported, {span}{arch}",
            shown,
        )
    if version.release > releases[0].release:
        return VersionJudgement(
            True,
            tuple(codes),
            f"{prefix}{text} is newer than the newest known {train_name} release "
            f"{releases[0]} (new releases reach regions late): in window{arch}",
            shown,
        )
    if any(v.release == version.release for v in in_window_versions):
        return VersionJudgement(True, tuple(codes), f"{prefix}{text} is within {span}{arch}", shown)
    codes.append(Code.EXTENSION_VERSION_OUT_OF_WINDOW)
    if not any(v.release == version.release for v in releases):
        why = f"{text} is not a known {train_name} release"
    elif pinned:
        why = f"the extension is pinned to {text} (autoUpgradeMinorVersion false)"
    else:
        why = f"auto-upgrade is on but the extension is stuck on {text}"
    return VersionJudgement(False, tuple(codes), f"{prefix}{why}, outside {span}{arch}", shown)
