"""Tables of the registry (SQLAlchemy 2 typed models). Migrations in registry/db/migrations."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from gateway.service_levels import BUCKETS as SERVICE_LEVEL_BUCKETS


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every engine: SQLite keeps no zone and would hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use an aware UTC datetime")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Layer(enum.StrEnum):
    SYSTEM = "system"
    PROCESS = "process"
    EXPERIENCE = "experience"
    # Canonical business objects (JSON Schema), stewarded by the owning team.
    CANONICAL = "canonical"


class VersionState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class Validity(enum.StrEnum):
    """How strictly a publish is checked (as in Apicurio's validity rule)."""

    FULL = "full"
    SYNTAX_ONLY = "syntax-only"
    NONE = "none"


class Compatibility(enum.StrEnum):
    # Judged for producers and consumers both: canonical models' default (their diff is two-way).
    FULL = "FULL"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    NONE = "NONE"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team", cascade="all, delete-orphan", lazy="selectin"
    )


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    # The token subject (client id for client-credentials tokens).
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    team: Mapped[Team] = relationship(back_populates="members")


class Client(Base):
    """A consumer application registered with the built-in issuer; its tokens name it as the consumer."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    secret_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    team: Mapped[Team] = relationship(lazy="joined")


class AccessState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


class AccessRequest(Base):
    """A consumer team asks for scopes of another team's API for one of its clients; the owner decides.

    An approved request is the grant: the client holds its scopes until the request is revoked.
    """

    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_client_state", "client_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_id: Mapped[int] = mapped_column(ForeignKey("apis.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default=AccessState.PENDING.value)
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(200))
    # The last decision: approval or rejection, then a revocation of an approved request.
    decided_at: Mapped[dt.datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    api: Mapped[Api] = relationship(lazy="joined")
    client: Mapped[Client] = relationship(lazy="joined")


class VersionScope(Base):
    """One row per scope a stored version declares, so that a scope's owner is one indexed lookup."""

    __tablename__ = "version_scopes"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("api_versions.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class CanonicalDeclaration(Base):
    """One row per schema of a stored version that declares `x-canonical`: a model's dependents are
    one indexed lookup, never a parse of every contract."""

    __tablename__ = "canonical_declarations"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("api_versions.id", ondelete="CASCADE"), primary_key=True
    )
    pointer: Mapped[str] = mapped_column(String(1000), primary_key=True)
    canonical: Mapped[str] = mapped_column(String(100), index=True)
    range: Mapped[str] = mapped_column(String(200))


