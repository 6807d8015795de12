"""The window arithmetic (``fleet.plan.windows``, ``fleet.plan.maintenance``) and the limits of
automatic jobs (``fleet.apply.auto``): pure functions, checked against hand-worked calendars."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fleet.apply.auto import AutoJob, filter_auto, next_run, over_limit
from fleet.plan.actions import Action, ActionKind
from fleet.plan.maintenance import schedule_of
from fleet.plan.windows import AksRule, FreezeRule, Gate, PolicyWindows
from fleet.policy.timing import AutoRemediation, Freeze, MaintenanceWindow


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BERLIN_NIGHT = MaintenanceWindow(
    name="nightly", cron="0 2 * * *", duration="PT2H", time_zone="Europe/Berlin"
)


def test_a_window_follows_its_time_zone_across_daylight_saving() -> None:
    gate = Gate((PolicyWindows("p", (BERLIN_NIGHT,)),))
    winter, summer = gate.state(at("2027-01-15T12:00:00")), gate.state(at("2027-07-15T12:00:00"))
    assert (winter.open, winter.next_window) == (False, at("2027-01-16T01:00:00"))
    assert (summer.open, summer.next_window) == (False, at("2027-07-16T00:00:00"))
    assert gate.state(at("2027-07-16T01:59:00")).open  # inside, an hour before it closes
    assert not gate.state(at("2027-07-16T02:00:00")).open


def test_a_freeze_explains_a_closed_gate_and_the_next_window_is_after_it() -> None:
    freeze = Freeze(start="2027-12-20", end="2028-01-02", reason="year-end freeze")
    gate = Gate((PolicyWindows("p", (BERLIN_NIGHT,)), FreezeRule("p", freeze)))
    state = gate.state(at("2027-12-24T12:00:00"))
    assert (state.open, state.category) == (False, "freeze")
    assert "year-end freeze" in (state.reason or "")
    # The freeze ends 2028-01-03 00:00 UTC; the first night after it is 02:00 CET = 01:00 UTC.
    assert state.next_window == at("2028-01-03T01:00:00")


def test_a_gate_that_never_opens_within_the_horizon_says_so() -> None:
    forever = Freeze(start="2027-01-01", end="2029-12-31", reason="decommissioning")
    state = Gate((FreezeRule("p", forever),)).state(at("2027-06-01T00:00:00"))
    assert (state.open, state.next_window) == (False, None)
    assert "none within 400 days" in state.describe()


def _window(schedule: dict[str, Any], **more: Any) -> list[dict[str, Any]]:
    window = {"schedule": schedule, "durationHours": 4, "startTime": "22:00", **more}
    return [{"name": "aksManagedAutoUpgradeSchedule", "properties": {"maintenanceWindow": window}}]


def _next(configs: list[dict[str, Any]], moment: str) -> datetime | None:
    schedule = schedule_of(configs)
    assert schedule is not None
    return Gate((AksRule(schedule),)).state(at(moment)).next_window


def test_aks_maintenance_schedules_as_aks_reads_them() -> None:
    every_third = _window({"daily": {"intervalDays": 3}}, startDate="2027-01-01")
    assert _next(every_third, "2027-01-02T12:00:00") == at("2027-01-04T22:00:00")
    monthly = _window({"absoluteMonthly": {"intervalMonths": 1, "dayOfMonth": 15}})
    assert _next(monthly, "2027-02-16T03:00:00") == at("2027-03-15T22:00:00")
    assert _next(monthly, "2027-02-16T01:00:00") == at("2027-02-16T01:00:00")  # still open
    last_friday = _window(
        {"relativeMonthly": {"intervalMonths": 1, "weekIndex": "Last", "dayOfWeek": "Friday"}}
    )
    assert _next(last_friday, "2027-04-01T00:00:00") == at("2027-04-30T22:00:00")
    offset = _window({"weekly": {"intervalWeeks": 1, "dayOfWeek": "Saturday"}}, utcOffset="+05:30")
    assert _next(offset, "2027-04-01T00:00:00") == at("2027-04-03T16:30:00")
    # Inside the window, across midnight: open now.
    assert _next(every_third, "2027-01-05T01:00:00") == at("2027-01-05T01:00:00")


def test_not_allowed_dates_and_times_close_the_window() -> None:
    weekly = _window(
        {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Saturday"}},
        notAllowedDates=[{"start": "2027-04-03", "end": "2027-04-03"}],
    )
    # Saturday 2027-04-03 is not allowed: the window that starts then opens at midnight, when
    # the blocked day ends, and closes at 02:00 as usual.
    assert _next(weekly, "2027-04-01T00:00:00") == at("2027-04-04T00:00:00")
    assert _next(weekly, "2027-04-04T02:30:00") == at("2027-04-10T22:00:00")
    default = [
        {
            "name": "default",
            "properties": {
                "timeInWeek": [{"day": "Monday", "hourSlots": [1, 2]}],
                "notAllowedTime": [
                    {"start": "2027-05-03T00:00:00Z", "end": "2027-05-03T02:30:00Z"}
                ],
            },
        }
    ]
    # Monday 2027-05-03: 01:00-03:00 UTC, blocked until 02:30; open from then until 03:00.
    assert _next(default, "2027-05-02T12:00:00") == at("2027-05-03T02:30:00")


def test_an_unreadable_configuration_never_opens() -> None:
    broken = [{"name": "default", "properties": {"timeInWeek": [{"day": "Moonday"}]}}]
    schedule = schedule_of(broken)
    assert schedule is not None
    state = Gate((AksRule(schedule),)).state(at("2027-01-01T00:00:00"))
    assert (state.open, state.next_window, state.category) == (False, None, "aks-maintenance")
    assert "cannot read maintenance configuration default" in (state.reason or "")
    assert schedule_of([{"name": "aksManagedNodeOSUpgradeSchedule", "properties": {}}]) is None


def _action(change: str, code: str) -> Action:
    return Action(
        kind=ActionKind.PUT_FLUX_CONFIG,
        cluster_id="c",
        resource_id=f"c/{code}",
        method="PUT",
        change=change,
        reasons=[{"code": code}],  # type: ignore[list-item]
        policies=["p"],
    )


def test_an_automatic_job_creates_only_unless_told_more() -> None:
    create, drift = _action("+", "FLUX_CONFIG_MISSING"), _action("~", "FLUX_CONFIG_DRIFT")
    kept, why = filter_auto([create, drift], AutoJob(AutoRemediation(), "schedule:p"))
    assert kept == [create]
    assert why is not None and "may not update" in why and "FLUX_CONFIG_DRIFT" in why
    both = AutoJob(AutoRemediation(update=True), "schedule:p")
    assert filter_auto([create, drift], both) == ([create, drift], None)
    assert filter_auto([drift], None) == ([drift], None)  # a person's job: no limits


def test_the_run_limit_keeps_the_same_clusters_and_says_when_the_next_run_is() -> None:
    ids = [f"/subscriptions/s/resourceGroups/g/providers/x/managedClusters/c{i}" for i in range(9)]
    rest = over_limit(ids, 4)
    assert len(rest) == 5 and rest == over_limit(list(reversed(ids)), 4)
    assert next_run("0 */6 * * *", at("2027-01-01T07:00:00")) == at("2027-01-01T12:00:00")
    assert next_run(None, at("2027-01-01T07:00:00")) is None
