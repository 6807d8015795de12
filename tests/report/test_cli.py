"""``fleet report`` end to end on a recorded history: every format, diff, trends, list, prune,
and the errors a user can meet (no sweeps, unknown or ambiguous reference)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fleet.cli.report_cmds  # noqa: F401  (registers `fleet report` on the app)
from fleet.cli.app import app
from fleet.record.history import History, open_history
from fleet.report.render import FORMATS
from tests.report.conftest import Recorded
from tests.report.sample import SWEEP_IDS, reports

runner = CliRunner()


def run(*args: str, db: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["report", *args, "--database", db])
    return result.exit_code, result.stdout, result.stderr


def test_default_is_the_latest_sweep_as_json(recorded: Recorded) -> None:
    code, out, _ = run(db=recorded.url)
    assert code == 0
    assert json.loads(out) == recorded.report


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_to_a_file(recorded: Recorded, fmt: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / f"report.{fmt}"
    code, out, err = run("latest", "--format", fmt, "--out", str(target), db=recorded.url)
    assert code == 0, err
    assert out == "" and f"wrote {target}" in err
    text = target.read_text(encoding="utf-8")
    assert text.strip()
    assert not list(target.parent.glob(".*"))  # the temporary file was renamed, not left behind
    if fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(text)))) > 30
    if fmt == "html":
        assert "Compared with sweep" in text and SWEEP_IDS[1] in text  # previous found by the CLI


def test_a_reference_picks_the_sweep(recorded: Recorded) -> None:
    code, out, _ = run("previous", db=recorded.url)
    assert code == 0 and json.loads(out)["sweep"]["id"] == SWEEP_IDS[1]
    code, out, _ = run(SWEEP_IDS[0][:12], "-f", "prometheus", db=recorded.url)
    assert code == 0 and f'sweep_id="{SWEEP_IDS[0]}"' in out


def test_md_compares_with_the_sweep_asked_for(recorded: Recorded) -> None:
    code, out, _ = run("latest", "-f", "md", "--compare", SWEEP_IDS[0], db=recorded.url)
    assert code == 0 and f"From sweep `{SWEEP_IDS[0]}`" in out


def test_errors_are_one_line_and_exit_non_zero(recorded: Recorded, tmp_path: Path) -> None:
    code, _, err = run("nope", db=recorded.url)
    assert code == 2 and "no sweep matches 'nope'" in err
    code, _, err = run("2026112", db=recorded.url)
    assert code == 2 and "matches several sweeps" in err
    empty = f"sqlite:///{tmp_path}/empty/fleet.db"
    for args in ((), ("diff",), ("trends",), ("list",)):
        code, out, err = run(*args, db=empty)
        assert code == 1, args
        assert "run `fleet sweep` first" in err and out == ""
    result = runner.invoke(app, ["report", "--format", "pdf", "--database", empty])
    assert result.exit_code == 2 and "pdf" in result.stderr


def test_diff_formats(recorded: Recorded) -> None:
    code, out, _ = run("diff", "-f", "json", db=recorded.url)
    assert code == 0
    data = json.loads(out)
    assert data["from"]["id"] == SWEEP_IDS[1] and data["to"]["id"] == SWEEP_IDS[2]
    assert data["counts"]["newClusters"] == 2
    code, out, _ = run("diff", SWEEP_IDS[0], SWEEP_IDS[2], "-f", "md", db=recorded.url)
    assert code == 0 and "\n## Gone clusters\n" in out and "aks-retired" in out
    code, out, _ = run("diff", db=recorded.url)
    assert code == 0 and "New findings (1)" in out and "aks-retired" in out


def test_trends_and_list(recorded: Recorded) -> None:
    code, out, _ = run("trends", "--last", "2", "-f", "json", db=recorded.url)
    assert code == 0
    data = json.loads(out)
    assert [s["id"] for s in data["sweeps"]] == list(SWEEP_IDS[1:])
    assert data["policies"]["team-apps"] == [50.0, 50.0]
    code, out, _ = run("trends", db=recorded.url)
    assert code == 0 and "platform-baseline" in out and "50.0%" in out
    code, out, _ = run("list", "-f", "json", db=recorded.url)
    assert code == 0 and [s["sweep"]["id"] for s in json.loads(out)] == list(reversed(SWEEP_IDS))
    code, out, _ = run("list", db=recorded.url)
    assert code == 0 and "Recorded sweeps" in out


def test_prune(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fleet.db"
    with open_history(url, upgrade=True) as history:
        for report in reports():
            history.record_sweep(report)
    code, _, err = run("prune", "--days", "100000", db=url)
    assert code == 0 and "deleted 0 sweep(s)" in err
    code, _, err = run("prune", "--days", "1", db=url)  # the samples are from 2026-11
    assert code == 0
    with History(url) as history:
        assert history.count() == 3 - int(err.split()[1])


def test_unfinished_sweep_is_rendered_with_a_computed_summary(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fleet.db"
    report = reports()[-1]
    with open_history(url, upgrade=True) as history:
        sid = history.start_sweep(dict(report["sweep"], finishedAt=None, complete=False))
        history.add_clusters(sid, report["clusters"][:10])
    code, out, err = run(sid, "-f", "json", db=url)
    assert code == 0 and "has not finished" in err
    data = json.loads(out)
    assert data["summary"]["clusters"] == 10 and len(data["clusters"]) == 10
