"""Celery workers for fleet's distributed mode.

Started the standard way::

    celery -A workers worker --pool threads --concurrency 16   # every fleet queue
    celery -A workers worker --pool threads -Q fleet.writes,fleet.polls -c 4
    celery -A workers beat                                      # scheduled sweeps (RedBeat)

``celery -A workers`` finds ``workers.app``. Tasks are thin: they decode ids, call the same
per-cluster functions as the local engine (``fleet.jobs``), and record outcomes in Redis.
"""

from workers.app import app

__all__ = ["app"]
