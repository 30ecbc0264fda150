"""The built-in issuer's signing keys, kept in the registry's database: every replica signs with the
same key and publishes the same JWKS, so a token issued by one is accepted by all.

Private keys are stored sealed with the secret box (CHARTER_SECRETS_KEY). The key of the highest
generation signs. An older key stays published, and accepted, until every token it may have signed
has expired: its retirement, plus the token lifetime, plus a grace covering the replicas that go on
signing with it until they next reload and the verifiers' clock leeway. The first key is made by
whichever replica inserts generation 1 first; the generation is the primary key, so a replica that
starts at the same moment fails its insert and reads the winner's key. `charter keys rotate` adds
the next generation the same way and announces it (`signing-key.rotated`); a replica that misses the
announcement meets the new key when a token names it, and reloads every RELOAD_SECONDS anyway.

CHARTER_SIGNING_KEY_FILE, when set, wins: the key in that file signs and the database keeps none.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

import msgspec
from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policies.auth import ClientCredentialsIssuer, KeyRing, generate_signing_key, import_signing_key
from registry import audit
from registry.db.engine import begin_write
from registry.db.models import SigningKey, utcnow
from registry.events import Event
from registry.secret_box import SecretBox, SecretsKeyError

log = logging.getLogger("charter.auth")

RELOAD_SECONDS = 30
# A replica signs with a retired key for up to RELOAD_SECONDS after the rotation; verifiers allow
# 30 s of clock leeway; the rest is margin for clocks that disagree.
GRACE_SECONDS = 2 * RELOAD_SECONDS + 60
ROTATED = "signing-key.rotated"


class RotationConflict(Exception):
    """Another rotation committed the same generation first: nothing was changed by this one."""


class StoredKey(msgspec.Struct, frozen=True):
    generation: int
    kid: str
    created_at: dt.datetime
    retired_at: dt.datetime | None
    state: str  # signing | published (retired, tokens it signed may live) | expired


async def load_ring(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    *,
    token_lifetime: int,
    opened: dict[str, RSAKey] | None = None,
) -> KeyRing:
    """The keys in force, the first one made if there is none yet. `opened` keeps keys already
    unsealed and imported by their sealed text: a reload then opens only keys new to it."""
    rows = await _rows(sessionmaker)
    if not rows:
        await _create_first(sessionmaker, box)
        rows = await _rows(sessionmaker)
    now = utcnow()
    signing, *older = rows
    in_force = [signing, *(row for row in older if _published(row, now, token_lifetime))]
    keys = {row.sealed_key: _open(box, row, opened) for row in in_force}
    if opened is not None:
        opened.clear()
        opened.update(keys)
    return KeyRing(keys[signing.sealed_key], [keys[row.sealed_key] for row in in_force[1:]])


async def rotate(sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox, *, actor: str) -> StoredKey:
    """Make a new signing key; the one it replaces stays published until its tokens have expired."""
    key = await asyncio.to_thread(generate_signing_key)
    async with sessionmaker() as session:
        await begin_write(session)
        current = await session.scalar(select(SigningKey).order_by(SigningKey.generation.desc()).limit(1))
        if current is not None:
            _open(box, current)  # a secrets key the replicas cannot open would seal the new key for nobody
        now = utcnow()
        row = SigningKey(
            generation=(current.generation + 1) if current else 1,
            kid=str(key.kid),
            sealed_key=box.seal(key.as_pem(private=True).decode("ascii")),
            created_at=now,
        )
        session.add(row)
        if current is not None:
            current.retired_at = now
        record = {"generation": row.generation, "kid": row.kid, "replaces": current.kid if current else None}
        audit.record(session, actor=actor, action=ROTATED, subject="signing-keys", after=record)
        audit.emit(session, ROTATED, record)
        try:
            await session.commit()
        except IntegrityError:
            raise RotationConflict(
                f"another rotation made generation {row.generation} at the same time; nothing was changed"
            ) from None
    return StoredKey(row.generation, row.kid, row.created_at, None, "signing")


async def stored_keys(
    sessionmaker: async_sessionmaker[AsyncSession], *, token_lifetime: int
) -> list[StoredKey]:
    """Every stored key, newest first, with whether it still signs, is still published, or expired."""
    rows = await _rows(sessionmaker)
    now = utcnow()
    return [
        StoredKey(
            row.generation,
            row.kid,
            row.created_at,
            row.retired_at,
            "signing" if index == 0 else "published" if _published(row, now, token_lifetime) else "expired",
        )
        for index, row in enumerate(rows)
    ]


async def reseal(sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
    """After a secrets-key rotation (several keys configured): seal every stored key under the first."""
    async with sessionmaker() as session:
        await begin_write(session)
        for row in (await session.scalars(select(SigningKey))).all():
            try:
                row.sealed_key = box.reseal(row.sealed_key)
            except SecretsKeyError:
                raise SecretsKeyError(_WRONG_KEY) from None
        await session.commit()


class IssuerKeys:
    """Keeps an issuer's key ring in step with the keys in the database."""

    def __init__(
        self,
        issuer: ClientCredentialsIssuer,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
        *,
        token_lifetime: int,
    ) -> None:
        self._issuer = issuer
        self._sessionmaker = sessionmaker
        self._box = box
        self._token_lifetime = token_lifetime
        self._lock = asyncio.Lock()
        # Unsealing and importing a PEM costs milliseconds; every replica reloads every 30 s.
        self._opened: dict[str, RSAKey] = {}

    async def load(self) -> None:
        """At start: the keys must open (a wrong secrets key stops the server here)."""
        if self._box.key_count > 1:
            await reseal(self._sessionmaker, self._box)
        ring = await load_ring(
            self._sessionmaker, self._box, token_lifetime=self._token_lifetime, opened=self._opened
        )
        self._issuer.use_keys(ring, refresh=self.reload)

    async def reload(self) -> None:
        """Read the keys again; on failure the keys in use stay."""
        async with self._lock:
            try:
                ring = await load_ring(
                    self._sessionmaker, self._box, token_lifetime=self._token_lifetime, opened=self._opened
                )
            except Exception:
                log.exception("reloading the signing keys failed; the keys in use stay")
                return
            if ring.kids != self._issuer.keys.kids:
                log.info("signing keys now %s (%s signs)", ", ".join(ring.kids), ring.kids[0])
            self._issuer.use_keys(ring)

    async def on_event(self, event: Event) -> None:
        await self.reload()

    async def follow(self, every: float = RELOAD_SECONDS) -> None:
        """Reload forever: retired keys leave the JWKS on time, and a missed rotation is caught up."""
        while True:
            await asyncio.sleep(every)
            await self.reload()


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[SigningKey]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(SigningKey).order_by(SigningKey.generation.desc()))).all())


