"""Composition root: builds the litestar application from settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio.to_thread
import msgspec
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from gateway.app import Gateway, GatewayConfig
from gateway.flows.declaration import Flow
from gateway.flows.registration import load_flows
from gateway.flows.runner import FlowRunner
from gateway.flows.system_database import SystemDatabaseSettings
from gateway.observability import AccessLog
from gateway.tracing import start_tracing
from policies.auth import (
    AttemptLimits,
    ClientConfig,
    ClientCredentialsIssuer,
    FailedAttempts,
    IntrospectionVerifier,
    RemoteJwks,
    TokenVerifier,
    load_or_create_signing_key,
)
from policies.auth.principal import TokenSource
from policies.egress import EgressPolicy
from policies.throttle import MemoryThrottle, Throttle
from registry import bootstrap, clients, flow_replicas, retention, signing_keys, usage
from registry import flows as flow_host
from registry.api.allow import allowed_methods, answer_options
from registry.api.canonical import CanonicalController
from registry.api.catalog import ApiController, TeamController
from registry.api.clients import ClientController
from registry.api.compatibility import CompatibilityController
from registry.api.consumers import ConsumerController
from registry.api.demo import DemoController
from registry.api.dependencies import provide_egress, provide_secrets, provide_session, provide_settings
from registry.api.diff_policies import DiffPolicyController
from registry.api.discovery import DiscoveryController
from registry.api.event_schema import events_contract
from registry.api.flows import FlowController
from registry.api.gateway import GATEWAY_PREFIX, GatewayFirst, gateway_mount, metrics
from registry.api.grants import AccessRequestController, GrantController
from registry.api.health import health
from registry.api.interop import BackstageController, BackupController
from registry.api.oauth import jwks, token
from registry.api.problems import EXCEPTION_HANDLERS
from registry.api.rulesets import RulesetController
from registry.api.security import BearerAuth, provide_principal
from registry.api.slo import api_slo, prometheus_rules
from registry.api.versions import VersionController
from registry.api.webhooks import WebhookController
from registry.api.wire_schema import WireStructSchema
from registry.db.engine import create_engine, migrate, session_factory
from registry.demo.systems import DemoSystems
from registry.docs_ui import openapi_config, static_files_router
from registry.event_contracts import RELOAD_TOPICS, EventContracts
from registry.events import Event, InProcessBus, OutboxRelay, in_process_delivery
from registry.gateway_source import RegistryContracts, gateway_reloader
from registry.http_limits import BodyDeadline
from registry.nats_bus import JetStreamEvents
from registry.secret_box import SecretBox, check_stored_secrets
from registry.settings import Settings
from registry.slo import burn_alerts
from registry.telemetry import PublishTelemetry, RegistryMetrics
from registry.web import (
    assets_router,
    browser_sessions,
    for_browsers,
    oidc_provider,
    pending_sign_ins,
    portal_router,
    template_config,
)
from registry.webhooks import WebhookDeliveries

VERSION = "0.1.0"
log = logging.getLogger("charter.events")


def create_app(settings: Settings | None = None, *, flows: Mapping[str, Flow] | None = None) -> Litestar:
    """`flows`: the flows this server hosts; by default those of the `charter.flows` entry points."""
    settings = settings or Settings.from_env()
    flows = load_flows() if flows is None else flows
    engine = create_engine(settings.database_url)
    egress = EgressPolicy.from_allow_list(settings.egress_allow)
    secret_box = SecretBox.from_settings(settings)
    sessionmaker = session_factory(engine)
    throttle = _throttle(settings)
    tracing = start_tracing(
        msgspec.structs.replace(settings.tracing, service_version=VERSION) if settings.tracing else None
    )

    async def find_registered_client(client_id: str) -> ClientConfig | None:
        # A client registered on another replica moments ago, before this one heard of it.
        if len(client_id) > clients.MAX_CLIENT_ID or "\x00" in client_id:
            return None  # no registered client has such an id (and PostgreSQL refuses NUL in text)
        async with sessionmaker() as session:
            return await clients.find_client(session, client_id)

    issuer = ClientCredentialsIssuer(
        issuer=settings.public_url,
        audience=settings.audience,
        clients=bootstrap.configured_clients(settings),
        # Without a key file the stored keys (below) are loaded on start.
        signing_key=load_or_create_signing_key(key_file) if (key_file := settings.signing_key_file) else None,
        token_lifetime=settings.token_lifetime,
        attempts=FailedAttempts(
            throttle,
            AttemptLimits(
                per_source=settings.token_failures_per_source,
                per_client=settings.token_failures_per_client,
                window_seconds=settings.token_failure_window_seconds,
            ),
        ),
        verify_threads=settings.token_verify_threads,
        find_client=find_registered_client,
    )
    # Without a key file the keys live in the database, shared by every replica.
    stored_keys = (
        None
        if settings.signing_key_file
        else signing_keys.IssuerKeys(issuer, sessionmaker, secret_box, token_lifetime=settings.token_lifetime)
    )
    # `bus`: this replica's caches, fed every event; `once`: effects due once per event cluster-wide.
    bus, once = InProcessBus(), InProcessBus()
    jetstream = (
        JetStreamEvents(
            settings.nats_url,
            stream=settings.nats_stream,
            subject_prefix=settings.nats_subject_prefix,
            bus=bus,
        )
        if settings.nats_url
        else None
    )
    relay = OutboxRelay(
        sessionmaker, jetstream.delivery(once) if jetstream else in_process_delivery(bus, once)
    )
    verifiers: list[TokenSource] = [issuer.verifier()]
    if settings.external_issuer and settings.external_jwks_url:
        verifiers.append(
            TokenVerifier(
                issuer=settings.external_issuer,
                audience=settings.external_audience or settings.audience,
                jwks=RemoteJwks(
                    settings.external_jwks_url, min_refresh_interval=settings.external_jwks_refresh_seconds
                ),
            )
        )
    oidc = oidc_provider(settings)
    if oidc is not None and not settings.external_issuer:
        # People signed in through the provider hold its access tokens: the API takes them as it
        # takes any external issuer's, verified against the keys the provider's discovery names.
        verifiers.append(
            TokenVerifier(
                issuer=settings.oidc_issuer or "",
                audience=settings.external_audience or settings.audience,
                jwks=oidc.jwks,
            )
        )
    if settings.introspection_url:
        verifiers.append(
            IntrospectionVerifier(
                settings.introspection_url,
                client_id=settings.introspection_client_id or "",
                client_secret=settings.introspection_client_secret or "",
            )
        )
    bearer_auth = BearerAuth(verifiers)
    runner: FlowRunner | None = None

    def flow_runner() -> FlowRunner:
        assert runner is not None
        return runner

    # The demo's simulated systems live in this process, beside the endpoints that inject their faults.
    demo_systems = DemoSystems() if settings.demo else None
    gateway = Gateway(
        RegistryContracts(sessionmaker),
        authenticate=bearer_auth.verify,
        throttle=throttle,
        access_log=AccessLog(sys.stderr.buffer if settings.access_log else None),
        config=GatewayConfig(
            prefix=GATEWAY_PREFIX,
            public_url=settings.public_url,
            throttle_shadow=settings.throttle_shadow,
            throttle_per_operation=settings.throttle_per_operation,
            validate_responses=settings.validate_responses,
            max_body_bytes=settings.gateway_max_body_bytes,
            max_body_depth=settings.gateway_max_body_depth,
        ),
        egress=egress,
        handlers=demo_systems.adapters() if demo_systems else None,
        adapter_factories={"flow": flow_host.flow_adapter_factory(flow_runner)},
        tracing=tracing,
    )
    registry_metrics = RegistryMetrics(gateway.metrics.registry)
    event_contracts = EventContracts(sessionmaker)
    for topic in RELOAD_TOPICS:
        bus.subscribe(topic, event_contracts.on_event)
    run_index = flow_host.SqlRunIndex(sessionmaker, event_check=event_contracts.violations)
    runner = flow_host.create_runner(
        flows,
        database_url=settings.database_url,
        index=run_index,
        gateway=gateway,
        prefix=GATEWAY_PREFIX,
        tokens=flow_host.FlowTokens(issuer, settings.token_lifetime),
        executor_id=settings.flows_executor_id or flow_replicas.SINGLE_NODE_EXECUTOR,
        event_check=event_contracts.violations,
        tracing=tracing,
        system_database=SystemDatabaseSettings(synchronous_commit=settings.flows_synchronous_commit),
    )
    reloader = gateway_reloader(gateway)
    bus.subscribe("", reloader.on_event)

    async def learn_client(event: Event) -> None:
        # A replica that did not take the registration learns the client from the shared database.
        client = await find_registered_client(str(event.payload.get("client_id")))
        if client is not None:
            issuer.register(client)

    bus.subscribe("client.registered", learn_client)
    bus.subscribe("client.updated", learn_client)  # scopes granted or revoked
    if stored_keys is not None:
        bus.subscribe(signing_keys.ROTATED, stored_keys.on_event)
    webhooks = WebhookDeliveries(
        sessionmaker,
        egress=egress,
        secrets=secret_box,
        flow_owners={name: flow.owner for name, flow in flows.items()},
        attempts=settings.webhook_attempts,
        first_wait=settings.webhook_first_retry_seconds,
        outcomes=registry_metrics.webhook_deliveries,
    )
    # Delivery rows are unique per (webhook, event): writing them once per event is the relay's job,
    # and a replica that relays an event again after a crash adds nothing.
    once.subscribe("", webhooks.on_event)
    kept = retention.Retention(
        outbox_days=settings.outbox_retention_days,
        deliveries_days=settings.webhook_log_retention_days,
        token_lifetime=settings.token_lifetime,
        flow_runs_days=settings.flow_run_retention_days,
    )

    async def load_caches() -> None:
        """What this replica keeps of the database in memory, as it stands now."""
        async with sessionmaker() as session:
            for client in await clients.registered_clients(session):
                issuer.register(client)
        await gateway.reload()
        await event_contracts.reload()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await migrate(engine, secret_box)
        await check_stored_secrets(sessionmaker, secret_box)
        if stored_keys is not None:
            await stored_keys.load()
        if settings.demo:
            await bootstrap.load_demo(sessionmaker, settings)
        if jetstream is None and engine.dialect.name == "postgresql":
            log.warning(
                "replicas on PostgreSQL without CHARTER_NATS_URL: each event reaches only the replica that "
                "relays it; the others' routing tables and clients stay as they were until they restart"
            )
        if jetstream is not None:
            await jetstream.start(load_caches)
        else:
            await load_caches()
        background: list[asyncio.Task] = []
        if stored_keys is not None:
            background.append(asyncio.create_task(stored_keys.follow(), name="charter-signing-keys"))
        slot: flow_replicas.ExecutorSlot | None = None
        if runner.flows:  # DBOS is a process-wide engine: started only by a server that hosts flows
            if settings.flows_executor_id is None and engine.dialect.name == "postgresql":
                slot = flow_replicas.ExecutorSlot(engine)
                runner.executor_id = await slot.take()
            leases = flow_replicas.ExecutorLeases(
                sessionmaker, runner.executor_id, lease_seconds=settings.flows_lease_seconds
            )
            # A beat before DBOS resumes this executor's runs: survivors watching a slot restarted in
            # place see it live again rather than claim the runs it is resuming.
            await leases.beat()
            await runner.start()
            background.append(
                asyncio.create_task(flow_host.watch_late_runs(runner, run_index), name="charter-flows-late")
            )
            watching = flow_replicas.take_over_dead_replicas(
                runner, leases, every_seconds=settings.flows_heartbeat_seconds, slot=slot
            )
            background.append(asyncio.create_task(watching, name="charter-flows-takeover"))
        relaying = asyncio.create_task(relay.run(), name="charter-outbox-relay")
        delivering = asyncio.create_task(webhooks.run(), name="charter-webhooks")
        logging_access = asyncio.create_task(gateway.access_log.run(), name="charter-access-log")
        stopping = asyncio.Event()
        counting = asyncio.create_task(
            usage.run(sessionmaker, gateway.usage, stopping, service_levels=gateway.service_levels),
            name="charter-usage",
        )
        forget_runs = runner.forget if runner.flows else None
        pruning = asyncio.create_task(
            retention.run(sessionmaker, kept, stopping, forget_runs=forget_runs), name="charter-retention"
        )
        background.append(
            asyncio.create_task(burn_alerts.run(sessionmaker, stopping), name="charter-slo-burn")
        )
        if settings.gc_freeze:
            # The demo's contracts, compiled plans and validators are a large heap that lives as long as
            # the process: each full collection walked it, 110-180 ms with the event loop stopped, a few
            # times in 10 s under load (bench/gateway.py, Redis throttle: p99 8x the bare app's).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await runner.stop()
            if slot is not None:
                await slot.release()
            relay.stop()
            webhooks.stop()
            stopping.set()
            await asyncio.wait([relaying, counting, delivering, pruning], timeout=10)
            for task in (relaying, logging_access, counting, delivering, pruning, *background):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if jetstream is not None:
                await jetstream.aclose()
            await reloader.wait()
            await event_contracts.wait()
            await usage.flush(sessionmaker, gateway.usage, gateway.service_levels)
            await webhooks.aclose()
            if oidc is not None:
                await oidc.aclose()
            await gateway.aclose()
            await engine.dispose()
            # Exports the spans still batched. Not `asyncio.to_thread`: DBOS shut the loop's executor.
            await anyio.to_thread.run_sync(tracing.shutdown)

    app = Litestar(
        route_handlers=[
            TeamController,
            ApiController,
            VersionController,
            CompatibilityController,
            CanonicalController,
            ConsumerController,
            WebhookController,
            RulesetController,
            DiffPolicyController,
            DiscoveryController,
            FlowController,
            api_slo,
            prometheus_rules,
            token,
            jwks,
            ClientController,
            AccessRequestController,
            GrantController,
            BackstageController,
            BackupController,
            health,
            metrics,
            events_contract,
            gateway_mount(gateway),
            static_files_router(),
            portal_router(settings),
            assets_router(),
            *([DemoController] if demo_systems else []),
        ],
        dependencies={
            "session": Provide(provide_session),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "egress": Provide(provide_egress, sync_to_thread=False),
            "secrets": Provide(provide_secrets, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        exception_handlers=for_browsers(EXCEPTION_HANDLERS),  # type: ignore[arg-type]
        middleware=[
            DefineMiddleware(
                BodyDeadline,
                timeout=settings.body_timeout_seconds,
                min_rate=settings.body_min_bytes_per_second,
            )
        ],
        state=State(
            {
                "settings": settings,
                "egress": egress,
                "secret_box": secret_box,
                "sessionmaker": sessionmaker,
                "engine": engine,
                "issuer": issuer,
                "signing_keys": stored_keys,
                "bearer_auth": bearer_auth,
                "bus": bus,
                "once_bus": once,
                "jetstream": jetstream,
                "gateway": gateway,
                "reloader": reloader,
                "webhooks": webhooks,
                "flow_runner": runner,
                "event_contracts": event_contracts,
                "demo_systems": demo_systems,
                "registry_metrics": registry_metrics,
                "publish_telemetry": PublishTelemetry(tracing, registry_metrics),
                "tracing": tracing,
                "browser_sessions": browser_sessions(settings),
                "oidc": oidc,
                "oidc_pending": pending_sign_ins(settings),
            }
        ),
        lifespan=[lifespan],
        openapi_config=openapi_config(
            title="Charter registry", version=VERSION, anonymous_reads=settings.anonymous_reads
        ),
        plugins=[WireStructSchema()],
        template_config=template_config(),
        before_request=answer_options,
        request_max_body_size=settings.max_body_bytes,
    )
    app.state.allowed_methods = allowed_methods(app)
    # Gateway calls skip litestar's router and middleware; the body deadline still applies to them.
    deadline = BodyDeadline(
        gateway, timeout=settings.body_timeout_seconds, min_rate=settings.body_min_bytes_per_second
    )
    app.asgi_handler = GatewayFirst(deadline, app.asgi_handler, prefix=GATEWAY_PREFIX)
    return app


def _throttle(settings: Settings) -> Throttle:
    if settings.redis_url:
        from policies.throttle.redis_throttle import RedisThrottle  # redis-py only when configured

        return RedisThrottle(
            settings.redis_url,
            fail_open=settings.throttle_fail_open,
            lease_share=settings.throttle_lease_percent / 100,
        )
    return MemoryThrottle()
