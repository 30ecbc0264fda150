"""The backup endpoints: who may call them, and damaged or hostile uploads that change nothing."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.contracts.zip_fixtures import damaged_archives
from tests.registry.support import ADMIN, SECRETS_KEY, bearer, fetch_token, make_settings
from tests.samples import as_json, projects

ZIP = {"Content-Type": "application/zip"}


async def export(client: AsyncTestClient, headers: dict[str, str]) -> bytes:
    response = await client.get("/api/v1/admin/export", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return response.content


async def projects_of_delivery(client: AsyncTestClient) -> dict[str, str]:
    """The team `delivery` with `projects` 1.0.0 published on `client`; admin headers."""
    admin = bearer(await fetch_token(client, *ADMIN))
    await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
    published = await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects("1.0.0")),
        headers={**admin, "Content-Type": "application/json"},
        params={"owner": "delivery"},
    )
    assert published.status_code == 201, published.text
    return admin


def rewritten(backup: bytes, **entries: bytes | None) -> bytes:
    """The backup with some entries replaced (None: left out)."""
    source = zipfile.ZipFile(io.BytesIO(backup))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            if info.filename not in entries:
                out.writestr(info.filename, source.read(info))
        for name, content in entries.items():
            if content is not None:
                out.writestr(name, content)
    return buffer.getvalue()


async def audit_count(client: AsyncTestClient, headers: dict[str, str]) -> int:
    return (await client.get("/api/v1/audit", headers=headers)).json()["total"]


async def test_only_admins_export_and_import(
    client, published, admin_headers, publisher_headers, reader_headers
):
    for headers in (publisher_headers, reader_headers):
        assert (await client.get("/api/v1/admin/export", headers=headers)).status_code == 403
        response = await client.post("/api/v1/admin/import", content=b"PK", headers={**headers, **ZIP})
        assert response.status_code == 403
    assert (await client.get("/api/v1/admin/export")).status_code == 401


async def test_the_manifest_names_the_format_and_counts_every_table(client, published, admin_headers):
    backup = zipfile.ZipFile(io.BytesIO(await export(client, admin_headers)))
    manifest = json.loads(backup.read("manifest.json"))
    assert manifest["format"] == "charter-backup" and manifest["format_version"] == 1
    assert manifest["counts"]["api_versions"] == 3 and manifest["counts"]["apis"] == 1
    for table, count in manifest["counts"].items():
        lines = backup.read(f"tables/{table}.jsonl").splitlines()
        assert len(lines) == count, table
    # Every binary column is a blob named by its SHA-256; no entry name is a path to anywhere else.
    assert all(n == "manifest.json" or n.startswith(("tables/", "blobs/")) for n in backup.namelist())
    log = (
        await client.get("/api/v1/audit", params={"action": "registry.exported"}, headers=admin_headers)
    ).json()
    assert [(e["actor"], e["subject"]) for e in log["items"]] == [("admin", "registry")]


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", b"{}")
        archive.writestr("tables/teams.jsonl", b"\n" * (64 * 1024 * 1024))
    return buffer.getvalue()


def _hostile(backup: bytes) -> dict[str, bytes]:
    source = zipfile.ZipFile(io.BytesIO(backup))
    blob = next(n for n in source.namelist() if n.startswith("blobs/"))
    apis = source.read("tables/apis.jsonl")
    orphan = apis.replace(b'"owner_id":', b'"owner_id":9999,"x":', 1)
    return {
        "not a zip": b"this is not a zip",
        "damaged": damaged_archives()["bad-crc"],
        "no manifest": rewritten(backup, **{"manifest.json": None}),
        "another format": rewritten(backup, **{"manifest.json": json.dumps({"format": "other"}).encode()}),
        "newer format": rewritten(
            backup,
            **{
                "manifest.json": json.dumps(
                    {**json.loads(source.read("manifest.json")), "format_version": 99}
                ).encode()
            },
        ),
        "zip bomb": _bomb(),
        "blob altered": rewritten(backup, **{blob: b"not what the hash says"}),
        "blob missing": rewritten(backup, **{blob: None}),
        "unknown column": rewritten(backup, **{"tables/apis.jsonl": orphan}),
        "missing team": rewritten(
            backup, **{"tables/apis.jsonl": apis.replace(b'"owner_id":1', b'"owner_id":77', 1)}
        ),
        "duplicate row": rewritten(
            backup, **{"tables/version_scopes.jsonl": source.read("tables/version_scopes.jsonl") * 2}
        ),
        "bad line": rewritten(backup, **{"tables/audit_events.jsonl": b'{"id": "one"}\n'}),
        "plaintext secret": rewritten(
            backup,
            **{
                "tables/clients.jsonl": json.dumps(
                    {
                        "id": 1,
                        "client_id": "sneaky",
                        "name": "s",
                        "team_id": 1,
                        "scopes": [],
                        "secret_hash": "hunter2",
                        "created_at": "2026-01-01T00:00:00Z",
                        "created_by": "x",
                    }
                ).encode()
            },
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not a zip",
        "damaged",
        "no manifest",
        "another format",
        "newer format",
        "zip bomb",
        "blob altered",
        "blob missing",
        "unknown column",
        "missing team",
        "duplicate row",
        "bad line",
        "plaintext secret",
    ],
)
async def test_a_damaged_or_hostile_backup_is_422_and_changes_nothing(tmp_path, case):
    async with AsyncTestClient(create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/a.db"))) as source:
        admin = await projects_of_delivery(source)
        backup = _hostile(await export(source, admin))[case]
    async with AsyncTestClient(create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/b.db"))) as target:
        admin = bearer(await fetch_token(target, *ADMIN))
        before = await audit_count(target, admin)
        response = await target.post("/api/v1/admin/import", content=backup, headers={**admin, **ZIP})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "/problems/invalid-backup"
        assert (await target.get("/api/v1/teams", headers=admin)).json()["items"] == []
        assert (await target.get("/api/v1/apis/projects", headers=admin)).status_code == 404
        assert await audit_count(target, admin) == before


async def test_an_upload_over_the_cap_is_413_before_it_is_read(tmp_path):
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/a.db", import_max_bytes=1000)
    async with AsyncTestClient(create_app(settings)) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        response = await client.post("/api/v1/admin/import", content=b"x" * 5000, headers={**admin, **ZIP})
        assert response.status_code == 413, response.text
        assert response.json()["type"] == "/problems/request-too-large"
        wrong = await client.post(
            "/api/v1/admin/import", content=b"{}", headers={**admin, "Content-Type": "application/json"}
        )
        assert wrong.status_code == 415


async def test_sealed_webhook_secrets_import_only_where_the_source_key_is_held(tmp_path):
    source_settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/a.db", egress_allow="127.0.0.0/8")
    async with AsyncTestClient(create_app(source_settings)) as source:
        admin = bearer(await fetch_token(source, *ADMIN))
        await source.post("/api/v1/teams", json={"name": "finance"}, headers=admin)
        created = await source.post(
            "/api/v1/teams/finance/webhooks",
            json={"url": "http://127.0.0.1:9/events", "topics": ["contract.*"]},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        backup = await export(source, admin)

    other_key = Fernet.generate_key().decode()
    strange = make_settings(f"sqlite+aiosqlite:///{tmp_path}/b.db", secrets_key=other_key)
    async with AsyncTestClient(create_app(strange)) as target:
        admin = bearer(await fetch_token(target, *ADMIN))
        refused = await target.post("/api/v1/admin/import", content=backup, headers={**admin, **ZIP})
        assert refused.status_code == 422, refused.text
        assert "CHARTER_SECRETS_KEY" in refused.json()["detail"]
        assert (await target.get("/api/v1/teams", headers=admin)).json()["items"] == []

    # The new key in front, the source's after it: the import opens the secret and seals it anew.
    both = make_settings(f"sqlite+aiosqlite:///{tmp_path}/b.db", secrets_key=f"{other_key},{SECRETS_KEY}")
    async with AsyncTestClient(create_app(both)) as target:
        admin = bearer(await fetch_token(target, *ADMIN))
        accepted = await target.post("/api/v1/admin/import", content=backup, headers={**admin, **ZIP})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["added"]["webhook_subscriptions"] == 1
    only_new = make_settings(f"sqlite+aiosqlite:///{tmp_path}/b.db", secrets_key=other_key)
    async with AsyncTestClient(create_app(only_new)) as target:  # starts: every stored secret opens
        admin = bearer(await fetch_token(target, *ADMIN))
        hooks = (await target.get("/api/v1/teams/finance/webhooks", headers=admin)).json()["items"]
        assert [h["url"] for h in hooks] == ["http://127.0.0.1:9/events"]


async def test_every_replica_routes_what_another_one_imported(tmp_path):
    from sqlalchemy import select

    from registry.db.models import OutboxEvent
    from registry.events import Event
    from tests.registry.test_event_contract import contract

    source_settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    async with AsyncTestClient(create_app(source_settings)) as source:
        admin = await projects_of_delivery(source)
        backup = await export(source, admin)

    target = make_settings(f"sqlite+aiosqlite:///{tmp_path}/b.db")
    async with AsyncTestClient(create_app(target)) as one, AsyncTestClient(create_app(target)) as two:
        admin = bearer(await fetch_token(one, *ADMIN))
        before = await two.get("/gw/projects/v1/projects")
        assert before.status_code == 404, before.text
        imported = await one.post("/api/v1/admin/import", content=backup, headers={**admin, **ZIP})
        assert imported.status_code == 200, imported.text

        async with one.app.state.sessionmaker() as session:
            row = await session.scalar(select(OutboxEvent).where(OutboxEvent.topic == "registry.imported"))
        assert row is not None and row.payload == {"apis": ["projects"], "merge": False}
        assert contract().violations("registry.imported", row.payload) == []

        # What NATS hands every replica: the other one recompiles its routes and serves the API.
        await two.app.state.bus.publish(Event(row.id, row.topic, row.at, row.payload))
        await two.app.state.reloader.wait()
        after = await two.get("/gw/projects/v1/projects")
        assert after.status_code != 404, after.text


async def _bound_to_loopback(tmp_path, where: str) -> bytes:
    """A backup from an install whose allow-list admits loopback, with `where` pointing at it."""
    source_settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/a.db", egress_allow="127.0.0.0/8")
    async with AsyncTestClient(create_app(source_settings)) as source:
        admin = await projects_of_delivery(source)
        internal = "http://127.0.0.1:6379/"
        if where == "upstream":
            binding = {"kind": "http", "url": internal}
        else:
            binding = {"kind": "mock", "operations": {"listProjects": {"kind": "http", "url": internal}}}
        if where in ("upstream", "operation"):
            bound = await source.put("/api/v1/apis/projects/adapter", json=binding, headers=admin)
            assert bound.status_code == 200, bound.text
        elif where == "webhook":
            created = await source.post(
                "/api/v1/teams/delivery/webhooks",
                json={"url": internal, "topics": ["contract.*"]},
                headers=admin,
            )
            assert created.status_code == 201, created.text
        else:
            registered = await source.post(
                "/api/v1/apis/projects/consumers",
                json={
                    "consumer": "billing",
                    "team": "delivery",
                    "versions": "^1",
                    "webhook_url": internal,
                    "webhook_secret": "s" * 32,
                },
                headers=admin,
            )
            assert registered.status_code in (200, 201), registered.text
        return await export(source, admin)


@pytest.mark.parametrize("where", ["upstream", "operation", "webhook", "consumer webhook"])
async def test_an_import_holds_the_urls_it_restores_to_the_egress_policy(tmp_path, where):
    """A backup is a file anyone can edit: what it binds is refused here as a PUT of it would be."""
    backup = await _bound_to_loopback(tmp_path, where)
    async with AsyncTestClient(
        create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/b.db", egress_allow=None))
    ) as target:
        admin = bearer(await fetch_token(target, *ADMIN))
        before = await audit_count(target, admin)
        response = await target.post("/api/v1/admin/import", content=backup, headers={**admin, **ZIP})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "127.0.0.1" in response.json()["detail"]
        assert (await target.get("/api/v1/apis/projects", headers=admin)).status_code == 404
        assert (await target.get("/api/v1/teams", headers=admin)).json()["items"] == []
        assert await audit_count(target, admin) == before


async def test_an_import_refuses_a_binding_that_a_put_would_refuse(tmp_path):
    async with AsyncTestClient(create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/a.db"))) as source:
        admin = await projects_of_delivery(source)
        backup = await export(source, admin)
    apis = zipfile.ZipFile(io.BytesIO(backup)).read("tables/apis.jsonl")
    row = json.loads(apis)
    row["adapter"] = {"kind": "http", "url": "file:///etc/passwd", "extra": 1}
    hostile = rewritten(backup, **{"tables/apis.jsonl": json.dumps(row).encode()})
    async with AsyncTestClient(create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/b.db"))) as target:
        admin = bearer(await fetch_token(target, *ADMIN))
        response = await target.post("/api/v1/admin/import", content=hostile, headers={**admin, **ZIP})
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "/problems/invalid-backup"
        assert (await target.get("/api/v1/apis/projects", headers=admin)).status_code == 404
