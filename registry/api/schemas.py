"""Data on the wire of the REST API (msgspec Structs; decoded and validated in one step)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from contracts.diff import Change, ChangeGroup, SeverityPolicy

# PostgreSQL text cannot hold NUL (SQLite can): refusing it in every string the API takes keeps
# both databases alike and says so in the contract, so clients see a 400, never a 500.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", min_length=1, max_length=100)]
Tag = Annotated[Text, msgspec.Meta(min_length=1, max_length=100)]
# msgspec decodes 64-bit integers: a bound keeps every schema-valid count decodable.
Count = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
LayerName = Literal["system", "process", "experience", "canonical"]
ValidityName = Literal["full", "syntax-only", "none"]
CompatibilityName = Literal["FULL", "BACKWARD", "BACKWARD_TRANSITIVE", "NONE"]
BumpName = Literal["none", "patch", "minor", "major"]
StateName = Literal["draft", "published", "deprecated", "retired"]


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details; `errors` lists every issue with its JSON pointer."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemIssue] | None = None
    # RFC 9457 extension members of an incompatible-change problem.
    required_bump: str | None = None
    base_version: str | None = None


class ProblemIssue(msgspec.Struct, omit_defaults=True):
    pointer: str  # absolute, into the submitted document (or into `file` of a bundle)
    message: str
    file: str | None = None
    line: int | None = None  # where `pointer` is in the submitted text, from 1
    column: int | None = None


class TeamIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Text | None = None
    members: list[Annotated[Text, msgspec.Meta(min_length=1, max_length=200)]] = []


class TeamOut(msgspec.Struct):
    name: str
    description: str | None
    members: list[str]
    created_at: dt.datetime


class TeamList(msgspec.Struct):
    items: list[TeamOut]


class Contact(msgspec.Struct, omit_defaults=True):
    name: Text | None = None
    email: Text | None = None
    url: Text | None = None


class ContactIn(msgspec.Struct, omit_defaults=True):
    """A contact as a team writes it; stored ones are read back as `Contact`, whatever their length."""

    name: Annotated[Text, msgspec.Meta(max_length=1000)] | None = None
    email: Annotated[Text, msgspec.Meta(max_length=1000)] | None = None
    url: Annotated[Text, msgspec.Meta(max_length=2000)] | None = None


# Every tag is a row of the tag index and every item is in each answer that lists the API: one
# request must not write hundreds of thousands (100,000 tags held the write lock for 4 s).
Tags = Annotated[list[Tag], msgspec.Meta(max_length=100)]
Contacts = Annotated[list[ContactIn], msgspec.Meta(max_length=50)]


class RateLimit(msgspec.Struct, forbid_unknown_fields=True):
    """A quota per consumer: `requests` per `per_seconds`, of which `burst` may come at once
    (0: the whole quota may)."""

    requests: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
    per_seconds: Annotated[int, msgspec.Meta(ge=1, le=31_536_000)]
    burst: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] = 0


OperationId = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
_ADAPTER_NEEDS = (("http", "url"), ("python", "entry_point"), ("flow", "flow"))


class OperationAdapterIn(msgspec.Struct, forbid_unknown_fields=True):
    """Where the gateway sends one operation's calls: examples, an HTTP upstream, handlers, or a flow."""

    kind: Literal["mock", "http", "python", "flow"]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\x00]*$", max_length=2000)] | None = None
    entry_point: Annotated[Text, msgspec.Meta(min_length=1, max_length=200)] | None = None
    connect_timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    read_timeout: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    flow: Annotated[Text, msgspec.Meta(min_length=1, max_length=200)] | None = None
    # How long a call waits for its run before answering 202 with where to poll.
    wait_seconds: Annotated[float, msgspec.Meta(ge=0, le=60)] = 10.0

    # What __post_init__ checks, in the contract (registry.api.wire_schema puts it there).
    json_schema_all_of: ClassVar[list[dict[str, Any]]] = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"properties": {field: {"type": "string"}}, "required": [field]},
        }
        for kind, field in _ADAPTER_NEEDS
    ]

    def __post_init__(self) -> None:
        for kind, field in _ADAPTER_NEEDS:
            if self.kind == kind and not getattr(self, field):
                raise ValueError(f"a{'n' if kind == 'http' else ''} {kind} adapter needs `{field}`")


