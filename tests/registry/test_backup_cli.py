"""`charter export` and `charter import FILE.zip` between real servers: SQLite to PostgreSQL, merges."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN, reset_postgres
from tests.registry.support import ADMIN, LOOPBACK, SECRETS_KEY, charter, charter_server
from tests.samples import as_json, as_yaml, projects, rescoped

SCHEMAS = b"Project:\n  type: object\n  properties:\n    id: {type: string}\n"
BUNDLE_ROOT = b"""openapi: 3.0.3
info: {title: Bundled, version: 1.0.0}
paths:
  /things:
    get:
      operationId: listThings
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: 'schemas.yaml#/Project'}
"""


def _token(url: str, client_id: str = ADMIN[0], secret: str = ADMIN[1]) -> dict[str, str]:
    response = httpx.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, (response.request.url, response.text)
    return response


def _bundle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("openapi.yaml", BUNDLE_ROOT)
        archive.writestr("schemas.yaml", SCHEMAS)
    return buffer.getvalue()


def populate(url: str) -> dict[str, str]:
    """Every kind of thing a backup carries, made through the API; the client secret it shows once."""
    admin = _token(url)
    with httpx.Client(base_url=url, headers=admin, timeout=60) as http:
        _ok(http.post("/api/v1/teams", json={"name": "delivery", "members": ["delivery-ci"]}))
        _ok(http.post("/api/v1/teams", json={"name": "finance", "description": "Money"}))
        for number in ("1.0.0", "1.1.0"):
            _ok(
                http.post(
                    "/api/v1/apis/projects/versions",
                    content=as_yaml(projects(number)),
                    headers={"Content-Type": "application/yaml"},
                    params={"owner": "delivery"},
                )
            )
        _ok(
            http.post(
                "/api/v1/apis/bundled/versions",
                content=_bundle(),
                headers={"Content-Type": "application/zip"},
                params={"owner": "finance", "root": "openapi.yaml"},
            )
        )
        _ok(
            http.post(
                "/api/v1/apis/projects/versions/1.0.0/deprecate",
                json={"sunset": "2030-01-31", "replacement": "1.1.0", "reason": "use 1.1"},
            )
        )
        _ok(http.put("/api/v1/apis/projects/sla", json={"tier": "gold", "availability": 99.9}))
        _ok(http.put("/api/v1/apis/projects/adapter", json={"kind": "mock"}))
        _ok(
            http.post(
                "/api/v1/apis/projects/consumers",
                json={
                    "consumer": "billing-app",
                    "team": "finance",
                    "versions": "^1.0",
                    "webhook_url": "http://127.0.0.1:9/hook",
                    "webhook_secret": "consumer-secret-0123456789",
                },
            )
        )
        created = _ok(
            http.post(
                "/api/v1/clients",
                json={
                    "client_id": "billing-app",
                    "name": "Billing",
                    "team": "finance",
                    "scopes": ["registry:read"],
                },
            )
        ).json()
        _ok(
            http.post(
                "/api/v1/apis/projects/access-requests",
                json={"client_id": "billing-app", "scopes": ["projects:read"], "reason": "invoices"},
            )
        )
        _ok(
            http.put(
                "/api/v1/rulesets/global",
                content=b"extends: charter:minimal\n",
                headers={"Content-Type": "application/yaml"},
            )
        )
        _ok(
            http.put(
                "/api/v1/apis/projects/diff-policy", json={"severity": {"api-operation-id-changed": "error"}}
            )
        )
        _ok(
            http.post(
                "/api/v1/teams/finance/webhooks",
                json={"url": "http://127.0.0.1:9/events", "topics": ["contract.*"]},
            )
        )
    return {"client_secret": created["client_secret"]}


def snapshot(url: str) -> dict[str, object]:
    """What must survive a round trip, read through the API."""
    admin = _token(url)
    with httpx.Client(base_url=url, headers=admin, timeout=60) as http:
        versions = {
            name: [
                (v["version"], v["state"], v["fingerprint"], v.get("deprecation"), sorted(v["files"]))
                for v in _ok(http.get(f"/api/v1/apis/{name}/versions")).json()["items"]
            ]
            for name in ("projects", "bundled")
        }
        bundle_file = _ok(http.get("/api/v1/apis/bundled/versions/1.0.0/files/schemas.yaml")).content
        api = _ok(http.get("/api/v1/apis/projects")).json()
        audit = _ok(http.get("/api/v1/audit", params={"limit": 100})).json()["items"]
        consumers = _ok(http.get("/api/v1/apis/projects/consumers")).json()
        ruleset = _ok(http.get("/api/v1/rulesets/global")).content
        policy = _ok(http.get("/api/v1/apis/projects/diff-policy")).json()
        webhooks = _ok(http.get("/api/v1/teams/finance/webhooks")).json()
        teams = _ok(http.get("/api/v1/teams")).json()["items"]
    return {
        "versions": versions,
        "bundle_file": bundle_file,
        "api": {k: api[k] for k in ("owner", "sla", "adapter", "latest_version", "kind", "tags")},
        "audit": sorted(
            (
                e["at"],
                e["actor"],
                e["action"],
                e["subject"],
                json.dumps([e["before"], e["after"]], sort_keys=True),
            )
            for e in audit
        ),
        "consumers": [(c["consumer"], c["team"], c["versions"]) for c in consumers["items"]],
        "ruleset": ruleset,
        "policy": policy,
        "webhooks": [(w["url"], w["topics"]) for w in webhooks["items"]],
        "teams": sorted((t["name"], t["description"], tuple(t["members"])) for t in teams),
    }


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    asyncio.run(reset_postgres(postgres_database))
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{postgres_database}"


@pytest.mark.postgres
def test_a_sqlite_registry_moves_to_postgresql_with_every_fingerprint_state_and_audit_entry(
    tmp_path: Path, postgres_url: str
):
    backup = tmp_path / "backup.zip"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with charter_server(tmp_path / "a", secrets_key=SECRETS_KEY, egress_allow=LOOPBACK) as source:
        secrets = populate(source)
        before = snapshot(source)
        exported = charter("export", str(backup), url=source)
        assert exported.returncode == 0, exported.stderr
        assert "to " + str(backup) in exported.stdout
    with zipfile.ZipFile(backup) as archive:
        names = archive.namelist()
        clients = archive.read("tables/clients.jsonl")
        consumers = archive.read("tables/consumers.jsonl")
    assert "manifest.json" in names
    assert secrets["client_secret"].encode() not in clients  # only the hash travels
    assert b"scrypt$" in clients
    assert b"consumer-secret-0123456789" not in consumers  # sealed

    with charter_server(
        tmp_path / "b", database_url=postgres_url, secrets_key=SECRETS_KEY, egress_allow=LOOPBACK
    ) as target:
        imported = charter("import", str(backup), url=target)
        assert imported.returncode == 0, imported.stdout + imported.stderr
        assert "imported projects: 2 versions added" in " ".join(imported.stdout.split())
        after = snapshot(target)
        for key in ("versions", "bundle_file", "api", "consumers", "ruleset", "policy", "webhooks", "teams"):
            assert after[key] == before[key], key
        # Every entry of the source's log, and one more: the import itself.
        assert set(before["audit"]) < set(after["audit"])  # type: ignore[arg-type]
        extra = set(after["audit"]) - set(before["audit"])  # type: ignore[arg-type]
        assert [(actor, action, subject) for _, actor, action, subject, _ in extra] == [
            ("admin", "registry.imported", "registry")
        ]
        # The client's hashed secret still lets it in, on the other database.
        _token(target, "billing-app", secrets["client_secret"])
        # The gateway of the target routes an imported API at once (bound to the mock adapter).
        assert httpx.get(f"{target}/gw/projects/v1/projects", timeout=30).status_code != 404


def test_importing_a_stored_api_is_refused_unless_merged_and_a_stored_version_never_changes(tmp_path: Path):
    backup = tmp_path / "backup.zip"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with charter_server(tmp_path / "a") as source:
        admin = _token(source)
        _ensure_team(source, admin, "team-a")
        for number in ("1.0.0", "1.1.0"):
            _ok(
                httpx.post(
                    f"{source}/api/v1/apis/projects/versions",
                    content=as_json(projects(number)),
                    headers={**admin, "Content-Type": "application/json"},
                    params={"owner": "team-a"},
                )
            )
        assert charter("export", str(backup), url=source).returncode == 0

    with charter_server(tmp_path / "b") as target:
        admin = _token(target)
        _ensure_team(target, admin, "team-b")
        # The target already holds projects 1.0.0, with other content.
        mine = projects("1.0.0", description="the target's own")
        _ok(
            httpx.post(
                f"{target}/api/v1/apis/projects/versions",
                content=as_json(rescoped(mine, "mine")),
                headers={**admin, "Content-Type": "application/json"},
                params={"owner": "team-b"},
            )
        )
        stored = _ok(
            httpx.get(f"{target}/api/v1/apis/projects/versions/1.0.0/metadata", headers=admin)
        ).json()

        refused = charter("import", str(backup), url=target)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "refused projects" in refused.stdout
        listed = _ok(httpx.get(f"{target}/api/v1/apis/projects/versions", headers=admin)).json()["items"]
        assert [v["version"] for v in listed] == ["1.0.0"]

        merged = charter("import", str(backup), "--merge", url=target)
        assert merged.returncode == 1, merged.stdout + merged.stderr  # the conflict is reported
        assert "conflict projects 1.0.0" in " ".join(merged.stdout.split())
        listed = _ok(httpx.get(f"{target}/api/v1/apis/projects/versions", headers=admin)).json()["items"]
        assert [v["version"] for v in listed] == ["1.0.0", "1.1.0"]
        assert listed[0]["fingerprint"] == stored["fingerprint"]  # never overwritten

        again = charter("import", str(backup), "--merge", url=target)
        assert "0 versions added, 1 already here" in " ".join(again.stdout.split())


def _ensure_team(url: str, admin: dict[str, str], name: str) -> None:
    response = httpx.post(f"{url}/api/v1/teams", json={"name": name}, headers=admin)
    assert response.status_code in (201, 409), response.text


def test_a_contract_zip_is_not_taken_for_a_backup_and_a_directory_still_publishes(tmp_path: Path):
    bundle = tmp_path / "contract.zip"
    bundle.write_bytes(_bundle())
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "projects.yaml").write_bytes(as_yaml(projects("1.0.0")))
    (tmp_path / "srv").mkdir()
    with charter_server(tmp_path / "srv") as url:
        admin = _token(url)
        _ensure_team(url, admin, "delivery")
        result = charter("import", str(bundle), url=url)
        assert result.returncode == 2
        assert "not a Charter backup" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        published = charter("import", str(folder), "--owner", "delivery", url=url)
        assert published.returncode == 0, published.stderr
        assert "1 published" in published.stdout
        nowhere = charter("export", str(tmp_path / "missing" / "x.zip"), url=url)
        assert nowhere.returncode == 2 and "cannot write the backup" in nowhere.stderr
        refused = charter("export", str(tmp_path / "x.zip"), url=url, secret="wrong")
        assert refused.returncode == 2
        assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.part").exists()


def _on_a_terminal(*args: str, url: str) -> tuple[int, bytes]:
    """Run `charter ARGS` with stdout and stderr on a pseudo-terminal, as in an interactive shell."""
    environ = {
        **os.environ,
        "CHARTER_URL": url,
        "CHARTER_CLIENT_ID": ADMIN[0],
        "CHARTER_CLIENT_SECRET": ADMIN[1],
        "COLUMNS": "100",
    }
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "registry.cli", *args], stdout=terminal, stderr=terminal, env=environ
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        shown += data
    os.close(controller)
    return process.wait(timeout=60), shown


def test_a_progress_bar_shows_on_a_terminal_only(server, tmp_path: Path):
    code, shown = _on_a_terminal("export", str(tmp_path / "tty.zip"), url=server)
    assert code == 0, shown
    assert b"exporting" in shown and b"kB" in shown  # the bar, with bytes done of the total
    piped = charter("export", str(tmp_path / "piped.zip"), url=server)
    assert piped.returncode == 0, piped.stderr
    assert "exporting" not in piped.stdout + piped.stderr
    code, shown = _on_a_terminal("import", str(tmp_path / "tty.zip"), "--merge", url=server)
    assert code == 0, shown
    assert b"importing" in shown
