"""The kill switch: ``fleet jobs kill-switch on|off|status`` and what it stops.

Engaged, it stops every running job at its next step — a sweep before its next cluster, a
remediation before its next cluster or wave or while it waits for an approval — and refuses
new ones (sweep, plan, remediate, local or Celery). It lives in the history database and is
mirrored to Redis; ``fleet.jobs.killswitch.engaged()`` is what the Celery tasks ask.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from fleet.jobs import killswitch
from fleet.record.history import History, open_history
from tests.conftest import POLICIES, require
from tests.distributed.conftest import RedisServer, Workers, free_port
from tests.faults.conftest import (
    check_sweep,
    cli,
    cli_process,
    env_of,
    facts_of,
    job_outcomes,
)
from tests.remediate.conftest import policy_dir, with_rollout


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    killswitch.forget()
    yield
    killswitch.forget()


def status(env: dict[str, str]) -> dict[str, Any]:
    result = cli(["jobs", "kill-switch", "status", "-o", "json"], env)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def wait_until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_on_status_off(emulator_factory: Any, tmp_path: Path) -> None:
    env = env_of(
        emulator_factory().running,
        tmp_path / "state",
        FLEET_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )  # nobody listens
    assert status(env)["engaged"] is False
    on = cli(["jobs", "kill-switch", "on", "--reason", "bad flux release 1.17.4"], env)
    assert on.exit_code == 0, on.stderr
    assert "kill switch ON" in on.stderr and "(set in history)" in on.stderr
    found = status(env)
    assert found["engaged"] is True and found["reason"] == "bad flux release 1.17.4"
    assert found["by"] and found["at"] and found["sources"] == ["history"]
    table = cli(["jobs", "kill-switch", "status"], env)
    assert "the kill switch is on" in table.stdout and "bad flux release" in table.stdout
    off = cli(["jobs", "kill-switch", "off"], env)
    assert off.exit_code == 0 and "kill switch off" in off.stderr
    assert status(env)["engaged"] is False


def test_new_jobs_refuse_to_start_while_it_is_on(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory().running
    env = env_of(emu, tmp_path / "state", FLEET_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert cli(["jobs", "kill-switch", "on", "-r", "incident 42"], env).exit_code == 0
    emu.admin.reset_stats()
    for args in (
        ["sweep"],
        ["plan"],
        ["remediate", "--yes"],
        ["remediate", "--dry-run"],
        ["sweep", "--engine", "celery"],
        ["remediate", "--yes", "--engine", "celery"],
    ):
        result = cli([*args, "-p", str(POLICIES)], env)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert "the kill switch is on" in result.stderr and "incident 42" in result.stderr
        assert "fleet jobs kill-switch off" in result.stderr
    assert emu.admin.stats()["requests"]["total"] == 0  # not one ARM request
    assert cli(["jobs", "kill-switch", "off"], env).exit_code == 0
    assert cli(["sweep", "-p", str(POLICIES), "-o", "json"], env).exit_code == 0


def test_a_running_sweep_stops_at_its_next_cluster(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    emu = emulator_factory(latency_ms=40, latency_p99_ms=60).running
    state = tmp_path / "state"
    env = env_of(emu, state, FLEET_CONCURRENCY=2)
    proc = cli_process(["sweep", "-p", str(POLICIES), "-o", "json"], env)
    wait_until(lambda: emu.admin.stats()["requests"]["total"] >= 20)
    assert cli(["jobs", "kill-switch", "on", "-r", "stop the sweep"], env).exit_code == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "the kill switch is on" in err and "the sweep stopped" in err
    report = json.loads(out)
    judged = len(report["clusters"])
    assert 0 < judged < len(facts_of(fleet_snapshot))
    assert report["sweep"]["complete"] is False
    with History(f"sqlite:///{state / 'fleet.db'}") as history:
        recorded = history.header(report["sweep"]["id"])
    assert recorded["sweep"]["complete"] is False
    # what was judged is right: a stopped sweep never passes off a wrong verdict
    assert cli(["jobs", "kill-switch", "off"], env).exit_code == 0
    full = json.loads(cli(["sweep", "-p", str(POLICIES), "-o", "json"], env).stdout)
    check_sweep(full, fleet_snapshot, damaged=set())
    by_id = {c["id"]: c for c in full["clusters"]}
    for c in report["clusters"]:
        assert (c["state"], [f["code"] for f in c["findings"]]) == (
            by_id[c["id"]]["state"],
            [f["code"] for f in by_id[c["id"]]["findings"]],
        )


ROLLOUT = (
    "    rollout:\n      waves:\n"
    '        - {name: canary, selector: {tags: {ring: "0"}}}\n'
    "        - {name: broad, percent: 100}\n"
    "      maxConcurrency: 2\n      failureBudget: 100%\n"
)


def test_a_running_remediation_stops_at_its_next_cluster(
    emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """In-flight clusters finish and are verified; no cluster starts after the switch (give
    or take the 1 s the answer is cached); the job ends cancelled with the reason, exit 130,
    one outcome per cluster; the switch released, a retry picks up the rest."""
    emu = emulator_factory(latency_ms=30, latency_p99_ms=50, lro_polls=3).running
    state = tmp_path / "state"
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(ROLLOUT)})
    env = env_of(emu, state, FLEET_CONCURRENCY=2)
    proc = cli_process(["remediate", "-p", str(policies), "--yes", "-o", "json"], env)
    wait_until(lambda: emu.admin.stats()["writes"]["total"] >= 3)
    assert cli(["jobs", "kill-switch", "on", "-r", "halt the rollout"], env).exit_code == 0
    engaged_at = datetime.now(UTC)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    job = json.loads(out)
    assert job["job"]["status"] == "cancelled"
    assert (
        "kill switch" in job["job"]["stopReason"] and "halt the rollout" in job["job"]["stopReason"]
    )
    shown = json.loads(cli(["jobs", "show", job["job"]["id"], "-o", "json"], env).stdout)
    statuses = job_outcomes(job, shown, fleet_snapshot)
    assert "not-started" in statuses.values()
    not_started = [c for c in job["clusters"] if c["status"] == "not-started"]
    assert all("kill switch" in (c["reason"] or "") for c in not_started)
    first_write: dict[str, datetime] = {}
    for w in shown["writes"]:
        at = datetime.fromisoformat(w["startedAt"].replace("Z", "+00:00"))
        first_write[w["clusterId"]] = min(at, first_write.get(w["clusterId"], at))
    late = {c: t for c, t in first_write.items() if t > engaged_at + timedelta(seconds=2)}
    assert late == {}, "clusters started after the kill switch was engaged"
    # the switch released, the job's retry list is picked up
    assert cli(["jobs", "kill-switch", "off"], env).exit_code == 0
    retry = cli(["remediate", "--retry", job["job"]["id"], "--yes", "-o", "json"], env)
    assert retry.exit_code == 0, retry.stderr


def test_a_job_waiting_for_approval_stops(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory().running
    state = tmp_path / "state"
    rollout = "    rollout:\n      waves:\n        - {name: gated, percent: 100, approval: true}\n"
    policies = policy_dir(tmp_path, {"baseline.yaml": with_rollout(rollout)})
    env = env_of(emu, state)
    proc = cli_process(["remediate", "-p", str(policies), "--yes", "-o", "json"], env)

    def waiting() -> bool:
        listed = cli(["jobs", "list", "-o", "json"], env)
        return listed.exit_code == 0 and any(
            j["status"] == "awaiting-approval" for j in json.loads(listed.stdout or "[]")
        )

    wait_until(waiting)
    assert cli(["jobs", "kill-switch", "on"], env).exit_code == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    job = json.loads(out)
    assert job["job"]["status"] == "cancelled" and "kill switch" in job["job"]["stopReason"]
    assert job["summary"]["writes"] == 0 and emu.admin.stats()["writes"]["total"] == 0


@pytest.fixture
def redis_server(tmp_path: Path) -> Any:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = RedisServer(free_port(), tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    yield server
    server.stop()


def test_engaged_reads_the_history_and_the_redis_mirror(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with open_history(url, upgrade=True) as history:
        assert killswitch.engaged(history, redis_server.url) is False
        assert killswitch.engage(history, redis_server.url, reason="r", by="ops") == [
            "history",
            "redis",
        ]
        raw = redis.Redis.from_url(redis_server.url).get(killswitch.REDIS_KEY)
        assert isinstance(raw, bytes)
        mirrored = json.loads(raw)
        assert mirrored["engaged"] is True and mirrored["by"] == "ops"
        assert killswitch.engaged(history, redis_server.url) is True
        found = killswitch.read(history, redis_server.url)
        assert found.sources == ("history", "redis") and found.reason == "r"
        assert killswitch.release(history, redis_server.url) == ["history", "redis"]
        assert redis.Redis.from_url(redis_server.url).get(killswitch.REDIS_KEY) is None
        assert killswitch.engaged(history, redis_server.url) is False
        # Redis alone (a worker's view when the switch was set there): engaged
        redis.Redis.from_url(redis_server.url).set(
            killswitch.REDIS_KEY, json.dumps({"engaged": True, "reason": "from redis"})
        )
        killswitch.forget()
        assert killswitch.engaged(history, redis_server.url) is True
        assert killswitch.engaged(history) is False
        assert killswitch.engaged(redis_url=redis_server.url) is True


def test_engaged_is_cached_and_never_raises(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with open_history(url, upgrade=True) as history:
        began = time.monotonic()
        assert killswitch.engaged(history, dead) is False  # Redis down: the history decides
        assert time.monotonic() - began < 2
        with History(url) as other:  # another process engages it
            other.set_control(killswitch.NAME, {"engaged": True, "reason": "x"}, by="ops")
        assert killswitch.engaged(history, dead) is False  # still the cached answer
        time.sleep(killswitch.CACHE_SECONDS + 0.1)
        assert killswitch.engaged(history, dead) is True
        calls = 0
        began = time.monotonic()
        while time.monotonic() - began < 0.2:
            killswitch.engaged(history, dead)
            calls += 1
        assert calls > 1000  # cheap enough to ask before every cluster


def test_engaged_with_no_arguments_uses_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_fleet_env: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("FLEET_DATABASE_URL", url)
    assert killswitch.engaged() is False
    with History(url) as history:
        killswitch.engage(history, None, reason="from the environment")
    assert killswitch.engaged() is True


def test_another_process_sees_the_switch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with open_history(url, upgrade=True) as history:
        killswitch.engage(history, None, reason="persisted")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fleet.jobs import killswitch; from fleet.record.history import History; "
            f"print(killswitch.engaged(History({url!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "True"


def test_the_cli_mirrors_to_the_configured_redis_only(
    redis_server: RedisServer,
    emulator_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_fleet_env: Path,
) -> None:
    """Mirrored to FLEET_REDIS_URL when it is set; never to a Redis merely found at the
    default address (it may belong to someone else)."""
    from fleet.jobs.killswitch import mirror_url
    from fleet.settings import Settings

    assert mirror_url(Settings()) is None  # FLEET_REDIS_URL unset: the default is not used
    monkeypatch.setenv("FLEET_REDIS_URL", redis_server.url)
    assert mirror_url(Settings()) == redis_server.url
    env = env_of(emulator_factory().running, tmp_path / "state", FLEET_REDIS_URL=redis_server.url)
    on = cli(["jobs", "kill-switch", "on", "-r", "mirrored"], env)
    assert "(set in history, redis)" in on.stderr
    assert status(env)["sources"] == ["history", "redis"]
    assert cli(["jobs", "kill-switch", "off"], env).exit_code == 0
    assert redis.Redis.from_url(redis_server.url).get(killswitch.REDIS_KEY) is None


def test_a_celery_sweep_stops_at_its_next_cluster(
    redis_server: RedisServer, emulator_factory: Any, fleet_snapshot: dict[str, Any], tmp_path: Path
) -> None:
    """The workers ask ``killswitch.engaged()`` before each cluster: a distributed sweep
    stops too, recorded incomplete, with what it judged."""
    emu = emulator_factory(latency_ms=150, latency_p99_ms=200).running
    state = tmp_path / "state"
    env = env_of(
        emu,
        state,
        FLEET_REDIS_URL=redis_server.url,
        FLEET_BROKER_URL=redis_server.url,
        FLEET_BATCH_SIZE=2,
        FLEET_VISIBILITY_TIMEOUT=30,
    )
    workers = Workers(env, tmp_path)
    try:
        workers.start("w1")
        proc = cli_process(["sweep", "-p", str(POLICIES), "--engine", "celery", "-o", "json"], env)
        wait_until(lambda: emu.admin.stats()["requests"]["total"] >= 20)
        assert cli(["jobs", "kill-switch", "on", "-r", "stop the workers"], env).exit_code == 0
        out, err = proc.communicate(timeout=120)
    finally:
        workers.stop_all()
    report = json.loads(out)
    assert 0 < len(report["clusters"]) < len(facts_of(fleet_snapshot)), err
    assert report["sweep"].get("complete") is not True
    with History(f"sqlite:///{state / 'fleet.db'}") as history:
        assert [s["sweep"]["complete"] for s in history.sweeps()] == [False]
