"""Secrets the registry must be able to use again (webhook signing secrets) are stored encrypted.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under keys from the settings: a database
dump, a backup or a read-only SQL account then shows no usable secret. Several keys make a
MultiFernet: secrets open under any of them and are sealed under the first, so a key is rotated by
putting a new one in front and starting once (every stored secret is sealed again under it), then
dropping the old one.

Where the keys come from, in order: `CHARTER_SECRETS_KEY` (comma-separated), `CHARTER_SECRETS_KEY_FILE`
(one key a line, created with a new key if missing), else a key file beside the SQLite database,
created on first start, like the database itself. A server database (PostgreSQL) gets no such
default: every replica must use the same key, so it must be given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.db.engine import begin_write
from registry.db.models import Consumer, WebhookSubscription
from registry.settings import Settings


class SecretsKeyError(ValueError):
    """The secrets keys are missing, malformed, or do not open what is stored: the server must not start."""


class SecretBox:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretsKeyError("no secrets key is configured")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError:
            raise SecretsKeyError(
                "a secrets key must be 32 url-safe base64-encoded bytes, as Fernet.generate_key() makes"
            ) from None
        self.key_count = len(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secrets_key:
            return cls(_keys(settings.secrets_key.replace(",", "\n")))
        if settings.secrets_key_file:
            return cls(_load_or_create(Path(settings.secrets_key_file)))
        url = make_url(settings.database_url)
        if url.get_backend_name() != "sqlite":
            raise SecretsKeyError(
                "set CHARTER_SECRETS_KEY or CHARTER_SECRETS_KEY_FILE: with a server database every "
                "replica must use the same key to read webhook secrets"
            )
        if not url.database or url.database == ":memory:":
            return cls([Fernet.generate_key()])  # the secrets die with the in-memory database
        database = Path(url.database)
        return cls(_load_or_create(database.with_name(database.name + ".key")))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise SecretsKeyError(_WRONG_KEY) from None

    def reseal(self, sealed: str) -> str:
        """The secret sealed under the first key (opened under any)."""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretsKeyError(_WRONG_KEY) from None


_WRONG_KEY = (
    "the configured secrets keys cannot open the stored webhook secrets: the key was changed or lost "
    "(to rotate, list the new key first and keep the old one after it)"
)


async def check_stored_secrets(sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
    """At start: every stored secret must open (a wrong key stops the server here, instead of signing
    deliveries with garbage later); with more than one key, each is sealed again under the first."""
    async with sessionmaker() as session:
        if box.key_count > 1:
            await begin_write(session)
        sealed = select(Consumer).where(Consumer.webhook_secret_sealed.is_not(None))
        for row in (await session.scalars(sealed)).all():
            assert row.webhook_secret_sealed is not None
            if box.key_count > 1:
                row.webhook_secret_sealed = box.reseal(row.webhook_secret_sealed)
            else:
                box.open(row.webhook_secret_sealed)
        for subscription in (await session.scalars(select(WebhookSubscription))).all():
            if box.key_count > 1:
                subscription.secret_sealed = box.reseal(subscription.secret_sealed)
            else:
                box.open(subscription.secret_sealed)
        await session.commit()


def _keys(text: str) -> list[bytes]:
    return [line.strip().encode("ascii") for line in text.splitlines() if line.strip()]


def _load_or_create(path: Path) -> list[bytes]:
    if not path.exists():
        # Written aside and linked into place: two processes starting on one database at once both
        # end up with the key that was linked first, never with a half-written file.
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(Fernet.generate_key() + b"\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    keys = _keys(path.read_text())
    if not keys:
        raise SecretsKeyError(f"{path} holds no secrets key")
    return keys
