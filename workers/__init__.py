"""Celery workers for fleet's distributed mode (``celery -A workers worker``)."""
