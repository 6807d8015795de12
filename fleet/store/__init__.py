"""History database and Redis coordination."""
