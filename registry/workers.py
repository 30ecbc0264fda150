"""`charter serve --workers N`: N server processes on one port, so one host uses all its cores.

One process runs Python on one core at a time, and a flow run is mostly the Python work of recording
its steps (DBOS) and its index; on PostgreSQL each worker is a replica like those on other hosts:
its own DBOS executor (an executor slot of this host, see `flow_replicas.ExecutorSlot`: a worker
uvicorn restarts after a crash takes its predecessor's slot and resumes its runs at once), its
heartbeat, its share of the runs a dead replica leaves. So workers need what replicas need:
PostgreSQL (DBOS on a SQLite file is one process's) and NATS (the event bus through which every
replica hears a publish or a new client; without it the other workers would route with stale tables
until they restart).
"""

from __future__ import annotations

import os
import secrets
import sys

import msgspec

from registry.http_limits import HeaderDeadlineProtocol
from registry.settings import Settings


def prepare(settings: Settings, workers: int) -> Settings:
    """The settings every worker is to share, put in the environment they inherit; a configuration
    several workers would run wrongly is refused (ValueError, said to the user)."""
    if workers <= 1:
        return settings
    if not settings.database_url.startswith("postgresql"):
        raise ValueError("--workers needs PostgreSQL (CHARTER_DATABASE_URL): workers share its flow engine")
    if not settings.nats_url:
        raise ValueError("--workers needs CHARTER_NATS_URL: workers hear each other's changes through NATS")
    if settings.flows_executor_id:
        raise ValueError("--workers cannot share CHARTER_FLOWS_EXECUTOR_ID: each worker is its own executor")
    # Each worker builds its app from the environment: the public URL is the one this command chose,
    # and an admin secret made up here is the one every worker accepts (and is shown once).
    os.environ["CHARTER_PUBLIC_URL"] = settings.public_url
    if settings.admin_client_secret is None:
        secret = secrets.token_urlsafe(24)
        os.environ["CHARTER_ADMIN_CLIENT_SECRET"] = secret
        print(
            f"charter: generated admin client: id={settings.admin_client_id or 'admin'} secret={secret} "
            "(set CHARTER_ADMIN_CLIENT_ID and CHARTER_ADMIN_CLIENT_SECRET to choose your own)",
            file=sys.stderr,
            flush=True,
        )
        settings = msgspec.structs.replace(settings, admin_client_secret=secret)
    return settings


class WorkerHeaderDeadline(HeaderDeadlineProtocol):
    """The head timeout for a worker process: uvicorn hands its protocol class to each worker by
    name, so the class is made here, at import, from the environment the workers inherit."""

    header_timeout = Settings.from_env().header_timeout_seconds


def serve(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "registry.cli:configured_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        http=WorkerHeaderDeadline,
        # A worker answers uvicorn's health check once it has imported Charter, which takes longer
        # than uvicorn's 5 s on a loaded host: killed as hung and started again, none ever served.
        timeout_worker_healthcheck=60,
    )