OperationBindings = Annotated[dict[OperationId, OperationAdapterIn], msgspec.Meta(max_length=500)]


class AdapterIn(OperationAdapterIn, forbid_unknown_fields=True):
    """An API's default adapter, and those of single operations (`operations`: operationId to binding)."""

    operations: OperationBindings | None = None

    def flows(self) -> set[str]:
        named = {self.flow} if self.flow else set()
        return named | {single.flow for single in (self.operations or {}).values() if single.flow}


class Sla(msgspec.Struct, omit_defaults=True):
    tier: Annotated[Text, msgspec.Meta(min_length=1, max_length=50)]
    availability: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    latency_p99_ms: Annotated[int, msgspec.Meta(ge=1, le=2**53)] | None = None
    rate_limit: RateLimit | None = None
    support_hours: Text | None = None


class ApiIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    owner: Name
    title: Annotated[Text, msgspec.Meta(min_length=1, max_length=300)]
    layer: LayerName
    description: Text | None = None
    domain: Annotated[Text, msgspec.Meta(max_length=100)] | None = None
    tags: Tags = []
    contacts: Contacts = []
    # Absent: FULL for a canonical model (layer `canonical`), BACKWARD for any other API.
    compatibility: CompatibilityName | None = None
    validity: ValidityName = "full"
    sla: Sla | None = None


