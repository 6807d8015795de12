"""``fleet validate`` on each file of tests/policy/broken/: one defect per file.

The first line of each file says what must be reported: ``# expect: LINE: rest``, so the
expected output is ``FILE:LINE: rest`` (``{file}`` in ``rest`` stands for the file's path). The
command runs through Typer's CliRunner for each file, and once as a real subprocess on the
whole directory, which also proves that errors of all files are collected.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.cli import app

BROKEN = Path(__file__).parent / "broken"
FILES = sorted(BROKEN.glob("*.yaml"))
REPO = Path(__file__).resolve().parents[2]


def expected_line(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    rest = first.removeprefix("# expect: ")
    display = str(path)
    return f"{display}:{rest.replace('{file}', display)}"


def test_there_is_a_broken_file_per_defect() -> None:
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_reports_the_defect(path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert expected_line(path) in lines
    assert lines[-1].startswith(f"{path}: invalid (")
    assert result.stdout == ""
    assert "Traceback" not in result.output
    # Each file has exactly one defect, so exactly one error (plus the summary line).
    assert len(lines) == 2, lines


def test_secret_values_are_never_printed() -> None:
    for path in FILES:
        result = CliRunner().invoke(app, ["validate", str(path)])
        assert "SUPERSECRETVALUE" not in result.output


def test_validate_as_a_real_process_on_the_whole_directory() -> None:
    fleet = Path(sys.executable).parent / "fleet"
    command = [str(fleet)] if fleet.exists() else [sys.executable, "-m", "fleet"]
    rel = os.path.relpath(BROKEN, REPO)
    done = subprocess.run(
        [*command, "validate", rel + "/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    for path in FILES:
        assert expected_line(Path(rel) / path.name) in lines
    assert lines[-1] == f"{rel}/: invalid ({len(FILES)} errors)"
