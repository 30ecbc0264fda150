"""The `charter` CLI against a real `charter serve` on loopback."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from tests.loopback import free_port
from tests.registry.support import charter
from tests.samples import as_json, as_yaml, invoice_events, projects, rescoped


def test_publish_read_deprecate_and_search(server, tmp_path: Path):
    first = tmp_path / "projects.yaml"
    first.write_bytes(as_yaml(projects("1.0.0")))
    second = tmp_path / "projects.json"
    second.write_bytes(as_json(projects("1.1.0")))

    created = charter("publish", str(first), "--api", "projects", "--owner", "cli-team", url=server)
    assert created.returncode == 2  # the team does not exist yet
    assert created.stderr.startswith("charter: error:") and created.stderr.count("\n") == 1

    token = httpx.post(
        f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "admin-secret")
    ).json()["access_token"]
    httpx.post(
        f"{server}/api/v1/teams", json={"name": "cli-team"}, headers={"Authorization": f"Bearer {token}"}
    ).raise_for_status()

    published = charter("publish", str(first), "--api", "projects", "--owner", "cli-team", url=server)
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith("published projects 1.0.0")
    again = charter("publish", str(first), "--api", "projects", url=server)
    assert again.stdout.startswith("unchanged projects 1.0.0")
    assert charter("publish", str(second), "--api", "projects", url=server).returncode == 0

    listing = charter("versions", "projects", url=server)
    assert "1.0.0" in listing.stdout and "1.1.0" in listing.stdout

    document = charter("get", "projects", "latest", url=server)
    assert yaml.safe_load(document.stdout)["info"]["version"] == "1.1.0"
    as_json_text = charter("get", "projects", "1.0.0", "--format", "json", url=server)
    assert as_json_text.stdout.lstrip().startswith("{")

    deprecated = charter(
        "deprecate", "projects", "1.0.0", "--sunset", "2099-01-01", "--replacement", "1.1.0", url=server
    )
    assert deprecated.returncode == 0, deprecated.stderr
    assert "sunset 2099-01-01" in deprecated.stdout

    found = charter("search", "createProject", url=server)
    assert "projects" in found.stdout

    with_token = charter("versions", "projects", url=server, CHARTER_TOKEN=token, CHARTER_CLIENT_ID="")
    assert with_token.returncode == 0

    assert charter("retire", "projects", "1.0.0", url=server).returncode == 0
    unannounced = charter("retire", "projects", "1.1.0", url=server)
    assert unannounced.returncode == 2
    assert "deprecate it first" in unannounced.stderr
    emergency = charter("retire", "projects", "1.1.0", "--emergency", "--reason", "leaks data", url=server)
    assert emergency.returncode == 0, emergency.stderr
    assert emergency.stdout.strip() == "retired projects 1.1.0"


def test_import_reports_each_file_and_fails_on_a_bad_one(server, tmp_path: Path):
    token = httpx.post(
        f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "admin-secret")
    ).json()["access_token"]
    httpx.post(
        f"{server}/api/v1/teams", json={"name": "importers"}, headers={"Authorization": f"Bearer {token}"}
    )
    (tmp_path / "time-entries").mkdir()
    # `projects:*` scopes belong to cli-team's `projects`: the importers' API names its own.
    (tmp_path / "time-entries" / "b.yaml").write_bytes(as_yaml(rescoped(projects("2.0.0"), "time")))
    (tmp_path / "time-entries" / "a.yaml").write_bytes(as_yaml(rescoped(projects("1.5.0"), "time")))
    (tmp_path / "billing-events.yaml").write_bytes(as_yaml(invoice_events()))
    (tmp_path / "broken.json").write_bytes(b'{"openapi": "3.0.3", "info": {"version": "1.0.0"}}')

    result = charter("import", str(tmp_path), "--owner", "importers", url=server)

    assert result.returncode == 2
    assert "3 published, 0 unchanged, 1 failed" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("charter: error: 1 of 4 files")
    listing = charter("versions", "time-entries", url=server)
    assert listing.stdout.index("1.5.0") < listing.stdout.index("2.0.0")


def test_bad_credentials_and_unreachable_server_are_one_line_exit_2(server):
    bad = charter("versions", "projects", url=server, secret="wrong")
    assert bad.returncode == 2
    assert bad.stderr.startswith("charter: error: cannot get a token for admin")
    assert bad.stderr.count("\n") == 1

    down = charter("search", "x", url=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 2
    assert "cannot reach the registry" in down.stderr
    assert "Traceback" not in down.stderr


def test_usage_errors_exit_2(server, tmp_path: Path):
    missing = charter("publish", str(tmp_path / "nope.yaml"), "--api", "x", url=server)
    assert missing.returncode == 2
    assert missing.stderr.startswith("charter: error:")
    wrong_type = tmp_path / "contract.txt"
    wrong_type.write_text("hello")
    assert charter("publish", str(wrong_type), "--api", "x", url=server).returncode == 2
    assert charter("versions", url=server).returncode == 2
    assert charter("get", "nope", "1.0.0", url=server).stderr.startswith("charter: error: HTTP 404")


def test_serve_refuses_a_malformed_egress_allow_list_or_secrets_key(tmp_path: Path):
    database = f"sqlite+aiosqlite:///{tmp_path}/charter.db"
    for variable, value, message in (
        ("CHARTER_EGRESS_ALLOW", "10.0.0.0/8,localhost", "'localhost' is neither a network"),
        ("CHARTER_SECRETS_KEY", "not-a-key", "32 url-safe base64-encoded bytes"),
    ):
        result = charter(
            "serve", "--port", str(free_port()), url="http://127.0.0.1:9", CHARTER_DATABASE_URL=database,
            **{variable: value},
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
