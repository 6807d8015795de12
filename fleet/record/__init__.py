"""Recording: the history database (SQL) and the distributed job state (Redis)."""
