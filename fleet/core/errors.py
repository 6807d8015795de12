"""Every error fleet raises on purpose, in one tree: ``FleetError`` and its four branches.

- ``PolicyError``: the input is wrong (policy files, a saved plan);
- ``AzureError``: ARM or Resource Graph could not be reached, refused, or failed for good;
- ``JobError``: a job cannot start, or cannot go on (a stale plan, a safety rail, a secret
  that cannot be read, the kill switch, a lost distributed job);
- ``StoreError``: the history database or the job state cannot answer as asked.

Each class knows what the command line exits with (``exit_code``, one table in one place:
``fleet.cli.app`` maps every ``FleetError`` to it) and may add lines a person needs to act
(``details``). Messages never hold a secret value: they name references, resources and ids.
Anything else that escapes is a bug and is shown as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fleet.core.failures import ArmFailure

#: The exit codes of the command line (README: Exit codes).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class FleetError(Exception):
    """The root: an error fleet raises on purpose, with a message a person can act on."""

    exit_code = EXIT_FAILED

    def details(self) -> list[str]:
        """More lines to show under the message (the clusters a stale plan names, ...)."""
        return []


# --- the input ---------------------------------------------------------------------------------


class PolicyError(FleetError):
    """Policy files (or a plan made from them) that fleet cannot use."""

    exit_code = EXIT_INVALID


class Issue(Protocol):
    """One problem found in a policy file (``fleet.policy.loading.PolicyIssue``)."""

    @property
    def severity(self) -> str: ...


class PolicyLoadError(PolicyError):
    """The policy files are invalid; ``issues`` lists every error (and warning) found, each
    ``FILE:LINE: field.path: message``."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        errors = [i for i in self.issues if i.severity == "error"]
        super().__init__(
            f"{len(errors)} error{'s' if len(errors) != 1 else ''} in policy files:\n"
            + "\n".join(str(i) for i in errors)
        )


class PlanUnreadable(PolicyError, ValueError):
    """The file is not a saved plan this fleet can read (the message says why)."""


class NotifyTargetInvalid(PolicyError, ValueError):
    """An entry of ``FLEET_NOTIFY_URLS`` cannot be used. Names the entry by its position and
    label, never by its text: a literal entry is a webhook URL, which is a credential."""


# --- Azure -------------------------------------------------------------------------------------


class AzureError(FleetError):
    """ARM (or Resource Graph) could not be reached, refused the credentials, or failed."""

    exit_code = EXIT_UNREACHABLE


class ArmCallFailed(AzureError):
    """An ARM operation failed for good; ``failure`` says how."""

    def __init__(self, what: str, failure: ArmFailure, attempts: int) -> None:
        super().__init__(
            f"{what}: {failure} (after {attempts} attempt{'s' if attempts > 1 else ''})"
        )
        self.what = what
        self.failure = failure
        self.attempts = attempts

    def details(self) -> list[str]:
        if self.failure.status in (401, 403):
            return ["check FLEET_AUTH and the principal's role: `fleet rbac` prints it"]
        if self.failure.status is None:
            return [
                "is FLEET_ARM_ENDPOINT reachable? for the emulator: is it running, and is "
                "FLEET_ARM_CA_BUNDLE its caBundle?"
            ]
        return []


class CatalogUnavailable(AzureError):
    """The extension version catalogue of a location could not be read, or lists no release:
    versions cannot be judged against it, so the sweep or job that needs it stops (a report
    that judged every version against nothing would claim what it did not check)."""

    def __init__(self, location: str, why: str) -> None:
        super().__init__(f"the microsoft.flux version catalogue of {location} {why}")
        self.location = location

    def details(self) -> list[str]:
        return [
            "reading it needs Microsoft.KubernetesConfiguration/extensionTypes/versions/read "
            "(`fleet rbac` prints the role)"
        ]


class InventoryError(AzureError):
    """The inventory itself could not be read (no subscriptions, no access): the sweep stops."""


# --- jobs --------------------------------------------------------------------------------------


