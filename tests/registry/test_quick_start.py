"""The README's quick start, run as written against a real `charter serve` with the demo loaded, and
`charter conformance` against the demo out of the box: the quick start cannot drift from the product."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.support import charter, charter_process

ROOT = Path(__file__).resolve().parents[2]
ADMIN_SECRET = "s3cret"  # as the quick start starts the server


def quick_start() -> str:
    """The second shell block of the README's "Quick start" section: the one a reader pastes."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return blocks[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with charter_process(
        tmp_path_factory.mktemp("quick-start"), demo="1", admin_client_secret=ADMIN_SECRET
    ) as (url, _):
        yield url


def test_the_quick_start_runs_as_written(demo: str):
    script = quick_start().replace("http://127.0.0.1:8080", demo)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    # The block puts `.venv/bin` on PATH; the interpreter running the tests has `charter` beside it.
    environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ["PATH"]])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "published expenses 1.0.0" in result.stdout
    assert any("expenses" in line and "Expenses" in line for line in lines)  # found by a property name
    assert "503" in lines  # before the adapter is bound
    assert '"id": "EXP-1"' in result.stdout  # the mock adapter's example, after
    assert lines[-1].endswith(": PASS"), result.stdout[-3000:]


def test_conformance_without_credentials_says_so_in_one_line(demo: str):
    result = charter(
        "conformance",
        "projects@1.1.0",
        "--base-url",
        f"{demo}/gw/projects/v1",
        "--no-record",
        "--max-examples",
        "3",
        url=demo,
        secret=ADMIN_SECRET,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
    assert "answered 401: the API needs credentials" in result.stderr
    assert "--target-client-id" in result.stderr and "projects:read" in result.stderr


def test_conformance_with_a_token_lacking_the_scopes_names_them(demo: str):
    result = charter(
        "conformance",
        "projects@1.1.0",
        "--base-url",
        f"{demo}/gw/projects/v1",
        "--no-record",
        "--max-examples",
        "3",
        "--target-client-id",
        "admin",
        "--target-client-secret",
        ADMIN_SECRET,
        url=demo,
        secret=ADMIN_SECRET,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "answered 403: the target token lacks the operation's scopes" in result.stderr
