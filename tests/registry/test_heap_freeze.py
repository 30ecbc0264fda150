"""A server moves what start-up made out of the garbage collector's sight; apps built in code do not."""

from __future__ import annotations

import gc

from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.settings import Settings
from tests.registry.support import make_settings


def test_servers_freeze_the_start_up_heap_and_apps_built_in_code_do_not():
    assert Settings.from_env({}).gc_freeze is True
    assert Settings.from_env({"CHARTER_GC_FREEZE": "0"}).gc_freeze is False
    assert Settings().gc_freeze is False


async def test_a_started_app_has_frozen_its_heap(tmp_path):
    gc.unfreeze()
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/charter.db", gc_freeze=True)
    try:
        async with AsyncTestClient(create_app(settings)) as client:
            assert (await client.get("/health")).status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # the rest of the suite's apps come and go in this process
