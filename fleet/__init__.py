"""fleet: keep AKS and Azure Arc fleets consistent with declarative GitOps (Flux v2) policy.

The package is a functional core inside an imperative shell (see docs/architecture.md):

* ``fleet.core``     ids, cluster facts and the compliance vocabulary (leaf, no I/O)
* ``fleet.policy``   the policy language: models, loading with file:line errors, selection
* ``fleet.engine``   desired state, observed essence, diff, versions, evaluate, plan (pure)
* ``fleet.azure``    the only importer of ``azure.*``: credentials, inventory, observe, apply
* ``fleet.store``    history database (SQLAlchemy) and Redis coordination
* ``fleet.report``   report model and renderers (json, csv, md, html, PolicyReport, ...)
* ``fleet.jobs``     the local engine: sweeps and remediation jobs on one machine
* ``fleet.emulator`` an offline ARM that the real SDK cannot tell apart (never imported by the rest)
* ``fleet.cli``      the ``fleet`` command
"""

__version__ = "0.1.0"
