"""docker-compose.yml: valid compose, and every command of every service exists in the code.

No Docker engine runs in CI, so the stack is not started; instead ``docker-compose config``
validates the file, and each service's command is resolved against the real CLI (Typer and
Celery) — a renamed command or queue breaks this test, not a deployment.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from fleet.cli import app
from fleet.settings import Settings
from tests.conftest import REPO, require
from workers.app import QUEUES

COMPOSE = REPO / "docker-compose.yml"
CELERY = str(Path(sys.executable).with_name("celery"))


def services() -> dict[str, Any]:
    return dict(YAML(typ="safe").load(COMPOSE.read_text())["services"])


def commands(service: dict[str, Any]) -> list[list[str]]:
    """The command lines a service runs (``sh -c "a && exec b"`` gives two)."""
    cmd = service.get("command")
    if cmd is None:
        return []
    if isinstance(cmd, str):
        cmd = shlex.split(cmd)
    if cmd[:2] == ["sh", "-c"]:
        out = []
        for part in cmd[2].split("&&"):
            words = shlex.split(part)
            out.append(words[1:] if words and words[0] == "exec" else words)
        return out
    return [list(cmd)]


def test_docker_compose_config_validates() -> None:
    require(shutil.which("docker-compose") is not None, "docker-compose is not installed")
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_fleet_command_exists() -> None:
    runner = CliRunner()
    seen = 0
    for name, service in services().items():
        for words in commands(service):
            if not words or words[0] != "fleet":
                continue
            # the command path is the words before the first option
            path = []
            for w in words[1:]:
                if w.startswith("-"):
                    break
                path.append(w)
            result = runner.invoke(app, [*path, "--help"])
            assert result.exit_code == 0, (name, path, result.output)
            options = {w.split("=")[0] for w in words if w.startswith("--")}
            for option in options:
                assert option in result.output, (name, option)
            seen += 1
    assert seen >= 2


def test_every_celery_command_exists_and_names_real_queues() -> None:
    seen = set()
    for name, service in services().items():
        for words in commands(service):
            if not words or words[0] != "celery":
                continue
            assert words[1:3] == ["-A", "workers"], name
            sub = words[3]
            if "-Q" in words:
                queues = words[words.index("-Q") + 1].split(",")
                assert set(queues) <= set(QUEUES), (name, queues)
            result = subprocess.run(
                [CELERY, "-A", "workers", sub, "--help"], cwd=REPO, capture_output=True, text=True
            )
            assert result.returncode == 0, (name, sub, result.stderr[-2000:])
            seen.add(sub)
    assert {"worker", "beat", "flower"} <= seen


def test_every_fleet_variable_is_a_setting() -> None:
    known = {f"FLEET_{n.upper()}" for n in Settings.model_fields}
    for name, service in services().items():
        env = service.get("environment") or {}
        for key in env:
            if key.startswith("FLEET_"):
                assert key in known, (name, key)


def test_workers_reach_the_emulator_on_loopback() -> None:
    """The emulator credential is refused off loopback; the stack must respect that."""
    for name, service in services().items():
        env = service.get("environment") or {}
        if env.get("FLEET_AUTH") == "emulator":
            assert service.get("network_mode") == "service:emulator", name
            assert env["FLEET_ARM_ENDPOINT"].startswith("https://127.0.0.1"), name


@pytest.mark.parametrize("path", ["Dockerfile", ".dockerignore"])
def test_image_files_exist(path: str) -> None:
    assert (REPO / path).is_file()
