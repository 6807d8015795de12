"""Loading policy files: YAML documents to a validated, frozen ``PolicySet``.

Called by the CLI (``fleet validate`` and every command taking ``--policies``), by the local
jobs and by the workers; it is the only module of ``fleet.policy`` that reads files.

How it works, and why:

1. Each file is read as bytes and decoded (UTF-8, or UTF-16 with a BOM), so that an undecodable
   file is an error at its line rather than a traceback. Files over ``MAX_FILE_BYTES`` are
   refused before parsing.
2. ruamel.yaml *composes* each document into a node tree, which keeps the line of every key and
   value. ``fleet.policy.yamltree`` turns the nodes into plain data itself, so that duplicate
   keys, unsupported tags, alias bombs and over-deep nesting become errors at their line.
3. The data is validated against ``fleet.policy.models.Policy`` (aliases only: the snake_case
   Python names are not policy syntax), then against the multi-field rules of
   ``fleet.policy.checks``. Pydantic error locations are mapped back to lines.
4. All problems of all files are collected; if any is an error, ``PolicyLoadError`` carries
   them all. Messages name the file, line and field path and never the offending value: it
   could be a secret.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from fleet.core.errors import PolicyLoadError
from fleet.policy import checks, yamltree
from fleet.policy.errors import describe_error, format_path
from fleet.policy.models import Policy

#: Policy files are small; anything this big is a mistake (or an attack), not a policy.
MAX_FILE_BYTES = 2 * 1024 * 1024
_SUFFIXES = (".yaml", ".yml")


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem found while loading: ``FILE:LINE: path: message``.

    ``line`` is 1-based; 0 means the problem concerns the whole file (it does not exist, it is
    too large) and is then left out of the text. ``path`` is the dotted field path
    (``spec.fluxConfigurations[0].name``), empty when the problem is not about one field.
    """

    file: str
    line: int
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:" if self.line > 0 else f"{self.file}:"
        field_path = f" {self.path}:" if self.path else ""
        label = " warning:" if self.severity == "warning" else ""
        return f"{where}{field_path}{label} {self.message}"


@dataclass(frozen=True)
class PolicySet:
    """The validated policies of a run. Frozen; built by ``load`` (or ``from_policies``).

    ``revision`` is a content hash of the normalised policies: it does not change with file
    order, comments or formatting, and it is recorded with every sweep so that a verdict can
    be traced to the exact policies that produced it.
    """

    policies: tuple[Policy, ...]
    """Sorted by name."""
    revision: str
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``policies``."""
    origins: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """Policy name -> (file as given, line of the document)."""
    warnings: tuple[PolicyIssue, ...] = ()
    """Problems that do not invalidate the set (an expired exemption, ...)."""
    base_dirs: Mapping[str, Path] = field(default_factory=dict, repr=False)
    """Policy name -> absolute directory of its file; ``fromFile`` references start there."""

    def __hash__(self) -> int:
        # Equal sets have equal revisions; the dict fields would make the generated hash fail.
        return hash(self.revision)

    @classmethod
    def from_policies(
        cls,
        policies: Iterable[Policy],
        *,
        origins: Mapping[str, tuple[str, int]] | None = None,
        warnings: Iterable[PolicyIssue] = (),
    ) -> PolicySet:
        """A set of already validated policies (tests, programmatic use); computes the revision."""
        ordered = tuple(sorted(policies, key=lambda p: p.name))
        return cls(
            policies=ordered,
            revision=revision_of(ordered),
            origins=dict(origins or {}),
            warnings=tuple(warnings),
            base_dirs={
                name: Path(file).resolve().parent for name, (file, _) in (origins or {}).items()
            },
        )

    def by_name(self, name: str) -> Policy:
        """The policy called ``name``; KeyError when there is none."""
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(f"no policy named {name!r}")

    def base_dir(self, name: str) -> Path:
        """Directory that relative ``fromFile`` references of policy ``name`` start from.

        The directory of the file that defined the policy; the working directory for a policy
        that was not loaded from a file.
        """
        self.by_name(name)  # KeyError for a policy that is not in the set
        return self.base_dirs.get(name) or Path.cwd()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)


def canonical_text(policy: Policy) -> str:
    """``policy`` as canonical JSON: equal content gives equal text, whatever the formatting,
    comments and key order of the file it came from."""
    return json.dumps(
        policy.model_dump(mode="json", by_alias=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def digest_of(policy: Policy) -> str:
    """sha256 of ``policy``'s canonical JSON: what identifies its content."""
    return hashlib.sha256(canonical_text(policy).encode("utf-8")).hexdigest()


