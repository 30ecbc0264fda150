"""The registry keeps its own contract: schemathesis, every check, valid and invalid data, both databases.

A real `charter serve` on loopback answers `schemathesis run` against the contract it serves at
/schema/openapi.json, exactly as a client or an attacker would run it, on SQLite and on PostgreSQL.
The demo data (teams, APIs, published versions) gives the operations something to find.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN
from tests.registry.support import ADMIN, SECRETS_KEY, charter_server

# Enough cases per operation to cross every phase (examples, coverage, fuzzing, stateful) in about
# half a minute per database on two cores. The seed makes a failure reproducible; set
# CHARTER_CONTRACT_SEED to explore others.
MAX_EXAMPLES = 30
SEED = int(os.environ.get("CHARTER_CONTRACT_SEED", "20261130"))

# positive_data_acceptance expects a schema-valid request to succeed (or to find nothing: 404,
# 409). Each operation below also answers 422, documented, to bodies that JSON Schema cannot judge;
# the reason is written beside it. No check is switched off.
SCHEMATHESIS_CONFIG = r"""
# Nothing of a run stays in the checkout.
cache = { enabled = false }

# The body is a contract document: whether it is a valid OpenAPI/AsyncAPI document, compatible with
# the released versions and clean under the team's ruleset is what the operation judges, and a
# generated object is almost never a valid contract.
[[operations]]
include-path-regex = '^/api/v1/apis/\{name\}/(versions|compatibility|impact)$'
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# The body is a lint ruleset, judged by the linter that will apply it.
[[operations]]
include-path-regex = '^/api/v1/(rulesets/global|teams/\{team\}/ruleset)$'
include-method = "PUT"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429"]

# A severity policy names rules of the diff by id, which JSON Schema cannot check against the catalog.
[[operations]]
include-path-regex = '^/api/v1/(diff-policies/global|apis/\{name\}/diff-policy)$'
include-method = "PUT"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429"]

# Rules over stored state: the new owner team must exist (the API itself does, so not a 404); a
# sunset may not be past and a replacement must be a live version; a released version must stay
# compatible; `from` may not name the version itself.
[[operations]]
include-path = [
    "/api/v1/apis/{name}",
    "/api/v1/apis/{name}/versions/{version}/deprecate",
    "/api/v1/apis/{name}/versions/{version}/release",
    "/api/v1/apis/{name}/versions/{version}/changes",
]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# A compatibility mode must fit the layer: FULL (judged both ways) is a canonical model's, and a
# canonical model is FULL or NONE; a rule across two fields that msgspec's schema does not express.
[[operations]]
include-path = "/api/v1/apis"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# `versions` is an npm-style semver range, a grammar the contract names but JSON Schema cannot check.
[[operations]]
include-path = "/api/v1/apis/{name}/consumers"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

# The URL must be one the egress policy lets the server call (its host is resolved), `versions` is a
# semver range, events about clients and grants are not for webhooks, and a team has 50 at most.
[[operations]]
include-path = "/api/v1/teams/{team}/webhooks"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429"]
"""


async def _admin_sql(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`charter serve` with the demo data on one database, shared by the tests of this module."""
    workdir = tmp_path_factory.mktemp(f"own-contract-{request.param}")
    database = f"charter_contract_{os.getpid()}"
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{workdir}/charter.db"
    else:
        asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        asyncio.run(_admin_sql(f'CREATE DATABASE "{database}"'))
        host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
        database_url = f"postgresql+asyncpg://postgres@{host}/{database}"
    try:
        with charter_server(
            workdir,
            database_url=database_url,
            demo="1",
            signing_key_file=str(workdir / "signing-key.json"),
            access_log="0",
            secrets_key=SECRETS_KEY,
        ) as url:
            yield url
    finally:
        if request.param == "postgres":
            asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def _admin_token(url: str) -> str:
    response = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
    response.raise_for_status()
    return response.json()["access_token"]


def test_schemathesis_finds_no_failure(served: str, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.registry.schemathesis_cli",
            "--config-file",
            str(config),
            "run",
            f"{served}/schema/openapi.json",
            "--checks",
            "all",
            "--mode",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--header",
            f"Authorization: Bearer {_admin_token(served)}",
            "--output-truncate",
            "false",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-2000:]
