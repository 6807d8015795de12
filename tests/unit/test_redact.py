"""The redaction registry masks what was registered, and stays bounded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet.core import redact


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    redact.clear()
    yield
    redact.clear()


def test_registered_values_are_masked_longest_first() -> None:
    redact.register("s3cret-value")
    redact.register("s3cret-value-longer")
    assert redact.text("a s3cret-value-longer b s3cret-value") == "a *** b ***"
    redact.register("short")  # too short to mask without mangling words
    assert redact.text("short") == "short"


def test_the_registry_is_bounded_and_keeps_what_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "MAX_VALUES", 3)
    for i in range(3):
        redact.register(f"secret-{i:04d}")
    redact.register("secret-0000")  # used again: the most recent now
    redact.register("secret-0003")  # one too many: the least recently used one goes
    assert redact.size() == 3
    assert redact.text("secret-0001") == "secret-0001"
    assert redact.text("secret-0000 secret-0002 secret-0003") == "*** *** ***"