class Consumer(Base):
    """An application that uses an API: the version range it accepts and the operations it calls."""

    __tablename__ = "consumers"
    __table_args__ = (UniqueConstraint("api_id", "consumer", name="uq_consumers_api_consumer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_id: Mapped[int] = mapped_column(ForeignKey("apis.id", ondelete="CASCADE"), index=True)
    consumer: Mapped[str] = mapped_column(String(100))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    versions: Mapped[str] = mapped_column(String(200))  # an npm-style semver range, e.g. ^1.4
    # "GET /projects/{id}", an operationId, or a channel address; empty: the whole API.
    operations: Mapped[list[str]] = mapped_column(JSON)
    # Where contract.deprecated events are delivered, signed with HMAC-SHA256 under the secret,
    # which is kept sealed by registry.secret_box (never in clear text).
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret_sealed: Mapped[str | None] = mapped_column(Text)
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    registered_by: Mapped[str] = mapped_column(String(200))
    team: Mapped[Team] = relationship(lazy="joined")


class LintRuleset(Base):
    """A governance ruleset as its YAML text: the global one, or a team's (which replaces it)."""

    __tablename__ = "lint_rulesets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(120), unique=True)  # "global" or "team:<name>"
    content: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class DiffPolicy(Base):
    """A severity policy for the diff, as JSON: the global one, or an API's (which refines it)."""

    __tablename__ = "diff_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(120), unique=True)  # "global" or "api:<name>"
    content: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class ApiUsage(Base):
    """Calls through the gateway per API version, operation and consumer (registered or not)."""

    __tablename__ = "api_usage"
    __table_args__ = (UniqueConstraint("api", "version", "operation", "consumer", name="uq_api_usage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str] = mapped_column(String(600))  # "GET /projects/{projectId}"
    consumer: Mapped[str] = mapped_column(String(200))
    calls: Mapped[int] = mapped_column(BigInteger)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiDailyUsage(Base):
    """Calls through the gateway per API version, consumer and day (UTC): what the API page charts.
    Replicas add their counts to the same row, as they do to the totals in ApiUsage."""

    __tablename__ = "api_daily_usage"
    __table_args__ = (
        UniqueConstraint("api", "version", "consumer", "day", name="uq_api_daily_usage"),
        Index("ix_api_daily_usage_api_day", "api", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    consumer: Mapped[str] = mapped_column(String(200))
    day: Mapped[dt.date] = mapped_column(Date)
    calls: Mapped[int] = mapped_column(BigInteger)


class ApiServiceMinute(Base):
    """What the gateway measured of one API version in one minute (UTC), against the API's SLA:
    requests, 5xx answers, 429 answers, and latencies in fixed buckets (gateway.service_levels) of
    the answers that were not 429. Replicas add their counts to the same row."""

    __tablename__ = "api_service_minutes"
    __table_args__ = (
        UniqueConstraint("api", "version", "minute", name="uq_api_service_minutes"),
        Index("ix_api_service_minutes_api_minute", "api", "minute"),
        Index("ix_api_service_minutes_minute", "minute"),  # retention prunes by age alone
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    api: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    minute: Mapped[dt.datetime]
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    throttled: Mapped[int] = mapped_column(BigInteger)


# One column per latency bucket (b0 ... b61): summed by the database on upsert, on both engines.
LATENCY_COLUMNS = tuple(f"b{index}" for index in range(SERVICE_LEVEL_BUCKETS))
for _column in LATENCY_COLUMNS:
    # Declarative maps an attribute set on the class after creation (table column and mapper both).
    setattr(ApiServiceMinute, _column, mapped_column(_column, BigInteger, nullable=False, default=0))


class ApiSloAlert(Base):
    """An error-budget burn alert firing now (registry.slo.burn_alerts): the row exists for as long as
    the episode lasts, so that whichever replica starts or ends it announces it, and only once."""

    __tablename__ = "api_slo_alerts"

    api: Mapped[str] = mapped_column(String(100), primary_key=True)
    severity: Mapped[str] = mapped_column(String(20), primary_key=True)  # page | ticket
    since: Mapped[dt.datetime]


class Api(Base):
    __tablename__ = "apis"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    kind: Mapped[str | None] = mapped_column(String(20), index=True)
    domain: Mapped[str | None] = mapped_column(String(100), index=True)
    layer: Mapped[str] = mapped_column(String(20), index=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    contacts: Mapped[list[Any]] = mapped_column(default=list)
    compatibility: Mapped[str] = mapped_column(String(30), default=Compatibility.BACKWARD.value)
    validity: Mapped[str] = mapped_column(String(20), default=Validity.FULL.value)
    sla: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The gateway adapter the API's operations are bound to (registry.api.schemas.AdapterIn).
    adapter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Denormalized so that search never has to sort versions by semver.
    latest_version: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Team] = relationship(lazy="joined")


class ApiTag(Base):
    """One row per tag, so that tag filters are a portable indexed EXISTS on both engines."""

    __tablename__ = "api_tags"

    api_id: Mapped[int] = mapped_column(ForeignKey("apis.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class ApiVersion(Base):
    __tablename__ = "api_versions"
    __table_args__ = (UniqueConstraint("api_id", "version", name="uq_api_versions_api_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_id: Mapped[int] = mapped_column(ForeignKey("apis.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str | None] = mapped_column(String(20))
    spec_version: Mapped[str | None] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(80))
    # The root document as submitted, and its canonical JSON form (served for `Accept: json`).
    media_type: Mapped[str] = mapped_column(String(100))
    source: Mapped[bytes] = mapped_column(LargeBinary)
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    root_path: Mapped[str | None] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # Operation ids, summaries, channel addresses: what search finds this version by.
    search_text: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200))
    deprecated_at: Mapped[dt.datetime | None]
    sunset: Mapped[dt.date | None] = mapped_column(Date)
    replacement: Mapped[str | None] = mapped_column(String(100))
    deprecation_reason: Mapped[str | None] = mapped_column(Text)
    retired_at: Mapped[dt.datetime | None]
    # Changes against base_version, the released version this one succeeded when it was stored:
    # zlib-compressed JSON, since a large contract's diff lists thousands of similar lines.
    base_version: Mapped[str | None] = mapped_column(String(100))
    required_bump: Mapped[str | None] = mapped_column(String(10))
    breaking: Mapped[bool | None]
    change_count: Mapped[int | None]
    changes: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Findings of rules the API's diff policy turned off, by rule: not in `changes`, counted here.
    suppressed: Mapped[dict[str, int] | None] = mapped_column(JSON)
    # The last conformance run against a live deployment (registry.api.schemas.ConformanceResult).
    conformance: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    files: Mapped[list[VersionFile]] = relationship(cascade="all, delete-orphan", lazy="raise")


class VersionFile(Base):
    """Every file of a multi-file contract, stored whole next to its root."""

    __tablename__ = "version_files"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("api_versions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(300))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxEvent(Base):
    """Transactional outbox: written with the change, relayed to the event bus after commit."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    topic: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    relayed_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class FlowRun(Base):
    """The index of flow runs (the durable engine keeps its own state): what operators search."""

    __tablename__ = "flow_runs"
    __table_args__ = (Index("ix_flow_runs_flow_state", "flow", "state"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    flow: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    updated_at: Mapped[dt.datetime]
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole run: steps, input, outputs, result
    keys: Mapped[list[FlowRunKey]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class FlowRunKey(Base):
    """A business key value of a run (`opportunityId` = `opp-1`), searchable by value."""

    __tablename__ = "flow_run_keys"

    run_id: Mapped[str] = mapped_column(ForeignKey("flow_runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(500), index=True)


class FlowExecutor(Base):
    """A replica running flows, and its heartbeat: a count that survivors watch for going still."""

    __tablename__ = "flow_executors"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    beats: Mapped[int] = mapped_column(BigInteger)
    beat_at: Mapped[dt.datetime]  # for operators; liveness is judged by `beats` changing, not clocks


class WebhookSubscription(Base):
    """A team's URL for the events of some topics, narrowed by filters; signed under a sealed secret."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret_sealed: Mapped[str] = mapped_column(Text)  # registry.secret_box, never in clear text
    # Topic names (`contract.deprecated`) or prefixes ending in `.*` (`flow.run.*`).
    topics: Mapped[list[str]] = mapped_column(JSON)
    apis: Mapped[list[str]] = mapped_column(JSON)  # empty: every API
    flows: Mapped[list[str]] = mapped_column(JSON)  # empty: every flow the team owns
    versions: Mapped[str | None] = mapped_column(String(200))  # semver range for contract.* events
    # Only contract.* events of versions with breaking changes (a draft proposing them, a forced publish).
    breaking_only: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    team: Mapped[Team] = relationship(lazy="joined")


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(Base):
    """One event for one webhook (a subscription's, or a consumer's), and how sending it went.

    Unique per (target, event): every replica may turn the same event into rows, only one row stays.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_subscription_event"),
        UniqueConstraint("consumer_id", "event_id", name="uq_webhook_deliveries_consumer_event"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # sent as Charter-Delivery
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    consumer_id: Mapped[int | None] = mapped_column(ForeignKey("consumers.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # exactly what is sent and signed
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    last_attempt_at: Mapped[dt.datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]


class SigningKey(Base):
    """A private key of the built-in issuer, sealed with the secrets key; the highest generation signs.

    Generations are the primary key: replicas that create the first key, or rotate, at the same time
    collide on it, and every loser reads the winner's key.
    """

    __tablename__ = "signing_keys"

    generation: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    sealed_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # When a newer key took over signing: published until the tokens this one signed have expired.
    retired_at: Mapped[dt.datetime | None]
