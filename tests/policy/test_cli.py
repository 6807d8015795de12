"""``fleet validate`` and ``fleet schema`` through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.policy.loading import load
from fleet.policy.schema import render
from tests.policy.helpers import VALID, edit

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_validate_the_example_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["validate", "policies/"])
    assert result.exit_code == 0, result.output
    revision = load(["policies/"]).revision
    assert result.stdout == f"policies/: 6 policies valid (revision {revision})\n"
    assert result.stderr == ""


def test_validate_prints_warnings_and_still_succeeds(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(edit("      expiresOn: 2099-12-31\n", "      expiresOn: 2001-01-31\n"))
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"{file}:18: spec.exemptions[0].expiresOn: warning: "
        "exemption expired on 2001-01-31; the cluster is judged again\n"
    )
    assert result.stdout.startswith(f"{file}: 1 policy valid (revision ")


def test_validate_several_paths_and_all_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(VALID)
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit("  priority: 100\n", "  priority: high\n", VALID.replace("platform", "b")))
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["validate", str(good), str(bad), str(missing)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{missing}: no such file or directory",
        f"{bad}:8: spec.priority: expected an integer, got a string",
        f"{good} {bad} {missing}: invalid (2 errors)",
    ]
    assert result.stdout == ""


def test_validate_without_paths_is_a_usage_error() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_schema_to_stdout_and_to_a_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == render()
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    out = tmp_path / "schema.json"
    result = runner.invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0
    assert out.read_text() == render()
    assert result.stdout == ""
