"""SSH sources without a key: ARM generates the pair, and ``fleet deploy-keys`` lists them.

Through the real SDK and CLI against the emulator: a flux configuration with an ``ssh://`` URL
and no ``sshPrivateKey`` answers ``repositoryPublicKey`` (base64 OpenSSH) and keeps it across
writes; a key the request gives is the one whose public half is shown; the private half never
leaves ARM (not in answers, not in the snapshot). ``fleet deploy-keys`` prints one row per
cluster and configuration with the repository URL and the OpenSSH public key, as JSON or CSV.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import emulator_env
from tests.emulator.conftest import ARC, FAST, RG_EDGE, build_fleet, flux_client

ARGS = (RG_EDGE, ARC, "connectedClusters", "arc-edge-00001")
SSH_URL = "ssh://git@github.com/contoso/cluster-config.git"


def _body(url: str = SSH_URL, **protected: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "namespace": "cluster-config",
        "gitRepository": {"url": url, "repositoryRef": {"branch": "main"}},
        "kustomizations": {"infra": {"path": "./infra"}},
    }
    if protected:
        props["configurationProtectedSettings"] = protected
    return {"properties": props}


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(build_fleet(), **FAST) as emu:
        yield emu


def _put(emu: RunningEmulator, name: str, body: dict[str, Any]) -> dict[str, Any]:
    ops = flux_client(emu).flux_configurations
    ops.begin_create_or_update(*ARGS, name, body, polling_interval=0).result()
    found: dict[str, Any] = ops.get(*ARGS, name).as_dict()
    return found


def test_an_ssh_source_without_a_key_gets_a_generated_pair(emulator: RunningEmulator) -> None:
    first = _put(emulator, "ssh-config", _body())["properties"]["repositoryPublicKey"]
    line = base64.b64decode(first).decode()
    assert line.startswith("ecdsa-sha2-nistp384 ")
    serialization.load_ssh_public_key(line.encode())  # a real OpenSSH public key
    again = _put(emulator, "ssh-config", _body())["properties"]["repositoryPublicKey"]
    assert again == first  # a registered deploy key must not change under the repository
    https = _put(emulator, "https-config", _body("https://github.com/contoso/x"))
    assert https["properties"]["repositoryPublicKey"] == ""
    dump = json.dumps(emulator.admin.snapshot())
    assert "PRIVATE KEY" not in dump and first in dump


def test_a_given_private_key_is_the_one_shown(emulator: RunningEmulator) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    body = _body(sshPrivateKey=base64.b64encode(private).decode())
    shown = _put(emulator, "own-key", body)["properties"]["repositoryPublicKey"]
    assert base64.b64decode(shown) == public


def test_fleet_deploy_keys_lists_every_key(emulator: RunningEmulator, tmp_path: Path) -> None:
    key = _put(emulator, "ssh-config", _body())["properties"]["repositoryPublicKey"]
    env = emulator_env(emulator, tmp_path)
    result = CliRunner().invoke(app, ["deploy-keys"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["configuration"] for r in rows] == ["ssh-config"]
    (row,) = rows
    assert row["repositoryUrl"] == SSH_URL
    assert row["clusterName"] == "arc-edge-00001"
    assert row["publicKey"] == base64.b64decode(key).decode()
    out = tmp_path / "keys.csv"
    result = CliRunner().invoke(
        app, ["deploy-keys", "-o", "csv", "--out", str(out)], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    (csv_row,) = list(csv.DictReader(io.StringIO(out.read_text())))
    assert csv_row["public_key"] == row["publicKey"]
    assert csv_row["cluster"].endswith("/connectedClusters/arc-edge-00001")
