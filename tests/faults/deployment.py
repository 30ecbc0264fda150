"""Charter as fault tests run it: real `charter serve` processes on a private database, and the calls
they make to it (tokens, publishes, reads)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

from tests.gateway.conftest import CONSUMERS
from tests.registry.support import ADMIN, CLIENTS, SECRETS_KEY, bearer
from tests.samples import JSON_HEADERS, as_json, projects

T = TypeVar("T")
PROBLEM_JSON = "application/problem+json"
# The API the fault tests publish to (the demo, where it is on, has one named `projects`).
API = "ledger"
VERSIONS = f"/api/v1/apis/{API}/versions"


def replica_env(database_url: str, workdir: Path, **overrides: str) -> dict[str, str]:
    """CHARTER_* settings (lower case, without the prefix) of one replica; replicas given the same
    database share keys, so that a token of one is good at the other."""
    return {
        "database_url": database_url,
        "secrets_key": SECRETS_KEY,
        "signing_key_file": str(workdir.parent / "signing.pem"),
        "clients": json.dumps(CLIENTS + CONSUMERS),
        "access_log": "0",
        **overrides,
    }


def token(url: str, client_id: str, secret: str) -> dict[str, str]:
    response = httpx.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    response.raise_for_status()
    return bearer(response.json()["access_token"])


def admin_headers(url: str) -> dict[str, str]:
    return {**token(url, *ADMIN), **JSON_HEADERS}


def edition(version: str, label: str = "") -> bytes:
    """The projects contract at `version`; `label` makes two documents of one version differ."""
    return as_json(projects(version, description=f"Projects, edition {version} {label}".strip()))


def create_api(client: httpx.Client, headers: dict[str, str]) -> None:
    team = client.post("/api/v1/teams", json={"name": "delivery"}, headers=headers)
    assert team.status_code in (201, 409), team.text
    first = client.post(
        VERSIONS,
        content=edition("1.0.0"),
        headers=headers,
        params={"owner": "delivery"},
    )
    assert first.status_code in (200, 201), first.text


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def is_problem(response: httpx.Response, status: int) -> bool:
    return response.status_code == status and response.headers.get("content-type", "").startswith(
        PROBLEM_JSON
    )


@contextmanager
def started_together(*processes: AbstractContextManager[T]) -> Iterator[list[T]]:
    """Enter the context managers (`charter_process`es) at once, as replicas of a deployment start."""
    with ExitStack() as stack, ThreadPoolExecutor(len(processes)) as pool:
        futures = [pool.submit(process.__enter__) for process in processes]
        for process, future in zip(processes, futures, strict=True):
            if future.exception() is None:
                stack.push(process)
        yield [future.result() for future in futures]
