"""Fuzz tests (hypothesis). ``EXAMPLES`` is the bounded number of examples per test in CI;
``pytest tests/fuzz --hypothesis-profile fuzz-long`` (registered in tests/conftest.py) runs
far more, for a long local run."""

from __future__ import annotations

from hypothesis import settings

#: Examples per fuzz test: 150 by default, more under a profile that asks for more.
EXAMPLES = max(150, settings.default.max_examples if settings.default is not None else 0)
