"""The pytest plugin: one test per operation of a registry contract, run against a live deployment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.loopback import serving
from tests.registry.test_cli_conformance import (
    BROKEN_OPERATION,
    TARGET_TOKEN,
    inventory_app,
    publish_inventory,
)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with serving(inventory_app()) as url:
        yield url


@pytest.fixture(scope="module")
def broken_target() -> Iterator[str]:
    with serving(inventory_app(broken=True)) as url:
        yield url


@pytest.fixture(scope="module")
def contract(server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return publish_inventory(server, tmp_path_factory.mktemp("contract"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of its own with one ordinary test, so that rootdir and ini are not this repository's."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_local.py").write_text("def test_local():\n    assert True\n")
    return tmp_path


def run_pytest(project: Path, server: str, *args: str) -> subprocess.CompletedProcess:
    installed = any(ep.value == "registry.pytest_plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "registry.pytest_plugin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.update(CHARTER_URL=server, CHARTER_CLIENT_ID="admin", CHARTER_CLIENT_SECRET="admin-secret")
    command = [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "-v", *args]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)


def counts(output: str) -> dict[str, int]:
    summary = output.strip().splitlines()[-1]
    return {word: int(number) for number, word in re.findall(r"(\d+) (passed|failed|error)", summary)}


def conformance_args(contract: str, base_url: str) -> list[str]:
    return [
        "--charter-contract",
        contract,
        "--charter-base-url",
        base_url,
        "--charter-target-token",
        TARGET_TOKEN,
        "--charter-max-examples",
        "5",
    ]


def test_a_conforming_deployment_passes(project, server, contract, target):
    result = run_pytest(project, server, *conformance_args(contract, target))
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts(result.stdout) == {"passed": 4}
    for label in ("GET /items", "POST /items", "GET /items/{itemId}"):
        assert f"charter[{label}] PASSED" in result.stdout


def test_a_broken_operation_fails_by_name(project, server, contract, broken_target, tmp_path):
    report = tmp_path / "junit.xml"
    result = run_pytest(project, server, *conformance_args(contract, broken_target), f"--junitxml={report}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert counts(result.stdout) == {"passed": 3, "failed": 1}
    assert f"FAILED charter[{BROKEN_OPERATION}]" in result.stdout
    assert f"{BROKEN_OPERATION} failed response_schema_conformance" in result.stdout
    assert "response_schema_conformance: Response violates schema" in result.stdout
    assert report.read_text().count("<failure") == 1


def test_selection_and_an_explicit_registry_url(project, server, contract, target):
    args = [*conformance_args(contract, target), "--charter-url", server, "-k", "charter and POST"]
    result = run_pytest(project, "http://127.0.0.1:9", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts(result.stdout) == {"passed": 1}
    assert "charter[POST /items] PASSED" in result.stdout


def test_an_unknown_contract_is_a_usage_error(project, server, contract, target):
    result = run_pytest(
        project, server, "--charter-contract", "inventory@9.9.9", "--charter-base-url", target
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "charter: HTTP 404" in result.stderr


def test_without_options_the_plugin_does_nothing(project, server):
    result = run_pytest(project, server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert counts(result.stdout) == {"passed": 1}
    assert "charter[" not in result.stdout
