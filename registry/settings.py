"""Configuration of the registry service, read from the environment (`CHARTER_*`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import msgspec

from contracts.loading import LoadLimits
from gateway.tracing import TracingConfig
from gateway.validation import MAX_VALIDATED_DEPTH

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./charter.db"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    # Where clients reach this server: tokens carry it as `iss`, Link headers and the portal name it.
    public_url: str = "http://127.0.0.1:8080"
    audience: str = "charter"
    admin_client_id: str | None = None
    admin_client_secret: str | None = None
    clients_json: str | None = None
    signing_key_file: str | None = None
    token_lifetime: int = 3600
    # Token endpoint: failed client authentications allowed per window, from one address (any client)
    # and against one client id (from addresses that have not authenticated it lately); scrypt threads.
    token_failures_per_source: int = 10
    token_failures_per_client: int = 30
    token_failure_window_seconds: int = 60
    token_verify_threads: int = 4
    # An external OAuth 2 / OIDC provider instead of (or beside) the built-in issuer.
    external_issuer: str | None = None
    external_audience: str | None = None
    external_jwks_url: str | None = None
    # An unknown `kid` refetches the provider's JWKS, at most this often (forged kids cost nothing).
    external_jwks_refresh_seconds: int = 30
    # Opaque tokens: RFC 7662 introspection at the provider, with this resource server's credentials.
    introspection_url: str | None = None
    introspection_client_id: str | None = None
    introspection_client_secret: str | None = None
    # People sign in to the portal through this OpenID Connect provider (authorization code with PKCE),
    # beside client ids and secrets. Its access tokens are what the session holds and what the API
    # accepts (see registry.web.oidc): CHARTER_EXTERNAL_* names the same provider, or, left unset,
    # the provider's own JWKS verifies them.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid"
    oidc_name: str = "single sign-on"  # the sign-in button reads "Sign in with <name>"
    oidc_timeout_seconds: int = 5
    anonymous_reads: bool = False
    # A bearer token Prometheus scrapes /metrics with (API and operation names are in its labels);
    # unset, /metrics answers anyone who reaches it, as most exporters do.
    metrics_token: str | None = None
    # The web portal's pages without signing in (anonymous reads of the API open them too).
    public_catalog: bool = False
    demo: bool = True
    max_body_bytes: int = 25 * 1024 * 1024
    # How long a client may take to send a request head, and a body (plus a second per min-rate bytes).
    header_timeout_seconds: int = 10
    body_timeout_seconds: int = 30
    body_min_bytes_per_second: int = 16 * 1024
    max_depth: int = 64
    # Backup imports (POST /api/v1/admin/import): the upload, its zip entries, what they unpack to.
    import_max_bytes: int = 1024 * 1024 * 1024
    import_max_entries: int = 1_000_000
    import_max_unpacked_bytes: int = 8 * 1024 * 1024 * 1024
    # Pairs of schemas one diff may compare (publish, /compatibility, /impact, /changes).
    max_schema_comparisons: int = 200_000
    search_limit_max: int = 100
    # Gateway throttling: in-process counters unless a Redis URL is given (shared by replicas).
    redis_url: str | None = None
    throttle_fail_open: bool = True  # Redis unreachable: let requests through (logged, counted)
    throttle_shadow: bool = False  # report what would be throttled, throttle nothing
    throttle_per_operation: bool = False
    # Per cent of a consumer's capacity a replica may lease from Redis at a time (0: every request asks).
    throttle_lease_percent: int = 1
    access_log: bool = True  # the gateway's JSON access lines, on stderr
    # Move what start-up made out of the collector's sight (gc.freeze): full collections then walk only
    # what requests made. On by default for servers (from_env), off for apps built in code (tests build
    # hundreds in one process, and a frozen cycle is never freed).
    gc_freeze: bool = False
    validate_responses: bool = False  # shadow mode: log and count responses outside their contract
    gateway_max_body_bytes: int = 10 * 1024 * 1024
    gateway_max_body_depth: int = 64
    webhook_first_retry_seconds: float = 1.0  # then doubling (with jitter)
    webhook_attempts: int = 6  # a delivery that failed this many times (5xx, 429, no answer) is given up
    # Days relayed outbox events and finished webhook deliveries are kept (registry.retention).
    outbox_retention_days: int = 7
    webhook_log_retention_days: int = 30
    # Finished flow runs (succeeded, cancelled, compensated) leave the index and the engine after this;
    # an Idempotency-Key is remembered as long as its run is kept. Failed (parked) runs stay.
    flow_run_retention_days: int = 90
    # Non-public targets that HTTP upstreams and webhooks may reach: networks and host:port, comma-separated.
    egress_allow: str | None = None
    # Fernet keys for secrets kept at rest (newest first), or a file of them; see registry.secret_box.
    secrets_key: str | None = None
    secrets_key_file: str | None = None
    # This server's name among replicas running flows: on start it resumes the unfinished runs of
    # that name. Unset: `local` on SQLite (one node), a fresh name per process on PostgreSQL.
    flows_executor_id: str | None = None
    # Replicas sharing PostgreSQL beat every `heartbeat` seconds; one silent for `lease` seconds is
    # dead, and a survivor resumes its unfinished runs.
    flows_heartbeat_seconds: int = 5
    flows_lease_seconds: int = 15
    # PostgreSQL: whether DBOS's step checkpoints wait for their WAL flush (see
    # gateway.flows.system_database). Off: a database crash may re-run the last steps of runs in flight.
    flows_synchronous_commit: bool = False
    # Events on NATS JetStream (`nats://host:4222`): the relay publishes to the stream, every replica
    # follows it (see registry.nats_bus). Unset: the in-process bus of the replica that relays.
    nats_url: str | None = None
    nats_stream: str = "CHARTER"
    nats_subject_prefix: str = "charter"  # events go to `<prefix>.<topic>`
    # Traces over OTLP/HTTP (CHARTER_OTEL_ENDPOINT, or the standard OTEL_EXPORTER_OTLP_ENDPOINT);
    # None: tracing off, OpenTelemetry not even imported. See gateway.tracing.
    tracing: TracingConfig | None = None

    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def load_limits(self) -> LoadLimits:
        """What one submitted document may cost: its bytes, its depth, the comparisons of its diff."""
        return LoadLimits(
            max_bytes=self.max_body_bytes,
            max_depth=self.max_depth,
            max_schema_comparisons=self.max_schema_comparisons,
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, host: str = "127.0.0.1", port: int = 8080
    ) -> Settings:
        """The settings of a server listening on `host` and `port`, which name its public URL unless
        CHARTER_PUBLIC_URL does."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(f"CHARTER_{name}")
            return value if value else None

        def flag(name: str, default: bool) -> bool:
            value = text(name)
            if value is None:
                return default
            return value.strip().lower() not in {"0", "false", "no", "off"}

        def number(name: str, default: int) -> int:
            value = text(name)
            if value is None:
                return default
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"CHARTER_{name} must be a whole number, not {value!r}") from None

        def seconds(name: str, default: float, low: float, high: float) -> float:
            value = text(name)
            try:
                number = default if value is None else float(value)
            except ValueError:
                raise ValueError(f"CHARTER_{name} must be a number of seconds, not {value!r}") from None
            if not low <= number <= high:  # also refuses nan
                raise ValueError(f"CHARTER_{name} must be between {low:g} and {high:g}, not {value}")
            return number

        def bounded(name: str, default: int, low: int, high: int) -> int:
            value = number(name, default)
            if not low <= value <= high:
                raise ValueError(f"CHARTER_{name} must be between {low} and {high}, not {value}")
            return value

        if text("OIDC_ISSUER") and not (text("OIDC_CLIENT_ID") and text("OIDC_CLIENT_SECRET")):
            raise ValueError(
                "CHARTER_OIDC_ISSUER needs CHARTER_OIDC_CLIENT_ID and CHARTER_OIDC_CLIENT_SECRET"
            )
        return cls(
            database_url=text("DATABASE_URL") or DEFAULT_DATABASE_URL,
            public_url=(text("PUBLIC_URL") or listening_url(host, port)).rstrip("/"),
            audience=text("AUDIENCE") or "charter",
            admin_client_id=text("ADMIN_CLIENT_ID"),
            admin_client_secret=text("ADMIN_CLIENT_SECRET"),
            clients_json=text("CLIENTS"),
            signing_key_file=text("SIGNING_KEY_FILE"),
            token_lifetime=number("TOKEN_LIFETIME", 3600),
            token_failures_per_source=number("TOKEN_FAILURES_PER_SOURCE", 10),
            token_failures_per_client=number("TOKEN_FAILURES_PER_CLIENT", 30),
            token_failure_window_seconds=number("TOKEN_FAILURE_WINDOW_SECONDS", 60),
            token_verify_threads=number("TOKEN_VERIFY_THREADS", 4),
            external_issuer=text("EXTERNAL_ISSUER"),
            external_audience=text("EXTERNAL_AUDIENCE"),
            external_jwks_url=text("EXTERNAL_JWKS_URL"),
            external_jwks_refresh_seconds=number("EXTERNAL_JWKS_REFRESH_SECONDS", 30),
            oidc_issuer=text("OIDC_ISSUER"),
            oidc_client_id=text("OIDC_CLIENT_ID"),
            oidc_client_secret=text("OIDC_CLIENT_SECRET"),
            oidc_scopes=text("OIDC_SCOPES") or "openid",
            oidc_name=text("OIDC_NAME") or "single sign-on",
            oidc_timeout_seconds=bounded("OIDC_TIMEOUT_SECONDS", 5, 1, 60),
            anonymous_reads=flag("ANONYMOUS_READS", False),
            metrics_token=text("METRICS_TOKEN"),
            public_catalog=flag("PUBLIC_CATALOG", False),
            introspection_url=text("INTROSPECTION_URL"),
            introspection_client_id=text("INTROSPECTION_CLIENT_ID"),
            introspection_client_secret=text("INTROSPECTION_CLIENT_SECRET"),
            demo=flag("DEMO", True),
            max_body_bytes=number("MAX_BODY_BYTES", 25 * 1024 * 1024),
            header_timeout_seconds=number("HEADER_TIMEOUT_SECONDS", 10),
            body_timeout_seconds=number("BODY_TIMEOUT_SECONDS", 30),
            body_min_bytes_per_second=number("BODY_MIN_BYTES_PER_SECOND", 16 * 1024),
            max_depth=number("MAX_DEPTH", 64),
            import_max_bytes=number("IMPORT_MAX_BYTES", 1024 * 1024 * 1024),
            import_max_entries=number("IMPORT_MAX_ENTRIES", 1_000_000),
            import_max_unpacked_bytes=number("IMPORT_MAX_UNPACKED_BYTES", 8 * 1024 * 1024 * 1024),
            max_schema_comparisons=number("MAX_SCHEMA_COMPARISONS", 200_000),
            redis_url=text("REDIS_URL"),
            throttle_fail_open=flag("THROTTLE_FAIL_OPEN", True),
            throttle_shadow=flag("THROTTLE_SHADOW", False),
            throttle_per_operation=flag("THROTTLE_PER_OPERATION", False),
            throttle_lease_percent=bounded("THROTTLE_LEASE_PERCENT", 1, 0, 10),
            access_log=flag("ACCESS_LOG", True),
            gc_freeze=flag("GC_FREEZE", True),
            validate_responses=flag("VALIDATE_RESPONSES", False),
            egress_allow=text("EGRESS_ALLOW"),
            secrets_key=text("SECRETS_KEY"),
            secrets_key_file=text("SECRETS_KEY_FILE"),
            flows_executor_id=text("FLOWS_EXECUTOR_ID"),
            flows_heartbeat_seconds=(heartbeat := bounded("FLOWS_HEARTBEAT_SECONDS", 5, 1, 3600)),
            flows_lease_seconds=bounded("FLOWS_LEASE_SECONDS", 3 * heartbeat, 2 * heartbeat, 24 * 3600),
            flows_synchronous_commit=flag("FLOWS_SYNCHRONOUS_COMMIT", False),
            gateway_max_body_bytes=number("GATEWAY_MAX_BODY_BYTES", 10 * 1024 * 1024),
            nats_url=text("NATS_URL"),
            nats_stream=_nats_name("NATS_STREAM", text("NATS_STREAM") or "CHARTER", r"[A-Za-z0-9_-]+"),
            nats_subject_prefix=_nats_name(
                "NATS_SUBJECT_PREFIX",
                text("NATS_SUBJECT_PREFIX") or "charter",
                r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*",
            ),
            gateway_max_body_depth=bounded("GATEWAY_MAX_BODY_DEPTH", 64, 1, MAX_VALIDATED_DEPTH),
            webhook_attempts=bounded("WEBHOOK_ATTEMPTS", 6, 1, 20),
            webhook_first_retry_seconds=seconds("WEBHOOK_FIRST_RETRY_SECONDS", 1.0, 0.1, 3600),
            outbox_retention_days=bounded("OUTBOX_RETENTION_DAYS", 7, 1, 3650),
            webhook_log_retention_days=bounded("WEBHOOK_LOG_RETENTION_DAYS", 30, 1, 3650),
            flow_run_retention_days=bounded("FLOW_RUN_RETENTION_DAYS", 90, 1, 3650),
            tracing=TracingConfig.from_env(env),
        )


def _nats_name(name: str, value: str, pattern: str) -> str:
    if not re.fullmatch(pattern, value):
        raise ValueError(f"CHARTER_{name} must match {pattern}, not {value!r}")
    return value


def listening_url(host: str, port: int) -> str:
    """The URL of a server bound to `host`:`port`; a wildcard address is reached on loopback."""
    address = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"
