"""Caches that follow the registry's announcements: a change reloads them in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from registry.events import Event


class CoalescingReload:
    """Runs `reload` in the background when the registry announces a change. Announcements that arrive
    while a reload runs are folded into one more reload, never queued one by one (a burst of publishes
    costs two reloads, not one per publish); a reload that fails leaves what was loaded before."""

    def __init__(
        self, reload: Callable[[], Awaitable[None]], *, name: str, log: logging.Logger, failure: str
    ) -> None:
        self._reload = reload
        self._name = name
        self._log = log
        self._failure = failure
        self._task: asyncio.Task[None] | None = None
        self._again = False

    async def on_event(self, event: Event) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self._reload()
            except Exception:
                self._log.exception(self._failure)
            if not self._again:
                return

    async def wait(self) -> None:
        """For tests and shutdown: let a running reload finish."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
