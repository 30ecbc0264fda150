"""The daily CLI against a real `charter serve`: JSON listings, whole tables when piped, exit codes that
tell a policy refusal (1) from bad input (2), counted nouns, and the port the server says it is on."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from contracts.plural import counted
from tests.loopback import free_port
from tests.registry.support import ADMIN, charter
from tests.samples import as_yaml, projects


def admin_token(server: str) -> str:
    response = httpx.post(f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
    return response.json()["access_token"]


def issuer(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iss"]


def without_get_project(version: str) -> dict:
    doc = projects(version)
    del doc["paths"]["/projects/{projectId}"]
    return doc


@pytest.fixture(scope="module")
def team(server: str) -> str:
    headers = {"Authorization": f"Bearer {admin_token(server)}"}
    httpx.post(f"{server}/api/v1/teams", json={"name": "daily"}, headers=headers).raise_for_status()
    return "daily"


def test_counted_nouns():
    assert [counted(n, "change") for n in (0, 1, 2)] == ["0 changes", "1 change", "2 changes"]
    assert counted(1, "info", "info") == "1 info" and counted(3, "info", "info") == "3 info"


def test_every_listing_prints_json(server, team, tmp_path: Path):
    contract = tmp_path / "projects.yaml"
    contract.write_bytes(as_yaml(projects("1.0.0")))
    assert charter("publish", str(contract), "--api", "listed", "--owner", team, url=server).returncode == 0

    versions = charter("versions", "listed", "--format", "json", url=server)
    assert [item["version"] for item in json.loads(versions.stdout)] == ["1.0.0"]
    found = json.loads(charter("search", "listed", "--format", "json", url=server).stdout)
    assert found["total"] == 1 and found["items"][0]["name"] == "listed"
    assert json.loads(charter("flows", "list", "--format", "json", url=server).stdout) == []
    runs = json.loads(charter("flows", "runs", "--format", "json", url=server).stdout)
    assert runs["items"] == [] and runs["total"] == 0


def test_piped_tables_are_never_cut(server, team, tmp_path: Path):
    title = "A projects API whose title is far longer than any eighty-column terminal could show " * 2
    contract = tmp_path / "long.yaml"
    contract.write_bytes(as_yaml(projects("1.0.0", title=title.strip())))
    published = charter("publish", str(contract), "--api", "long-titled", "--owner", team, url=server)
    assert published.returncode == 0, published.stderr

    listing = charter("search", "long-titled", url=server)  # stdout is a pipe here
    row = next(line for line in listing.stdout.splitlines() if "long-titled" in line)
    assert title.strip() in row
    assert listing.stdout.rstrip().endswith("1 of 1 API")


def test_a_policy_refusal_exits_1_for_publish_as_for_check(server, team, tmp_path: Path):
    base = tmp_path / "base.yaml"
    base.write_bytes(as_yaml(projects("1.0.0")))
    breaking = tmp_path / "breaking.yaml"
    breaking.write_bytes(as_yaml(without_get_project("1.1.0")))
    assert charter("publish", str(base), "--api", "strict", "--owner", team, url=server).returncode == 0

    checked = charter("check", str(breaking), "--api", "strict", url=server)
    refused = charter("publish", str(breaking), "--api", "strict", url=server)

    assert checked.returncode == 1, checked.stdout
    assert refused.returncode == 1, refused.stderr
    first, *offending = refused.stderr.splitlines()
    assert "incompatible" in first.lower() and "1 change that needs a major version" in first
    assert offending == [
        f"  {breaking}: /paths/~1projects~1{{projectId}}/get: api-path-removed-without-deprecation: "
        "GET /projects/{projectId} removed with its path"
    ]
    assert "diff against 1.0.0: 1 change, 1 breaking" in checked.stdout
    # Bad input stays 2: an unknown team, an unreadable file.
    assert charter("publish", str(base), "--api", "other", "--owner", "nobody", url=server).returncode == 2
    assert charter("publish", str(tmp_path / "nope.yaml"), "--api", "strict", url=server).returncode == 2


def test_a_ruleset_refusal_exits_1(server, tmp_path: Path):
    headers = {"Authorization": f"Bearer {admin_token(server)}"}
    httpx.post(f"{server}/api/v1/teams", json={"name": "linters"}, headers=headers).raise_for_status()
    ruleset = (
        b"rules:\n  verbs-only:\n    severity: error\n    given: $.paths.*.*.operationId\n"
        b"    then: {function: pattern, functionOptions: {match: '^delete'}}\n"
    )
    put = httpx.put(
        f"{server}/api/v1/teams/linters/ruleset",
        content=ruleset,
        headers={**headers, "Content-Type": "application/yaml"},
    )
    put.raise_for_status()
    contract = tmp_path / "linted.yaml"
    contract.write_bytes(as_yaml(projects("1.0.0")))

    refused = charter("publish", str(contract), "--api", "linted", "--owner", "linters", url=server)

    assert refused.returncode == 1, refused.stderr
    assert "governance ruleset" in refused.stderr


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")},
        "CHARTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/charter.db",
        "CHARTER_DEMO": "0",
        "CHARTER_ADMIN_CLIENT_ID": ADMIN[0],
        "CHARTER_ADMIN_CLIENT_SECRET": ADMIN[1],
        **env,
    }
    log = (tmp_path / "server.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "registry.cli", "serve", *args],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"charter serve did not start: {log.read_text()[-2000:]}")


def test_charter_port_sets_the_port_and_the_public_url_follows_it(tmp_path: Path):
    port = free_port()
    process = serve(tmp_path, CHARTER_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, tmp_path / "server.log")
        token = admin_token(url)
        assert issuer(token) == url
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(f"{url}/api/v1/teams", json={"name": "ported"}, headers=headers).raise_for_status()
        for version in ("1.0.0", "2.0.0"):
            contract = tmp_path / f"{version}.yaml"
            contract.write_bytes(as_yaml(projects(version)))
            published = charter("publish", str(contract), "--api", "ported", "--owner", "ported", url=url)
            assert published.returncode == 0, published.stderr
        assert charter("deprecate", "ported", "1.0.0", "--sunset", "2099-01-01", url=url).returncode == 0
        assert charter("retire", "ported", "1.0.0", url=url).returncode == 0

        gone = httpx.get(f"{url}/gw/ported/v1/projects", headers=headers)
        assert gone.status_code == 410
        assert f'<{url}/gw/ported/v2>; rel="successor-version"' in gone.headers["link"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_an_explicit_public_url_wins(tmp_path: Path):
    port = free_port()
    process = serve(tmp_path, "--port", str(port), CHARTER_PUBLIC_URL="https://registry.example")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, tmp_path / "server.log")
        assert issuer(admin_token(url)) == "https://registry.example"
    finally:
        process.terminate()
        process.wait(timeout=30)
