"""Import a backup zip into this registry, in one transaction: all of it, or (on any error) nothing.

What is already here wins; an import adds, it never overwrites:
- an API of a name already stored is refused, with everything that hangs on it (versions, consumers,
  grants), unless `merge`: then the versions it lacks are added, a version it holds with the same
  fingerprint is left alone, and one with another fingerprint is a conflict, reported, not written;
- teams, clients, rulesets and diff policies already here (by name, client id, scope) are kept as
  they are; a team's members from the backup are added to a new team, and with `merge` to an
  existing one too;
- audit events already here (same time, actor, action and subject) are not added twice.

Secrets stay sealed: webhook secrets are opened and sealed again under this server's first key, so
a backup from an install with another secrets key imports only if this server also holds that key
(CHARTER_SECRETS_KEY lists keys newest first: put the new one in front and keep the old one after it).
Client secrets travel as their scrypt hashes, which any install checks alike.

Every URL the backup would have this server call (adapter bindings and their single operations,
consumers' webhooks, webhook subscriptions) is held to this server's egress policy, as a PUT or POST
of it would be: a backup is a file anyone can edit, and the source's allow-list is not this one's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import egress as outbound
from policies.egress import EgressPolicy
from registry import audit, catalog
from registry.api.schemas import AdapterIn
from registry.db.engine import begin_write
from registry.db.models import (
    AccessRequest,
    Api,
    ApiVersion,
    AuditEvent,
    Client,
    Consumer,
    DiffPolicy,
    LintRuleset,
    Team,
    TeamMember,
    VersionFile,
    VersionScope,
    WebhookSubscription,
)
from registry.interop.archive_format import is_binary
from registry.interop.archive_reader import BackupInvalid, BackupReader
from registry.secret_box import SecretBox, SecretsKeyError
from registry.versions import refresh_latest

BATCH = 500


class ApiOutcome(msgspec.Struct, kw_only=True):
    name: str
    outcome: str  # imported | merged | refused
    versions_added: int = 0
    versions_present: int = 0
    conflicts: list[str] = []
    reason: str | None = None


class ImportReport(msgspec.Struct, kw_only=True):
    merge: bool
    apis: list[ApiOutcome] = []
    # Rows written per table, and rows left out because the target already held them (or their API).
    added: dict[str, int] = {}
    kept: dict[str, int] = {}


def _plain(row: msgspec.Struct, **changes: Any) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in row.__struct_fields__}
    values.update(changes)
    return values


class _Restore:
    def __init__(self, session: AsyncSession, reader: BackupReader, secrets: SecretBox, merge: bool) -> None:
        self.session = session
        self.reader = reader
        self.secrets = secrets
        self.merge = merge
        self.report = ImportReport(merge=merge)
        self.teams: dict[int, int] = {}
        self.new_teams: set[int] = set()
        self.clients: dict[int, int] = {}
        self.apis: dict[int, int | None] = {}  # None: refused, with what hangs on it
        self.outcomes: dict[int, ApiOutcome] = {}
        self.versions: dict[int, int | None] = {}  # None: already stored (or a conflict)
        self.consumers: dict[int, int | None] = {}

    def _count(self, table: Table | str, *, added: int = 0, kept: int = 0) -> None:
        name = table if isinstance(table, str) else table.name
        if added:
            self.report.added[name] = self.report.added.get(name, 0) + added
        if kept:
            self.report.kept[name] = self.report.kept.get(name, 0) + kept

    async def _insert(self, table: Table, values: dict[str, Any]) -> int:
        """Insert one row under a new id (ids of the source may be taken here); its id."""
        values = {k: v for k, v in values.items() if k != "id"}
        new_id = (await self.session.execute(insert(table).returning(table.c.id), values)).scalar_one()
        self._count(table, added=1)
        return int(new_id)

    async def _insert_many(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        for values in rows:
            batch.append(values)
            if len(batch) == BATCH:
                await self.session.execute(insert(table), batch)
                self._count(table, added=len(batch))
                batch = []
        if batch:
            await self.session.execute(insert(table), batch)
            self._count(table, added=len(batch))

    def _ref(self, mapping: dict[int, Any], old: int, what: str, table: str) -> Any:
        try:
            return mapping[old]
        except KeyError:
            raise BackupInvalid(
                f"tables/{table}.jsonl: refers to {what} id {old}, which the backup lacks"
            ) from None

    def _reseal(self, sealed: str | None, where: str) -> str | None:
        if sealed is None:
            return None
        try:
            return self.secrets.reseal(sealed)
        except SecretsKeyError:
            raise BackupInvalid(
                f"{where}: a webhook secret is sealed under a secrets key this server does not hold; "
                "add the source's key after this server's own in CHARTER_SECRETS_KEY and import again"
            ) from None

    async def run(self) -> ImportReport:
        await self._teams()
        await self._clients()
        await self._apis()
        await self._versions()
        await self._consumers()
        await self._access_requests()
        await self._scoped(LintRuleset)
        await self._scoped(DiffPolicy)
        await self._subscriptions()
        await self._audit_events()
        for old_id, outcome in self.outcomes.items():
            new_id = self.apis[old_id]
            if new_id is not None:
                api = await self.session.get(Api, new_id)
                assert api is not None
                await refresh_latest(self.session, api)
                await catalog.reindex(self.session, api)
            self.report.apis.append(outcome)
        return self.report

    async def _teams(self) -> None:
        table = Team.__table__
        for row in self.reader.rows("teams"):
            found = await self.session.scalar(select(Team.id).where(Team.name == row.name))
            if found is not None:
                self.teams[row.id] = found
                self._count(table, kept=1)
            else:
                self.teams[row.id] = await self._insert(table, _plain(row))
                self.new_teams.add(row.id)
        members = TeamMember.__table__
        for row in self.reader.rows("team_members"):
            team_id = self._ref(self.teams, row.team_id, "team", "team_members")
            if row.team_id not in self.new_teams and not self.merge:
                self._count(members, kept=1)
                continue
            if await self.session.get(TeamMember, (team_id, row.subject)) is not None:
                self._count(members, kept=1)
                continue
            await self._insert_many(members, [{"team_id": team_id, "subject": row.subject}])

    async def _clients(self) -> None:
        table = Client.__table__
        for row in self.reader.rows("clients"):
            if not row.secret_hash.startswith("scrypt$"):
                # Hashes only: a backup never carries, and an import never stores, a secret in clear.
                raise BackupInvalid(f"tables/clients.jsonl: client {row.client_id} has no scrypt secret hash")
            found = await self.session.scalar(select(Client.id).where(Client.client_id == row.client_id))
            if found is not None:
                self.clients[row.id] = found
                self._count(table, kept=1)
                continue
            team_id = self._ref(self.teams, row.team_id, "team", "clients")
            self.clients[row.id] = await self._insert(table, _plain(row, team_id=team_id))

    async def _apis(self) -> None:
        table = Api.__table__
        for row in self.reader.rows("apis"):
            found = await self.session.scalar(select(Api.id).where(Api.name == row.name))
            if found is not None and not self.merge:
                self.apis[row.id] = None
                self.outcomes[row.id] = ApiOutcome(
                    name=row.name,
                    outcome="refused",
                    reason="an API of this name is stored here; --merge adds its missing versions",
                )
                self._count(table, kept=1)
            elif found is not None:
                self.apis[row.id] = found
                self.outcomes[row.id] = ApiOutcome(name=row.name, outcome="merged")
                self._count(table, kept=1)
            else:
                owner_id = self._ref(self.teams, row.owner_id, "team", "apis")
                # The latest version is worked out again from the versions that are stored in the end.
                values = _plain(row, owner_id=owner_id, latest_version=None)
                self.apis[row.id] = await self._insert(table, values)
                self.outcomes[row.id] = ApiOutcome(name=row.name, outcome="imported")

    async def _versions(self) -> None:
        table = ApiVersion.__table__
        binary = [c.name for c in table.columns if is_binary(c)]
        for row in self.reader.rows("api_versions"):
            api_id = self._ref(self.apis, row.api_id, "API", "api_versions")
            if api_id is None:
                self.versions[row.id] = None
                self._count(table, kept=1)
                continue
            outcome = self.outcomes[row.api_id]
            stored = (
                await self.session.execute(
                    select(ApiVersion.fingerprint).where(
                        ApiVersion.api_id == api_id, ApiVersion.version == row.version
                    )
                )
            ).scalar_one_or_none()
            if stored is not None:
                self.versions[row.id] = None
                self._count(table, kept=1)
                if stored == row.fingerprint:
                    outcome.versions_present += 1
                else:
                    outcome.conflicts.append(
                        f"{row.version}: stored as {stored}, backup has {row.fingerprint}; kept as stored"
                    )
                continue
            where = f"version {outcome.name} {row.version}"
            blobs = {
                name: self.reader.blob(getattr(row, name), where=where)
                for name in binary
                if getattr(row, name) is not None
            }
            self.versions[row.id] = await self._insert(table, _plain(row, api_id=api_id, **blobs))
            outcome.versions_added += 1
        for model, name in ((VersionFile, "version_files"), (VersionScope, "version_scopes")):
            await self._insert_many(model.__table__, self._version_rows(name))  # type: ignore[arg-type]

    def _version_rows(self, table: str) -> Iterable[dict[str, Any]]:
        for row in self.reader.rows(table):
            version_id = self._ref(self.versions, row.version_id, "version", table)
            if version_id is None:
                self._count(table, kept=1)
                continue
            if table == "version_files":
                content = self.reader.blob(row.content, where=f"{table} {row.path}")
                yield _plain(row, version_id=version_id, content=content)
            else:
                yield _plain(row, version_id=version_id)

    async def _consumers(self) -> None:
        table = Consumer.__table__
        for row in self.reader.rows("consumers"):
            api_id = self._ref(self.apis, row.api_id, "API", "consumers")
            found = (
                await self.session.scalar(
                    select(Consumer.id).where(Consumer.api_id == api_id, Consumer.consumer == row.consumer)
                )
                if api_id is not None
                else None
            )
            if api_id is None or found is not None:
                self.consumers[row.id] = None
                self._count(table, kept=1)
                continue
            values = _plain(
                row,
                api_id=api_id,
                team_id=self._ref(self.teams, row.team_id, "team", "consumers"),
                webhook_secret_sealed=self._reseal(row.webhook_secret_sealed, f"consumer {row.consumer}"),
            )
            self.consumers[row.id] = await self._insert(table, values)

    async def _access_requests(self) -> None:
        table = AccessRequest.__table__
        for row in self.reader.rows("access_requests"):
            api_id = self._ref(self.apis, row.api_id, "API", "access_requests")
            client_id = self._ref(self.clients, row.client_id, "client", "access_requests")
            if api_id is None or await self.session.scalar(
                select(AccessRequest.id).where(
                    AccessRequest.api_id == api_id,
                    AccessRequest.client_id == client_id,
                    AccessRequest.requested_at == row.requested_at,
                )
            ):
                self._count(table, kept=1)
                continue
            await self._insert(table, _plain(row, api_id=api_id, client_id=client_id))

    async def _scoped(self, model: type[LintRuleset] | type[DiffPolicy]) -> None:
        table: Table = model.__table__  # type: ignore[assignment]
        for row in self.reader.rows(table.name):
            if await self.session.scalar(select(model.id).where(model.scope == row.scope)) is not None:
                self._count(table, kept=1)
                continue
            await self._insert(table, _plain(row))

    async def _subscriptions(self) -> None:
        table = WebhookSubscription.__table__
        for row in self.reader.rows("webhook_subscriptions"):
            team_id = self._ref(self.teams, row.team_id, "team", "webhook_subscriptions")
            found = await self.session.scalar(
                select(WebhookSubscription.id).where(
                    WebhookSubscription.team_id == team_id,
                    WebhookSubscription.url == row.url,
                    WebhookSubscription.created_at == row.created_at,
                )
            )
            if found is not None:
                self._count(table, kept=1)
                continue
            sealed = self._reseal(row.secret_sealed, f"webhook subscription {row.url}")
            await self._insert(table, _plain(row, team_id=team_id, secret_sealed=sealed))

    async def _audit_events(self) -> None:
        table = AuditEvent.__table__
        # Events stored before the import are the only ones an event of the backup may repeat.
        before = await self.session.scalar(select(func.max(AuditEvent.id)))

        async def fresh(row: Any) -> bool:
            if before is None:
                return True
            found = await self.session.scalar(
                select(AuditEvent.id).where(
                    AuditEvent.id <= before,
                    AuditEvent.at == row.at,
                    AuditEvent.actor == row.actor,
                    AuditEvent.action == row.action,
                    AuditEvent.subject == row.subject,
                )
            )
            return found is None

        batch: list[dict[str, Any]] = []
        for row in self.reader.rows("audit_events"):
            if not await fresh(row):
                self._count(table, kept=1)
                continue
            batch.append({k: v for k, v in _plain(row).items() if k != "id"})
            if len(batch) == BATCH:
                await self._insert_many(table, batch)
                batch = []
        await self._insert_many(table, batch)


IMPORTED = "registry.imported"


async def check_targets(reader: BackupReader, egress: EgressPolicy) -> None:
    """Refuse the backup if it binds an adapter a PUT would refuse, or names a URL the egress policy
    refuses. Run before the import takes the write lock: names are resolved here, as on a PUT."""
    targets: list[tuple[str, str]] = []
    for row in reader.rows("apis"):
        if row.adapter is None:
            continue
        where = f"tables/apis.jsonl: the adapter of {row.name}"
        try:
            msgspec.convert(row.adapter, AdapterIn)
        except msgspec.ValidationError as exc:
            raise BackupInvalid(f"{where} is not a binding this server accepts: {exc}") from None
        targets += [(f"{where} at {pointer}", url) for pointer, url in catalog.upstream_targets(row.adapter)]
    targets += [
        (f"tables/consumers.jsonl: the webhook of consumer {row.consumer}", row.webhook_url)
        for row in reader.rows("consumers")
        if row.webhook_url
    ]
    targets += [
        (f"tables/webhook_subscriptions.jsonl: subscription {row.id}", row.url)
        for row in reader.rows("webhook_subscriptions")
    ]
    try:
        await outbound.check_targets(egress, [url for _, url in targets])
    except outbound.TargetRefused as exc:
        where = next(where for where, url in targets if url == exc.url)
        raise BackupInvalid(f"{where}: the server will not call {exc.url}: {exc}") from None


async def restore(
    session: AsyncSession, reader: BackupReader, *, actor: str, secrets: SecretBox, merge: bool
) -> ImportReport:
    """Import the backup; the caller commits (or, on any error, the transaction is rolled back)."""
    await begin_write(session)
    try:
        report = await _Restore(session, reader, secrets, merge).run()
    except (IntegrityError, DataError) as exc:
        # Rows of the backup that contradict each other (a key twice) or a value no column holds: the
        # file was not made by an export. The transaction is rolled back by the caller.
        reason = " ".join(str(exc.orig or exc).split())[:300]
        raise BackupInvalid(f"the backup's rows cannot be stored together: {reason}") from None
    audit.record(
        session,
        actor=actor,
        action="registry.imported",
        subject="registry",
        after={
            "format_version": reader.manifest.format_version,
            "created_at": reader.manifest.created_at.isoformat(),
            "charter_version": reader.manifest.charter_version,
            "merge": merge,
            "added": report.added,
            "kept": report.kept,
            "apis": {a.name: a.outcome for a in report.apis},
            "conflicts": {a.name: a.conflicts for a in report.apis if a.conflicts},
        },
    )
    # Every replica's caches (routes, event contracts) are stale after an import: each one that hears
    # this reloads them whole.
    imported = sorted(a.name for a in report.apis if a.outcome != "refused")
    audit.emit(session, IMPORTED, {"apis": imported, "merge": merge})
    return report