def revision_of(policies: Iterable[Policy]) -> str:
    """Content hash of ``policies``: independent of their order, formatting and comments."""
    ordered = sorted(policies, key=lambda p: p.name)
    text = "[" + ",".join(canonical_text(p) for p in ordered) + "]"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- entry points ----------------------------------------------------------------------------


def load(paths: Sequence[str | Path], *, today: date | None = None) -> PolicySet:
    """Load and validate every policy under ``paths`` (files, or directories searched
    recursively for ``*.yaml``/``*.yml``, hidden ones skipped, in sorted order).

    ``today`` (UTC by default) decides which exemptions have expired (a warning).
    Raises ``PolicyLoadError`` listing every error of every file.
    """
    today = today or datetime.now(UTC).date()
    issues: list[PolicyIssue] = []
    loaded: list[_Loaded] = []
    files = _expand(paths, issues)
    for display, real in files:
        text = _read(display, real, issues)
        if text is not None:
            loaded += _load_text(text, display, today, issues)
    return _finish(
        loaded,
        issues,
        base_dirs={d: r.resolve().parent for d, r in files},
        order=[d for d, _ in files],
    )


def load_text(text: str, *, file: str = "<string>", today: date | None = None) -> PolicySet:
    """Like ``load`` for YAML held in memory; ``file`` names it in messages."""
    today = today or datetime.now(UTC).date()
    issues: list[PolicyIssue] = []
    loaded = _load_text(text, file, today, issues)
    return _finish(loaded, issues, base_dirs={}, order=[file])


# --- files ---------------------------------------------------------------------------------


def _expand(paths: Sequence[str | Path], issues: list[PolicyIssue]) -> list[tuple[str, Path]]:
    """(display name, path) of every policy file, each file once, in a deterministic order."""
    out: list[tuple[str, Path]] = []
    seen: set[Path] = set()

    def add(display: str, real: Path) -> None:
        key = real.resolve()
        if key not in seen:
            seen.add(key)
            out.append((display, real))

    if not paths:
        issues.append(PolicyIssue("fleet", 0, "", "no policy files or directories given"))
    for raw in paths:
        display = str(raw)
        real = Path(raw)
        if real.is_dir():
            found = sorted(_walk(real))
            if not found:
                issues.append(
                    PolicyIssue(display, 0, "", "no policy files (*.yaml, *.yml) in this directory")
                )
            for rel in found:
                add(os.path.join(display, rel), real / rel)
        elif real.is_file():
            add(display, real)
        elif real.exists():
            issues.append(PolicyIssue(display, 0, "", "not a regular file or directory"))
        else:
            issues.append(PolicyIssue(display, 0, "", "no such file or directory"))
    return out


def _walk(root: Path) -> Iterator[str]:
    """Relative paths of the YAML files under ``root``; hidden files and directories (``.git``)
    are skipped and symlinked directories are not followed (no loops)."""
    for current, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.endswith(_SUFFIXES) and not name.startswith("."):
                yield os.path.relpath(os.path.join(current, name), root)


def _read(display: str, real: Path, issues: list[PolicyIssue]) -> str | None:
    try:
        size = real.stat().st_size
        if size > MAX_FILE_BYTES:
            issues.append(
                PolicyIssue(
                    display, 0, "", f"file too large ({size} bytes; the limit is {MAX_FILE_BYTES})"
                )
            )
            return None
        data = real.read_bytes()
    except OSError as exc:
        issues.append(PolicyIssue(display, 0, "", f"cannot read: {exc.strerror or exc}"))
        return None
    return _decode(display, data, issues)