class ApiPatch(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[Text, msgspec.Meta(min_length=1, max_length=300)] | None = None
    description: Text | None = None
    owner: Name | None = None
    layer: LayerName | None = None
    domain: Annotated[Text, msgspec.Meta(max_length=100)] | None = None
    tags: Tags | None = None
    contacts: Contacts | None = None
    compatibility: CompatibilityName | None = None
    validity: ValidityName | None = None
    sla: Sla | None = None


class ApiOut(msgspec.Struct):
    name: str
    title: str
    description: str | None
    owner: str
    layer: str
    domain: str | None
    tags: list[str]
    contacts: list[Contact]
    compatibility: str
    validity: str
    sla: Sla | None
    kind: str | None
    latest_version: str | None
    adapter: AdapterIn | None
    created_at: dt.datetime
    updated_at: dt.datetime


class Deprecation(msgspec.Struct):
    deprecated_at: dt.datetime
    sunset: dt.date | None
    replacement: str | None
    reason: str | None


class ConformanceRun(msgspec.Struct, forbid_unknown_fields=True):
    """A conformance run (schemathesis) of a version against a live deployment."""

    passed: bool
    target: Annotated[Text, msgspec.Meta(max_length=2000)]
    operations: Count
    test_cases: Count
    failures: Count
    seconds: Annotated[float, msgspec.Meta(ge=0)]
    failed_operations: list[Annotated[Text, msgspec.Meta(max_length=500)]] = []


class ConformanceResult(ConformanceRun):
    """A recorded run: the registry adds when, and who reported it."""

    checked_at: dt.datetime | None = None
    checked_by: str | None = None


class VersionOut(msgspec.Struct):
    api: str
    version: str
    state: StateName
    kind: str | None
    spec_version: str | None
    fingerprint: str
    media_type: str
    size_bytes: int
    files: list[str]
    published_at: dt.datetime
    published_by: str
    deprecation: Deprecation | None
    retired_at: dt.datetime | None
    # Against base_version, the released version this one succeeded when it was stored.
    base_version: str | None = None
    required_bump: BumpName | None = None
    breaking: bool | None = None
    change_count: int | None = None
    conformance: ConformanceResult | None = None


class ChangesOut(msgspec.Struct):
    """A page of a version's changes, each once at the place that changed, breaking first."""

    api: str
    version: str
    base_version: str | None
    breaking: bool
    required_bump: BumpName
    groups: list[ChangeGroup]
    total_groups: int
    total_findings: int  # a group counts one finding per operation (and response) it reaches
    counts: dict[str, int]  # groups by level: error, warning, info
    next_cursor: str | None  # pass as `cursor` for the next page; None on the last one
    suppressed: dict[str, int] = {}  # findings of rules the API's diff policy turned off, by rule


class DependentOut(msgspec.Struct):
    """An API version whose contract declares a canonical model (`x-canonical`)."""

    api: str
    owner: str
    version: str
    state: StateName
    range: str  # the declared semver range of the model (`^1`)
    pointers: list[str]  # the declaring schemas, absolute JSON pointers
    # Whether the model's version in question satisfies the range (only in an impact answer).
    in_range: bool | None = None


class DependentList(msgspec.Struct):
    canonical: str
    items: list[DependentOut]


class CompatibilityOut(msgspec.Struct):
    """The verdict on a candidate document: what publishing it as `version` would meet."""

    api: str
    version: str
    compatibility: str
    base_version: str | None
    verdict: Literal["compatible", "incompatible"]
    breaking: bool
    required_bump: BumpName
    changes: list[Change]  # every finding, once per operation it reaches, as before groups were added
    offending: list[Change]
    # The changes once each at the place that changed, with the operations they reach, breaking
    # first: what `charter diff --format json` answers as `groups`.
    groups: list[ChangeGroup] = []
    suppressed: dict[str, int] = {}  # findings of rules the API's severity policy turned off, by rule
    # A canonical model's breaking change: the API versions declaring the base version's range.
    dependents: list[DependentOut] = []


class VersionList(msgspec.Struct):
    items: list[VersionOut]


class DeprecateIn(msgspec.Struct, forbid_unknown_fields=True):
    sunset: dt.date | None = None
    replacement: Annotated[Text, msgspec.Meta(max_length=100)] | None = None
    reason: Annotated[Text, msgspec.Meta(max_length=2000)] | None = None


class RetireIn(msgspec.Struct, forbid_unknown_fields=True):
    """A retire normally follows a deprecation; an emergency (admins only) skips it and says why."""

    emergency: bool = False
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class SearchHit(msgspec.Struct):
    name: str
    title: str
    description: str | None
    owner: str
    layer: str
    domain: str | None
    tags: list[str]
    kind: str | None
    latest_version: str | None


class SearchPage(msgspec.Struct):
    items: list[SearchHit]
    total: int
    limit: int
    offset: int


class AuditOut(msgspec.Struct):
    id: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    before: dict | None
    after: dict | None


class AuditPage(msgspec.Struct):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


class Health(msgspec.Struct):
    status: str
    database: str


# RFC 6749 section 3.3: a scope token is printable ASCII without space, `"` and `\\`.
Scope = Annotated[str, msgspec.Meta(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]{1,100}$")]
Reason = Annotated[str, msgspec.Meta(max_length=2000)]
AccessStateName = Literal["pending", "approved", "rejected", "revoked"]


class ClientIn(msgspec.Struct, forbid_unknown_fields=True):
    """Non-admins may name registry scopes never, and API scopes only of their own team's APIs."""

    client_id: Name
    name: Annotated[Text, msgspec.Meta(min_length=1, max_length=200)]
    team: Name
    scopes: Annotated[list[Scope], msgspec.Meta(max_length=100)] = []


class ClientCreated(msgspec.Struct):
    """The secret is shown this once; only its hash is stored."""

    client_id: str
    name: str
    team: str
    scopes: list[str]
    client_secret: str


class ClientOut(msgspec.Struct):
    client_id: str
    name: str
    team: str
    scopes: list[str]
    created_at: dt.datetime
    created_by: str


class AccessRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    """Scopes of this API for a client of the caller's team, with why it needs them."""

    client_id: Name
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=50)]
    reason: Reason | None = None


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class AccessRequestOut(msgspec.Struct):
    id: int
    api: str
    owner: str  # the team that decides
    client_id: str
    team: str  # the client's team, which asked
    scopes: list[str]
    reason: str | None
    state: AccessStateName
    requested_at: dt.datetime
    requested_by: str
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_reason: str | None


