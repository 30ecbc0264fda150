"""The issuer's keys as stored: a reload opens only keys it has not opened before."""

from __future__ import annotations

from registry import signing_keys
from registry.db.engine import create_engine, migrate, session_factory
from registry.secret_box import SecretBox
from tests.registry.support import make_settings


async def test_a_reload_reuses_the_keys_it_already_opened(tmp_path):
    database_url = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    box = SecretBox.from_settings(make_settings(database_url))
    engine = create_engine(database_url)
    try:
        await migrate(engine, box)
        sessionmaker = session_factory(engine)
        opened: dict = {}
        first = await signing_keys.load_ring(sessionmaker, box, token_lifetime=3600, opened=opened)
        again = await signing_keys.load_ring(sessionmaker, box, token_lifetime=3600, opened=opened)
        assert again.signing is first.signing

        await signing_keys.rotate(sessionmaker, box, actor="test")
        rotated = await signing_keys.load_ring(sessionmaker, box, token_lifetime=3600, opened=opened)
        assert rotated.kids[1] == first.kids[0] and rotated.keys[1] is first.signing
        assert rotated.signing is not first.signing
        assert len(opened) == 2  # keys that left the ring leave the cache too

        fresh = await signing_keys.load_ring(sessionmaker, box, token_lifetime=3600)
        assert fresh.kids == rotated.kids and fresh.signing is not rotated.signing
    finally:
        await engine.dispose()
