"""The local engine: sweeps and remediation jobs on one machine (a bounded thread pool).

The per-cluster unit of work (``work.judge_cluster``) is shared with the Celery workers, so
the local and distributed engines cannot disagree.
"""
