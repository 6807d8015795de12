"""The kill switch: one flag that stops every running job at its next step and refuses new ones.

``fleet jobs kill-switch on --reason "..."`` engages it, ``off`` releases it, ``status`` shows
it. The flag lives in the history database (``controls``, name ``kill-switch``), which every
fleet process of an installation shares, and is mirrored to Redis (key ``fleet:kill-switch``)
when ``FLEET_REDIS_URL`` is set and answers (the distributed engine's Redis; the CLI never
writes to a Redis merely found at the default address), so Celery workers can see it without
a database round trip. Either copy engaged means engaged.

Who checks it:

- the local sweep before each cluster it takes (in-flight clusters finish; the sweep is
  recorded incomplete and the command exits 130);
- local remediation between clusters, between waves and while waiting for an approval or a
  soak (in-flight clusters finish and are verified; the job ends ``cancelled`` with the
  reason);
- the Celery tasks (``workers``) before each cluster, through ``engaged()``;
- ``fleet sweep``, ``fleet plan`` and ``fleet remediate`` before they start: they refuse
  (exit 2) while it is engaged.

``engaged()`` is cheap: answers are cached for ``CACHE_SECONDS`` per (database, Redis) pair,
so a worker may call it before every cluster. It never raises. What a store that cannot be read
means depends on what is about to happen: before a *read* (a sweep) it counts as "not engaged"
for that store (the other copy still counts) and is logged; before a *write* (``for_writes``)
it counts as engaged, after a few quick tries: a remediation never writes while the switch
cannot be seen to be off.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet.core.duties import Actor
from fleet.core.errors import KillSwitchEngaged
from fleet.record.db import redacted
from fleet.record.events import KILL_SWITCH_ENGAGE, KILL_SWITCH_RELEASE
from fleet.record.history import History, open_history
from fleet.settings import Settings

log = logging.getLogger(__name__)

#: The control's name in the history database.
NAME = "kill-switch"
#: The Redis key of the mirror.
REDIS_KEY = "fleet:kill-switch"
#: How long ``engaged()`` trusts its last answer.
CACHE_SECONDS = 1.0
#: Redis is a mirror: a connection that does not answer this fast is skipped.
REDIS_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class State:
    """Where the switch stands."""

    engaged: bool
    reason: str | None = None
    by: str | None = None
    at: str | None = None
    #: Where it was found engaged: ``history``, ``redis``.
    sources: tuple[str, ...] = ()
    #: Stores that could not be read (so the answer may be wrong).
    unreadable: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.engaged:
            return "the kill switch is off"
        who = f" by {self.by}" if self.by else ""
        when = f" at {self.at}" if self.at else ""
        why = f": {self.reason}" if self.reason else ""
        return f"the kill switch is on (engaged{who}{when}{why})"

    def to_json(self) -> dict[str, Any]:
        return {
            "engaged": self.engaged,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
            "sources": list(self.sources),
        }


# --- the two stores -----------------------------------------------------------------------------

_lock = threading.Lock()
_histories: dict[str, History] = {}
_redis: dict[str, Any] = {}
_cache: dict[tuple[str | None, str | None], tuple[float, State]] = {}


def _history_for(settings: Settings) -> History:
    url = settings.effective_database_url
    with _lock:
        found = _histories.get(url)
        if found is None:
            found = _histories[url] = open_history(settings)
        return found


def _redis_client(url: str) -> Any:
    import redis

    with _lock:
        client = _redis.get(url)
        if client is None:
            client = _redis[url] = redis.Redis.from_url(
                url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
        return client


def _from_history(history: History) -> dict[str, Any] | None:
    value = history.control(NAME)
    return value if value and value.get("engaged") else None


def _from_redis(url: str) -> dict[str, Any] | None:
    raw = _redis_client(url).get(REDIS_KEY)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = {"engaged": True, "reason": "(unreadable value in Redis)"}
    return value if isinstance(value, dict) and value.get("engaged") else None


def read(history: History | None = None, redis_url: str | None = None) -> State:
    """The switch as the given stores say, read now (no cache). With neither given, the
    history database of the settings in the environment is read."""
    if history is None and redis_url is None:
        history = _history_for(Settings())
    found: list[tuple[str, dict[str, Any]]] = []
    unreadable: list[str] = []
    if history is not None:
        try:
            value = _from_history(history)
            if value is not None:
                found.append(("history", value))
        except Exception as exc:
            unreadable.append("history")
            log.warning("kill switch: the history database could not be read: %s", exc)
    if redis_url:
        try:
            value = _from_redis(redis_url)
            if value is not None:
                found.append(("redis", value))
        except Exception as exc:
            unreadable.append("redis")
            log.debug("kill switch: Redis at %s could not be read: %s", redacted(redis_url), exc)
    if not found:
        return State(False, unreadable=tuple(unreadable))
    first = found[0][1]
    return State(
        True,
        first.get("reason"),
        first.get("by") or first.get("updatedBy"),
        first.get("at") or first.get("updatedAt"),
        tuple(s for s, _ in found),
        tuple(unreadable),
    )


def state(history: History | None = None, redis_url: str | None = None) -> State:
    """``read`` with the answer cached for ``CACHE_SECONDS`` per (database, Redis) pair."""
    cache_key = (history.url if history is not None else None, redis_url)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(cache_key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    found = read(history, redis_url)
    with _lock:
        _cache[cache_key] = (now, found)
    return found


def engaged(history: History | None = None, redis_url: str | None = None) -> bool:
    """True while the kill switch is on (cached ~1 s; never raises).

    ``history``: the installation's history database (default: the one the environment's
    settings name, when ``redis_url`` is not given either). ``redis_url``: also look at the
    Redis mirror (what the Celery workers use).
    """
    return state(history, redis_url).engaged


#: Tries, and the pause between them, before a store that cannot be read stops writes.
UNREADABLE_TRIES = 3
UNREADABLE_PAUSE = 0.2


def for_writes(history: History | None = None, redis_url: str | None = None) -> State:
    """The switch as a write must see it (cached like ``state``): engaged when it is on, and
    also when one of the stores cannot be read after ``UNREADABLE_TRIES`` quick tries (fail
    closed: a job stops rather than write while the switch may be on)."""
    found = state(history, redis_url)
    for _ in range(UNREADABLE_TRIES - 1):
        if found.engaged or not found.unreadable:
            return found
        time.sleep(UNREADABLE_PAUSE)
        found = read(history, redis_url)
    if found.engaged or not found.unreadable:
        return found
    stores = " and ".join(
        "the history database" if s == "history" else "Redis" for s in found.unreadable
    )
    closed = State(
        True,
        f"{stores} could not be read, so the kill switch may be on: writes stop (fail closed)",
        sources=("unreadable",),
        unreadable=found.unreadable,
    )
    cache_key = (history.url if history is not None else None, redis_url)
    with _lock:
        _cache[cache_key] = (time.monotonic(), found)
    return closed


def forget() -> None:
    """Drop the cached answers (after a change made in this process; tests)."""
    with _lock:
        _cache.clear()


# --- changing it -----------------------------------------------------------------------------


def engage(
    history: History,
    redis_url: str | None,
    *,
    reason: str | None = None,
    by: str | None = None,
    actor: Actor | None = None,
) -> list[str]:
    """Turn the switch on: in the history database (must succeed) and, when it answers, in
    Redis. Returns where it was set. ``actor`` (the local user by default) is in the audit
    trail; ``by`` names it in the switch's description."""
    actor = actor or (Actor(by, None, "cli") if by else Actor.local())
    by = by or actor.name
    value = {
        "engaged": True,
        "reason": reason,
        "by": by,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    history.set_control(NAME, value, by=by)
    history.record_event(KILL_SWITCH_ENGAGE, actor, detail={"reason": reason})
    where = ["history"]
    if redis_url and _set_redis(redis_url, json.dumps(value)):
        where.append("redis")
    forget()
    log.warning("kill switch engaged by %s: %s", by, reason or "(no reason given)")
    return where


def release(
    history: History,
    redis_url: str | None,
    *,
    by: str | None = None,
    actor: Actor | None = None,
) -> list[str]:
    """Turn the switch off in both stores. Returns where it was cleared."""
    actor = actor or (Actor(by, None, "cli") if by else Actor.local())
    by = by or actor.name
    history.set_control(
        NAME,
        {"engaged": False, "by": by, "at": datetime.now(UTC).isoformat(timespec="seconds")},
        by=by,
    )
    history.record_event(KILL_SWITCH_RELEASE, actor)
    where = ["history"]
    if redis_url and _set_redis(redis_url, None):
        where.append("redis")
    forget()
    log.warning("kill switch released by %s", by)
    return where


def _set_redis(url: str, value: str | None) -> bool:
    try:
        client = _redis_client(url)
        if value is None:
            client.delete(REDIS_KEY)
        else:
            client.set(REDIS_KEY, value)
        return True
    except Exception as exc:
        log.info("kill switch: Redis at %s not updated: %s", redacted(url), exc)
        return False


def mirror_url(settings: Settings) -> str | None:
    """The Redis the switch is mirrored to: ``FLEET_REDIS_URL`` when it is configured (the
    distributed engine's), never the default address of a Redis that may belong to others."""
    return settings.redis_url if "redis_url" in settings.model_fields_set else None


def check(history: History | None = None, redis_url: str | None = None) -> None:
    """Raise ``KillSwitchEngaged`` when the switch is on (read fresh: a job about to start)."""
    found = read(history, redis_url)
    if found.engaged:
        raise KillSwitchEngaged(found.describe())