def _decode(display: str, data: bytes, issues: list[PolicyIssue]) -> str | None:
    # YAML allows UTF-16 and UTF-32 with a byte order mark; everything else must be UTF-8.
    encoding = "utf-8-sig"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encoding = "utf-32"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1 if encoding == "utf-8-sig" else 1
        issues.append(
            PolicyIssue(
                display,
                line,
                "",
                f"not valid {encoding.split('-sig')[0].upper()} text (byte offset {exc.start})",
            )
        )
        return None


# --- documents -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Loaded:
    policy: Policy
    doc: yamltree.Document
    file: str


def _load_text(text: str, file: str, today: date, issues: list[PolicyIssue]) -> list[_Loaded]:
    loaded: list[_Loaded] = []
    docs, problems = yamltree.parse(text)
    issues += [PolicyIssue(file, p.line, format_path(p.path), p.message) for p in problems]
    for doc in docs:
        policy = _validate(doc, file, issues)
        if policy is None:
            continue
        for path, message in checks.check_policy(policy):
            issues.append(PolicyIssue(file, doc.value_line(path), format_path(path), message))
        for path, message in checks.policy_warnings(policy, today=today):
            issues.append(
                PolicyIssue(file, doc.value_line(path), format_path(path), message, "warning")
            )
        loaded.append(_Loaded(policy, doc, file))
    return loaded


def _validate(doc: yamltree.Document, file: str, issues: list[PolicyIssue]) -> Policy | None:
    if not isinstance(doc.data, dict):
        issues.append(
            PolicyIssue(
                file,
                doc.line,
                "",
                "a policy document must be a mapping with apiVersion, kind, metadata and spec",
            )
        )
        return None
    try:
        policy = Policy.model_validate(doc.data, by_alias=True, by_name=False)
    except ValidationError as exc:
        reported: set[tuple[int, str, str]] = set()
        for error in exc.errors(include_url=False, include_context=True, include_input=True):
            described = describe_error(error, doc)
            if described is None:
                continue  # under a value the YAML layer already reported
            line, path, message = described
            if (line, path, message) not in reported:
                reported.add((line, path, message))
                issues.append(PolicyIssue(file, line, path, message))
        return None
    if doc.problems:
        # The YAML layer reported something inside this document (e.g. a duplicate key) but
        # what remained happened to validate: the document is still invalid.
        return None
    return policy


def _finish(
    loaded: list[_Loaded],
    issues: list[PolicyIssue],
    *,
    base_dirs: Mapping[str, Path],
    order: Sequence[str],
) -> PolicySet:
    first: dict[str, tuple[str, yamltree.Document]] = {}
    for item in loaded:
        name = item.policy.name
        name_path = ("metadata", "name")
        file = item.file
        if name in first:
            other_file, other_doc = first[name]
            issues.append(
                PolicyIssue(
                    file,
                    item.doc.value_line(name_path),
                    "metadata.name",
                    f"duplicate policy name {name!r}; also defined at "
                    f"{other_file}:{other_doc.value_line(name_path)}",
                )
            )
        else:
            first[name] = (file, item.doc)
    # Report in reading order: files in the order read (paths that could not be read first),
    # and by line within a file: problems are found in passes (YAML, types, semantic checks,
    # names across files), not in line order.
    rank = {file: index for index, file in enumerate(order)}
    issues.sort(key=lambda i: (rank.get(i.file, -1), i.line))
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise PolicyLoadError(issues)
    policies = [item.policy for item in loaded]
    origins = {name: (file, doc.line) for name, (file, doc) in first.items()}
    return PolicySet(
        policies=tuple(sorted(policies, key=lambda p: p.name)),
        revision=revision_of(policies),
        origins=origins,
        warnings=tuple(i for i in issues if i.severity == "warning"),
        base_dirs={name: base_dirs[file] for name, (file, _) in first.items() if file in base_dirs},
    )
