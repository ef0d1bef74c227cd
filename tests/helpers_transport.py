"""Helpers for transport tests: a recorder of emitted events that can wait for the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rtlayer.transport import EventEmitter


class Recorder:
    """Everything a transport emitted, by name, plus a way to wait for the next one of a kind."""

    def __init__(self, transport: EventEmitter, names: tuple[str, ...]) -> None:
        self.events: dict[str, list[Any]] = {n: [] for n in names}
        self._waiters: dict[str, list[asyncio.Future[Any]]] = {}
        for name in names:
            transport.add_listener(name, self._listener(name))

    def _listener(self, name: str) -> Callable[[Any], None]:
        def record(payload: Any) -> None:
            self.events[name].append(payload)
            for fut in self._waiters.pop(name, []):
                if not fut.done():
                    fut.set_result(payload)

        return record

    async def first(self, name: str, within: float = 10.0) -> Any:
        """The first ``name`` event, already received or still to come."""
        if self.events[name]:
            return self.events[name][0]
        return await self.next(name, within)

    async def nth(self, name: str, n: int, within: float = 10.0) -> Any:
        """The ``n``-th (from 0) ``name`` event, already received or still to come."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.events[name]) <= n:
            await self.next(name, max(0.01, deadline - loop.time()))
        return self.events[name][n]

    async def next(self, name: str, within: float = 10.0) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(name, []).append(fut)
        return await asyncio.wait_for(fut, within)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events.get("*", [])]
