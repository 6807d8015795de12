"""Settings: FLEET_* variables, safety checks, and the generated reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fleet.settings import Settings, is_loopback_url, reference_markdown

REPO = Path(__file__).resolve().parents[2]


def test_docs_settings_is_up_to_date() -> None:
    assert (REPO / "docs" / "settings.md").read_text() == reference_markdown(), (
        "regenerate: python -m fleet.settings > docs/settings.md"
    )


def test_every_setting_is_documented() -> None:
    assert all(f.description for f in Settings.model_fields.values())


def test_environment_and_lists(monkeypatch: pytest.MonkeyPatch, clean_fleet_env: Path) -> None:
    monkeypatch.setenv("FLEET_SUBSCRIPTIONS", "a, b ,")
    monkeypatch.setenv("FLEET_CONCURRENCY", "7")
    s = Settings()
    assert s.subscriptions == ["a", "b"]
    assert s.concurrency == 7
    assert s.effective_database_url.startswith("sqlite:///") and s.effective_database_url.endswith(
        "fleet.db"
    )


def test_emulator_auth_is_only_for_loopback(clean_fleet_env: Path) -> None:
    with pytest.raises(ValidationError, match="refused"):
        Settings(auth="emulator", arm_endpoint="https://management.azure.com")
    assert Settings(auth="emulator", arm_endpoint="https://127.0.0.1:8443").auth == "emulator"
    assert Settings(auth="emulator", arm_endpoint="https://[::1]:8443").auth == "emulator"


def test_http_endpoints_are_refused(clean_fleet_env: Path) -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(arm_endpoint="http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("https://127.0.0.1:1", True),
        ("https://localhost", True),
        ("https://[::1]:2", True),
        ("https://10.0.0.1", False),
        ("https://management.azure.com", False),
    ],
)
def test_loopback_detection(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
