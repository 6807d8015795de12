"""``fleet emulator serve``: one JSON line when ready, serves the SDK, stops cleanly on signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient

from fleet.emulator.testing import AdminClient

from .conftest import AKS, RG_PROD, FakeCredential

ROOT = Path(__file__).resolve().parents[2]


def _serve(snapshot: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fleet", "emulator", "serve", "--snapshot", str(snapshot), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_one_json_line_and_stops_on_signals(
    tmp_path: Path, fleet: dict[str, Any], stop: signal.Signals
) -> None:
    snapshot = tmp_path / "fleet.json"
    snapshot.write_text(json.dumps(fleet))
    proc = _serve(snapshot, "--port", "0", "--retry-after", "0", "--page-size", "2")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        ready = json.loads(line)
        assert set(ready) == {"endpoint", "caBundle", "keyvaultUrl"}
        assert ready["endpoint"].startswith("https://127.0.0.1:")
        ca = Path(ready["caBundle"])
        assert ca.is_file()
        client = SourceControlConfigurationClient(
            FakeCredential(),
            fleet["subscriptions"][0]["subscriptionId"],
            base_url=ready["endpoint"],
            connection_verify=str(ca),
        )
        assert (
            client.extensions.get(RG_PROD, AKS, "managedClusters", "aks-prod-00001", "flux").name
            == "flux"
        )
        assert AdminClient(ready["endpoint"], ca).snapshot() == fleet
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out == ""  # exactly one line on stdout, the rest is on stderr
    assert "ARM emulator serving" in err
    assert not ca.exists()  # the throwaway CA is removed


def test_serve_rejects_an_invalid_snapshot(tmp_path: Path, fleet: dict[str, Any]) -> None:
    del fleet["resources"][1]["id"]
    snapshot = tmp_path / "fleet.json"
    snapshot.write_text(json.dumps(fleet))
    proc = _serve(snapshot)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert "fleet.json: resources[1]: missing 'id'" in err


def test_serve_refuses_a_non_loopback_bind(tmp_path: Path, fleet: dict[str, Any]) -> None:
    snapshot = tmp_path / "fleet.json"
    snapshot.write_text(json.dumps(fleet))
    proc = _serve(snapshot, "--host", "0.0.0.0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "refusing to bind '0.0.0.0'" in err and "--allow-remote" in err


def test_serve_reports_a_port_in_use(tmp_path: Path, fleet: dict[str, Any]) -> None:
    snapshot = tmp_path / "fleet.json"
    snapshot.write_text(json.dumps(fleet))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _serve(snapshot, "--port", str(taken.getsockname()[1]))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "cannot bind 127.0.0.1:" in err