class AccessRequestPage(msgspec.Struct):
    items: list[AccessRequestOut]
    total: int
    limit: int
    offset: int


class GrantOut(msgspec.Struct):
    """A client holding scopes of the API, and the approved requests that gave them (none: an admin
    gave them at registration, or the client is the owner team's own)."""

    client_id: str
    team: str
    scopes: list[str]
    granted_by: list[int]


class GrantList(msgspec.Struct):
    items: list[GrantOut]


class ConsumerIn(msgspec.Struct, forbid_unknown_fields=True):
    consumer: Name
    team: Name
    versions: Annotated[
        Text, msgspec.Meta(min_length=1, max_length=200, description="an npm-style semver range, e.g. ^1.4")
    ]
    # Read by every impact check of the API, the owner's publishes included: bounded like a binding.
    operations: Annotated[
        list[Annotated[Text, msgspec.Meta(min_length=1, max_length=500)]], msgspec.Meta(max_length=2000)
    ] = []
    # Lifecycle events (contract.deprecated) are POSTed here, signed: Charter-Signature: sha256=<hmac>.
    webhook_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\x00]*$", max_length=2000)] | None = None
    webhook_secret: Annotated[Text, msgspec.Meta(min_length=16, max_length=200)] | None = None

    # registry.consumers refuses a webhook without its secret, and a secret without its webhook.
    json_schema_all_of: ClassVar[list[dict[str, Any]]] = [
        {
            "if": {"properties": {given: {"type": "string"}}, "required": [given]},
            "then": {"properties": {needed: {"type": "string"}}, "required": [needed]},
        }
        for given, needed in (("webhook_url", "webhook_secret"), ("webhook_secret", "webhook_url"))
    ]


class ConsumerOut(msgspec.Struct):
    api: str
    consumer: str
    team: str
    versions: str
    operations: list[str]
    registered_at: dt.datetime
    registered_by: str
    webhook_url: str | None = None


class ConsumerList(msgspec.Struct):
    items: list[ConsumerOut]


class AffectedConsumerOut(msgspec.Struct):
    consumer: str
    team: str | None  # None for a consumer only seen at the gateway
    versions: str  # the registered range, or the version it was seen calling
    base_version: str
    change_ids: list[str]
    observed: bool = False  # found in gateway usage, never registered


class ImpactOut(msgspec.Struct):
    """Which registered consumers a candidate document would break, and by which changes."""

    api: str
    version: str
    changes: list[Change]
    affected: list[AffectedConsumerOut]


class RulesetOut(msgspec.Struct):
    scope: str  # "global" or "team:<name>"
    content: str  # the ruleset's YAML (or JSON) text as stored
    updated_at: dt.datetime
    updated_by: str


class DiffPolicyOut(msgspec.Struct):
    scope: str  # "global" or "api:<name>"
    policy: SeverityPolicy  # empty when none is stored: the catalog's levels, or the wider policy's
    stored: bool = True
    updated_at: dt.datetime | None = None
    updated_by: str | None = None


class EffectiveDiffPolicyOut(msgspec.Struct):
    """What the registry judges an API's changes with: its own policy over the global one."""

    api: str
    policy: SeverityPolicy  # empty: the catalog's levels
    scopes: list[str]  # the stored policies it combines, widest first


class UsageOut(msgspec.Struct):
    consumer: str
    version: str
    operation: str
    calls: int
    last_seen: dt.datetime


class UsageList(msgspec.Struct):
    items: list[UsageOut]


class DemoFault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a simulated demo system does to its next calls until told otherwise."""

    fail_next: Annotated[int, msgspec.Meta(ge=0, le=10_000, description="calls that answer `status`")] = 0
    status: Annotated[int, msgspec.Meta(ge=400, le=599, description="what the failing calls answer")] = 503
    delay_ms: Annotated[int, msgspec.Meta(ge=0, le=30_000, description="wait before every call")] = 0


class DemoSystemOut(msgspec.Struct, frozen=True):
    name: str
    calls: dict[str, int]  # by operationId, since the service started
    faults: DemoFault
