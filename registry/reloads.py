"""Caches that follow the registry's announcements: a change reloads them (or the parts of them it
changed) in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from registry.events import Event


class ScopedReload:
    """Runs `reload` in the background when the registry announces a change, for a cache of named parts
    (the gateway's routes, one part per API): `scope(event)` says which parts an announcement changed,
    and `reload(names)` reloads those alone. A cache that is reloaded whole scopes every announcement
    to None.

    Announcements that arrive while a reload runs are folded into one more reload, never queued one by
    one (a burst of publishes costs two reloads, not one per publish); their names are gathered into
    it. An announcement whose scope is None (it changed something unnamed), a call to `resync` (a bus
    that lost announcements: after a gap everything may be stale) and a reload that failed make the
    next reload a full one, `reload(None)`; a failed reload leaves what was loaded before. An empty
    scope reloads nothing.
    """

    def __init__(
        self,
        reload: Callable[[frozenset[str] | None], Awaitable[None]],
        *,
        scope: Callable[[Event], frozenset[str] | None],
        name: str,
        log: logging.Logger,
        failure: str,
    ) -> None:
        self._reload = reload
        self._scope = scope
        self._name = name
        self._log = log
        self._failure = failure
        self._task: asyncio.Task[None] | None = None
        self._names: set[str] = set()
        self._everything = False

    async def on_event(self, event: Event) -> None:
        names = self._scope(event)
        if names is None:
            self._everything = True
        elif names:
            self._names |= names
        else:
            return
        self._start()

    def resync(self) -> None:
        """Reload everything (soon): announcements may have been lost."""
        self._everything = True
        self._start()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while self._everything or self._names:
            names = None if self._everything else frozenset(self._names)
            self._everything, self._names = False, set()
            try:
                await self._reload(names)
            except Exception:
                self._log.exception(self._failure)
                announced_meanwhile = bool(self._everything or self._names)
                # What was loaded before stays; which parts of it are stale is no longer known.
                self._everything = True
                if not announced_meanwhile:
                    return

    async def wait(self) -> None:
        """For tests and shutdown: let a running reload finish."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
