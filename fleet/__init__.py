"""fleet: keep AKS and Azure Arc fleets consistent with declarative GitOps (Flux v2) policy.

The package is a functional core inside an imperative shell (see docs/architecture.md):

* ``fleet.core``     ids, cluster facts and the compliance vocabulary (leaf, no I/O)
The pure data flow, one folder a step (no I/O):

* ``fleet.policy``   the policy language: models, loading with file:line errors, JSON Schema
* ``fleet.select``   which policies target a cluster (targets, exclusions, exemptions)
* ``fleet.desired``  policies merged and rendered into the desired ARM bodies of a cluster
* ``fleet.observe``  what ARM shows of a cluster: raw JSON, its essence, well-formedness
* ``fleet.evaluate`` desired against observed: findings, versions (N-2), the verdict
* ``fleet.plan``     the ARM writes that would fix a cluster; the per-cluster pipeline

The shell around it:

* ``fleet.apply``    a remediation job: its lifecycle rules, per-cluster steps, waves
* ``fleet.azure``    the only importer of ``azure.*``: credentials, inventory, reads, writes
* ``fleet.record``   the history database (SQLAlchemy) and the distributed job state (Redis)
* ``fleet.report``   report model and renderers (json, csv, md, html, PolicyReport, ...)
* ``fleet.jobs``     the engines' drivers: sweeps and remediation on one machine or Celery
* ``fleet.emulator`` an offline ARM that the real SDK cannot tell apart (never imported by the rest)
* ``fleet.cli``      the ``fleet`` command
"""

__version__ = "0.1.0"
