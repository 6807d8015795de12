"""The LRO machine: ARM's long-running operations and what settles them.

A write of an extension or flux configuration starts an ``Operation`` (an Azure-AsyncOperation
resource). It ends after ``lro_polls`` status polls or ``lro_seconds`` of emulated time,
whichever comes first, with the outcome decided when the write was accepted; a newer write of
the same resource cancels it. Operations on a disconnected Arc cluster are *blocked*: polls do
not move them, and they time out after 48 h of emulated time unless the cluster is connected
again first. A flux configuration whose operation succeeded stays ``Pending`` for
``reconcile_seconds`` and then shows the state Flux reconciled it to: ``Compliant``,
``Non-Compliant`` (a failing source, or an injected fault) or ``Suspended``.

Due work sits in a ``Schedule`` and is settled by ``tick()`` at the start of each request.
Work in flight survives a dump: it goes to the snapshot's ``emulator`` section (``operations``,
``reconciling``) and an emulator started from the dump carries on where this one stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fleet.emulator import errors as e
from fleet.emulator import regions, shapes
from fleet.emulator.clock import Clock, Schedule, iso, parse_time
from fleet.emulator.errors import LroError
from fleet.emulator.options import EmulatorOptions
from fleet.emulator.rules import disconnected, source_of, target_version
from fleet.emulator.snapshot import CLUSTER_TYPES
from fleet.emulator.stats import Stats
from fleet.emulator.store import KINDS, Store, key_of, split_child

ARC_TIMEOUT = timedelta(hours=48)
_IN_PROGRESS = {"create": "Creating", "update": "Updating", "delete": "Deleting"}
_TERMINAL = frozenset({"Succeeded", "Failed", "Canceled"})
#: Finished operations stay pollable; past this many the oldest are forgotten, a batch at once.
_KEEP_FINISHED = 50_000
_FORGET_BATCH = 10_000


@dataclass(slots=True)
class Operation:
    """An async operation (Azure-AsyncOperation resource) of one resource."""

    id: str
    resource_key: str
    resource_id: str
    cluster_key: str
    kind: str
    action: str  # create | update | delete
    status: str
    start: datetime
    polls_left: int | None
    due: datetime | None
    error: LroError | None  # the outcome decided when the write was accepted
    blocked: bool
    non_compliant: bool = False
    end: datetime | None = None
    failure: LroError | None = None  # the error it actually ended with
    linked: list[Operation] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in _TERMINAL

    @property
    def url_path(self) -> str:
        return f"{self.resource_id}/operations/{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.url_path,
            "name": self.id,
            "status": self.status,
            "startTime": iso(self.start),
            "endTime": iso(self.end) if self.end else None,
            "properties": {},
            "error": self.failure.to_json() if self.failure else None,
        }


@dataclass(slots=True)
class _Meta:
    """Per-resource state that is not part of the resource (never dumped)."""

    generation: int = 0
    operation: Operation | None = None
    compliance: str | None = None  # the state a reconcile in progress will end in
    #: The private half of a deploy key ARM generated (keys.py): kept, never answered.
    ssh_private_key: bytes | None = None


def _norm_url(url: str) -> str:
    return url.strip().lower().rstrip("/").removesuffix(".git")


class Lro(Store):
    """The store plus the operations on its resources and the emulated clock they run on."""

    def __init__(
        self,
        snapshot: Mapping[str, Any],
        options: EmulatorOptions | None = None,
        *,
        stats: Stats | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(snapshot, options)
        self.stats = stats or Stats()
        self.clock = clock or Clock()
        self._meta: dict[str, _Meta] = {}
        self._ops: dict[str, Operation] = {}
        self._finished_ops: list[str] = []
        self._schedule = Schedule()
        emulator = snapshot.get("emulator") or {}
        self.failing_sources: set[str] = {
            _norm_url(u) for u in emulator.get("failingSources") or ()
        }
        self._restore(emulator.get("operations") or (), emulator.get("reconciling") or ())

    # ------------------------------------------------------------------ time and due work

    def tick(self) -> None:
        """Settle every piece of work whose emulated time has come."""
        if not self._schedule:
            return
        now_ts = self.clock.timestamp()
        for kind, ref in self._schedule.pop_due(now_ts):
            if kind == "op":
                op: Operation = ref
                if op.terminal:
                    continue
                if op.blocked:
                    if now_ts >= (op.start + ARC_TIMEOUT).timestamp():
                        self._finish(
                            op,
                            LroError(
                                e.OPERATION_TIMED_OUT,
                                "The cluster has not been connected to Azure for 48 hours: the "
                                "pending change timed out and must be applied again.",
                            ),
                        )
                elif op.due is not None and now_ts >= op.due.timestamp():
                    self._finish(op, op.error)
            elif kind == "reconcile":
                key, generation = ref
                meta = self._meta.get(key)
                if meta is not None and meta.generation == generation and meta.compliance:
                    self._settle_compliance(key, meta)

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.tick()

    def set_clock(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.tick()

    def _schedule_op(self, op: Operation) -> None:
        """Wake the operation when it times out (blocked) or is due."""
        if op.blocked:
            self._schedule.push(op.start + ARC_TIMEOUT, "op", op)
        elif op.due is not None:
            self._schedule.push(op.due, "op", op)

    # ------------------------------------------------------------------ per-resource state

    def _meta_of(self, key: str) -> _Meta:
        meta = self._meta.get(key)
        if meta is None:
            meta = self._meta[key] = _Meta()
        return meta

    def _remove(self, key: str) -> None:
        """Forget a resource and its state (its operation, if any, is over by now)."""
        self._meta.pop(key, None)
        self._unindex(key)

    # ------------------------------------------------------------------ operations

    def _start(
        self,
        cluster: Mapping[str, Any],
        res: dict[str, Any],
        kind: str,
        action: str,
        error: LroError | None,
        non_compliant: bool,
    ) -> Operation:
        """Start the async operation of a write (superseding one still running)."""
        key = key_of(res["id"])
        self._cancel(key)
        now = self.clock.now()
        opts = self.options
        status = _IN_PROGRESS[action]
        op = Operation(
            id=str(uuid.uuid4()),
            resource_key=key,
            resource_id=str(res["id"]),
            cluster_key=key_of(cluster["id"]),
            kind=kind,
            action=action,
            status=status,
            start=now,
            polls_left=opts.lro_polls,
            due=now + timedelta(seconds=opts.lro_seconds) if opts.lro_seconds is not None else None,
            error=error,
            blocked=disconnected(cluster),
            non_compliant=non_compliant,
        )
        shapes.accepted(kind, res.setdefault("properties", {}), action, status)
        self._ops[op.id] = op
        self._meta_of(key).operation = op
        self.stats.lro("started")
        self._schedule_op(op)
        return op

    def _poll(self, op: Operation) -> None:
        """One status poll: counts against ``lro_polls`` and may end the operation."""
        if not op.terminal and not op.blocked and op.polls_left is not None:
            if op.polls_left > 0:
                op.polls_left -= 1
            else:
                self._finish(op, op.error)

    def _cancel(self, key: str) -> None:
        meta = self._meta.get(key)
        op = meta.operation if meta else None
        if op is not None and not op.terminal:
            op.status = "Canceled"
            op.failure = LroError(
                e.OPERATION_CANCELED, "The operation was superseded by a newer request."
            )
            op.end = self.clock.now()
            self.stats.lro("canceled")
            self._retire(op)

    def _retire(self, op: Operation) -> None:
        # Keep the most recent finished operations pollable; forget the oldest.
        self._finished_ops.append(op.id)
        if len(self._finished_ops) > _KEEP_FINISHED:
            for old in self._finished_ops[:_FORGET_BATCH]:
                self._ops.pop(old, None)
            del self._finished_ops[:_FORGET_BATCH]

    def _finish(self, op: Operation, error: LroError | None) -> None:
        """End an operation: apply its outcome to the resource."""
        if op.terminal:
            return
        for linked in op.linked:
            # A linked operation still blocked on a disconnected cluster shares the timeout;
            # otherwise it ends with its own outcome (an injected failure of the flux
            # configuration does not fail the extension installed for it).
            self._finish(linked, error if linked.blocked else linked.error)
        now = self.clock.now()
        op.end = now
        op.status = "Failed" if error else "Succeeded"
        op.failure = error
        self.stats.lro("failed" if error else "succeeded")
        self._retire(op)
        res = self._resources.get(op.resource_key)
        meta = self._meta.get(op.resource_key)
        if res is None or meta is None or meta.operation is not op:
            return  # the resource went away (force delete) or a newer write took over
        props = res.setdefault("properties", {})
        if error is not None:
            shapes.failed(op.kind, props, error, iso(self.clock.now()))
        elif op.action == "delete":
            self._remove(op.resource_key)
        elif op.kind == "extensions":
            trains = self._trains_for(op.resource_key, props)
            shapes.extension_installed(props, target_version(trains, props)[0])
        elif op.kind == "fluxConfigurations":
            shapes.flux_applied(props)
            if props.get("suspend"):
                target = "Suspended"
            elif op.non_compliant or self._source_fails(props):
                target = "Non-Compliant"
            else:
                target = "Compliant"
            meta.compliance = target
            if self.options.reconcile_seconds == 0:
                self._settle_compliance(op.resource_key, meta)
            else:
                when = now + timedelta(seconds=self.options.reconcile_seconds)
                self._schedule.push(when, "reconcile", (op.resource_key, meta.generation))

    def _trains_for(
        self, extension_key: str, props: Mapping[str, Any]
    ) -> dict[str, list[str]] | None:
        """The catalogue trains of an extension's type as its cluster's location serves them."""
        cluster = self._clusters.get(split_child(extension_key)[0]) or {}
        return regions.trains_in(
            self._catalog,
            self._doc,
            str(props.get("extensionType", "")),
            str(cluster.get("location") or ""),
            self.clock.now(),
        )

    def _source_fails(self, props: Mapping[str, Any]) -> bool:
        source = source_of(props)
        url = source.get("url") if isinstance(source, Mapping) else None
        return isinstance(url, str) and _norm_url(url) in self.failing_sources

    def _settle_compliance(self, key: str, meta: _Meta) -> None:
        res = self._resources.get(key)
        target = meta.compliance
        meta.compliance = None
        if res is None or target is None:
            return
        shapes.flux_reconciled(res["name"], res["properties"], target, iso(self.clock.now()))

    def set_failing_sources(self, urls: Iterable[str]) -> None:
        self.failing_sources = {_norm_url(u) for u in urls}

    # ------------------------------------------------------------------ connectivity

    def upsert_resource(self, resource: Any) -> dict[str, Any]:
        stored = super().upsert_resource(resource)
        if str(stored["type"]).lower() in CLUSTER_TYPES and not disconnected(stored):
            self._reconnect(key_of(stored["id"]))
        return stored

    def _reconnect(self, cluster_key: str) -> None:
        """A cluster is connected again: its blocked operations run their normal course."""
        now = self.clock.now()
        for op in list(self._ops.values()):
            if op.cluster_key == cluster_key and op.blocked and not op.terminal:
                op.blocked = False
                op.polls_left = self.options.lro_polls
                if self.options.lro_seconds is not None:
                    op.due = now + timedelta(seconds=self.options.lro_seconds)
                    self._schedule.push(op.due, "op", op)

    # ------------------------------------------------------------------ dump and restore

    def dump(self) -> dict[str, Any]:
        """The current state in the snapshot format (shares live objects: serialize at once).

        Work still in flight (operations not finished, flux configurations still reconciling)
        is added to the ``emulator`` section as ``operations`` and ``reconciling``, so that an
        emulator started from the dump carries on where this one stopped, as ARM does after a
        restart of its front end: the same operation ids poll to the same outcome.
        """
        self.tick()
        out = super().dump()
        section = {
            k: v
            for k, v in dict(out.get("emulator") or {}).items()
            if k not in ("operations", "reconciling")
        }
        inflight = self._inflight()
        if inflight or "emulator" in out:
            out["emulator"] = {**section, **inflight}
        return out

    def _inflight(self) -> dict[str, Any]:
        """The operations not finished and the reconciles not settled, as JSON."""
        operations = [
            {
                "id": op.id,
                "resourceId": op.resource_id,
                "kind": op.kind,
                "action": op.action,
                "status": op.status,
                "startTime": iso(op.start),
                "pollsLeft": op.polls_left,
                "due": iso(op.due) if op.due is not None else None,
                "error": op.error.to_json() if op.error is not None else None,
                "blocked": op.blocked,
                "nonCompliant": op.non_compliant,
                "linked": [linked.id for linked in op.linked],
            }
            for op in self._ops.values()
            if not op.terminal
        ]
        reconciling = []
        for when, kind, ref in self._schedule.pending():
            if kind != "reconcile":
                continue
            key, generation = ref
            meta = self._meta.get(key)
            res = self._resources.get(key)
            if meta is None or res is None or meta.generation != generation or not meta.compliance:
                continue
            reconciling.append(
                {"resourceId": res["id"], "target": meta.compliance, "due": iso(when)}
            )
        out: dict[str, Any] = {}
        if operations:
            out["operations"] = operations
        if reconciling:
            out["reconciling"] = reconciling
        return out

    def _restore(self, operations: Iterable[Any], reconciling: Iterable[Any]) -> None:
        """Take over the in-flight work of a dumped emulator (``snapshot.validate`` checked
        the shapes and that every resource exists)."""
        restored: dict[str, tuple[Operation, list[str]]] = {}
        for item in operations:
            key = key_of(item["resourceId"])
            res = self._resources[key]
            cluster_key = key[: key.rfind("/providers/microsoft.kubernetesconfiguration/")]
            error = item.get("error")
            op = Operation(
                id=str(item["id"]).lower(),
                resource_key=key,
                resource_id=str(res["id"]),
                cluster_key=cluster_key,
                kind=KINDS[str(item["kind"]).lower()],
                action=item["action"],
                status=item["status"],
                start=parse_time(item["startTime"]),
                polls_left=item.get("pollsLeft"),
                due=parse_time(item["due"]) if item.get("due") else None,
                error=LroError(error["code"], error["message"]) if error else None,
                blocked=bool(item.get("blocked")),
                non_compliant=bool(item.get("nonCompliant")),
            )
            self._ops[op.id] = op
            self._meta_of(key).operation = op
            restored[op.id] = (op, [str(i).lower() for i in item.get("linked") or ()])
            self._schedule_op(op)
        for op, linked in restored.values():
            op.linked = [restored[i][0] for i in linked if i in restored]
        for item in reconciling:
            key = key_of(item["resourceId"])
            meta = self._meta_of(key)
            meta.compliance = item["target"]
            self._schedule.push(parse_time(item["due"]), "reconcile", (key, meta.generation))