class JobError(FleetError):
    """A job cannot start (nothing was written) or cannot go on."""

    exit_code = EXIT_INVALID


class PrepareError(JobError):
    """The job cannot start; the message says why and what to do."""


class StalePlan(PrepareError):
    """Clusters changed since the saved plan was made."""

    def __init__(self, changed: Sequence[str]) -> None:
        self.changed = list(changed)
        shown = ", ".join(self.changed[:20]) + (" ..." if len(self.changed) > 20 else "")
        super().__init__(
            f"the plan is stale: {len(self.changed)} cluster(s) changed since it was made "
            f"({shown}); nothing was written. Make a new plan."
        )

    def details(self) -> list[str]:
        return [f"changed: {name}" for name in self.changed]


class TooManyClusters(PrepareError):
    """The job would write more clusters than ``FLEET_MAX_CLUSTERS`` allows."""

    def __init__(self, count: int, limit: int) -> None:
        self.count, self.limit = count, limit
        super().__init__(
            f"this job would write {count} clusters, more than the limit of {limit} "
            f"(FLEET_MAX_CLUSTERS); nothing was written. Pass --max-clusters {count} to allow "
            "it, or narrow the job (--policy, the policies' targets, FLEET_SUBSCRIPTIONS)."
        )


class SecretUnavailable(JobError):
    """A referenced secret cannot be read now (unset variable, missing file). Names the
    reference, never a value."""


class SecretsUnavailable(JobError):
    """Secret references a job needs cannot be read now (names the references only)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class KillSwitchEngaged(JobError):
    """A job was refused (or stopped) because the kill switch is on; ``description`` says who
    engaged it, when and why."""

    def __init__(self, description: str) -> None:
        super().__init__(f"{description}; no job runs until `fleet jobs kill-switch off`")
        self.description = description


class NotApprovable(JobError):
    """The job takes no such approval or cancel request (it ended, or has no such wave)."""


class ApprovalRefused(JobError):
    """An approval that separation of duties forbids (the job's creator approving it)."""


class CannotResume(JobError):
    """The job is over, or still alive elsewhere; the message says which and what to do."""


class JobFailed(JobError):
    """A distributed job ended without a complete result (lost state, not finished in time)."""

    exit_code = EXIT_FAILED


# --- the stores --------------------------------------------------------------------------------


class StoreError(FleetError):
    """The history database or the distributed job state cannot answer as asked."""

    exit_code = EXIT_INVALID


class SweepNotFound(StoreError, LookupError):
    """A sweep reference (``latest``, an id or a prefix) names no recorded sweep."""


class NoSweeps(SweepNotFound):
    """The database holds no finished sweep at all (exit 1: nothing to report, not bad input)."""

    exit_code = EXIT_FAILED


class AmbiguousSweep(SweepNotFound):
    """A prefix matches more than one sweep."""


class DuplicateSweep(StoreError, ValueError):
    """A sweep with this id is already recorded."""


class JobNotFound(StoreError, LookupError):
    """A job reference (``latest``, an id or a unique prefix) names no recorded job."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer fleet than this one."""


class SchemaOutOfDate(StoreError):
    """The database is empty or at an older schema revision than this fleet needs.

    ``History`` never migrates: ``fleet db upgrade`` does (or ``open_history`` with
    ``FLEET_DATABASE_AUTO_UPGRADE`` on).
    """

    def __init__(self, database: str, found: str | None, needed: str) -> None:
        at = f"is at schema revision {found}" if found else "holds no schema yet"
        super().__init__(
            f"the history database {database} {at}; this fleet needs revision {needed}: "
            "run: fleet db upgrade"
        )
        #: The database's URL without its password.
        self.database = database
        self.found = found
        self.needed = needed


class HistoryUnavailable(StoreError):
    """The history database cannot be reached (the driver's first line says why)."""

    exit_code = EXIT_FAILED


class JobStateLost(StoreError):
    """The job's keys are gone (Redis restarted without persistence, or the job expired)."""

    exit_code = EXIT_FAILED