async def _create_first(sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
    key = await asyncio.to_thread(generate_signing_key)
    async with sessionmaker() as session:
        await begin_write(session)
        if await session.scalar(select(SigningKey.generation).limit(1)) is not None:
            return  # made by another process since we looked (SQLite: the write lock serialised us)
        session.add(
            SigningKey(
                generation=1, kid=str(key.kid), sealed_key=box.seal(key.as_pem(private=True).decode("ascii"))
            )
        )
        # Another replica inserted generation 1 first: its key is the one.
        with contextlib.suppress(IntegrityError):
            await session.commit()


def _published(row: SigningKey, now: dt.datetime, token_lifetime: int) -> bool:
    if row.retired_at is None:
        return True
    return now < row.retired_at + dt.timedelta(seconds=token_lifetime + GRACE_SECONDS)


def _open(box: SecretBox, row: SigningKey, opened: dict[str, RSAKey] | None = None) -> RSAKey:
    if opened is not None and row.sealed_key in opened:
        return opened[row.sealed_key]
    try:
        return import_signing_key(box.open(row.sealed_key).encode("ascii"))
    except SecretsKeyError:
        raise SecretsKeyError(_WRONG_KEY) from None


_WRONG_KEY = (
    "the configured secrets keys cannot open the stored signing keys: the key was changed or lost "
    "(to rotate, list the new key first and keep the old one after it)"
)


async def prune_expired(
    sessionmaker: async_sessionmaker[AsyncSession], *, token_lifetime: int, now: dt.datetime
) -> int:
    """Delete the private keys no live token can name: sealed or not, a key kept is a key to steal.
    The newest generation stays even if retired long ago, so generations never go back."""
    async with sessionmaker() as session:
        await begin_write(session)
        rows = (await session.scalars(select(SigningKey).order_by(SigningKey.generation.desc()))).all()
        expired = [row for row in rows[1:] if not _published(row, now, token_lifetime)]
        for row in expired:
            await session.delete(row)
            audit.record(
                session,
                actor="charter",
                action="signing-key.pruned",
                subject="signing-keys",
                before={"generation": row.generation, "kid": row.kid},
            )
        await session.commit()
    return len(expired)
