"""Assertions over the events a session saw: what a voice app's tests want to say in one line.

They take the raw server events (dicts, in order) that a transport's ``*`` listener received, or that an
``EventLog`` recorded, and raise ``AssertionError`` with what was seen instead when the claim is false:

```python
log = EventLog.of(transport)
...
assert_turn_answered(log, transcript_contains="sunny")
assert_tool_called(log, "get_weather", {"city": "Paris"})
assert_truncated_at(log, 1200, tolerance_ms=40)
```
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["EventLog", "assert_tool_called", "assert_truncated_at", "assert_turn_answered"]


class EventLog:
    """The raw server events of one session, in order; iterable, and awaitable for the next one of a type."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    @classmethod
    def of(cls, transport: Any) -> EventLog:
        """A log of everything ``transport`` (any rtlayer transport) emits as ``*`` from now on."""
        log = cls()
        transport.on("*", log.append)
        return log

    def append(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def types(self) -> list[str]:
        return [str(e.get("type")) for e in self.events]

    async def wait_for(self, kind: str, *, count: int = 1, within: float = 10.0) -> dict[str, Any]:
        """The ``count``-th event of type ``kind``, waiting up to ``within`` seconds for it."""
        async with asyncio.timeout(within):
            while True:
                seen = self.of_type(kind)
                if len(seen) >= count:
                    return seen[count - 1]
                self._changed.clear()
                await self._changed.wait()


def _texts(response: Mapping[str, Any]) -> list[str]:
    texts = []
    for item in response.get("output") or []:
        for part in item.get("content") or []:
            text = part.get("transcript") or part.get("text")
            if isinstance(text, str):
                texts.append(text)
    return texts


def _summary(events: list[dict[str, Any]]) -> str:
    kinds = [str(e.get("type")) for e in events]
    return ", ".join(kinds[-30:]) or "no events"


def assert_turn_answered(
    events: Iterable[dict[str, Any]], *, transcript_contains: str | None = None
) -> dict[str, Any]:
    """A response completed with an answer (speech or text, optionally containing this text, case
    ignored); returns its ``response.done`` event (the last such)."""
    seen = list(events)
    answered = [
        e
        for e in seen
        if e.get("type") == "response.done"
        and e.get("response", {}).get("status") == "completed"
        and _texts(e["response"])
    ]
    if transcript_contains is not None:
        needle = transcript_contains.lower()
        answered = [e for e in answered if any(needle in t.lower() for t in _texts(e["response"]))]
    if not answered:
        said = [t for e in seen if e.get("type") == "response.done" for t in _texts(e.get("response", {}))]
        wanted = f" containing {transcript_contains!r}" if transcript_contains is not None else ""
        raise AssertionError(f"no completed answer{wanted}; answers: {said!r}; events: {_summary(seen)}")
    return answered[-1]


def assert_tool_called(
    events: Iterable[dict[str, Any]], name: str, arguments: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The model called ``name`` (with exactly these arguments, when given); returns the call item."""
    seen = list(events)
    calls = [
        e["item"]
        for e in seen
        if e.get("type") == "response.output_item.done" and e.get("item", {}).get("type") == "function_call"
    ]
    for call in calls:
        if call.get("name") != name:
            continue
        if arguments is None:
            return dict(call)
        try:
            if json.loads(call.get("arguments") or "{}") == dict(arguments):
                return dict(call)
        except ValueError:
            continue
    made = [(c.get("name"), c.get("arguments")) for c in calls]
    raise AssertionError(f"no call of {name!r} with {dict(arguments or {})!r}; calls made: {made!r}")


def assert_truncated_at(
    events: Iterable[dict[str, Any]], audio_end_ms: int, *, tolerance_ms: int = 0
) -> dict[str, Any]:
    """An answer was cut at ``audio_end_ms`` (± ``tolerance_ms``): the server's
    ``conversation.item.truncated``; returns it."""
    seen = list(events)
    truncated = [e for e in seen if e.get("type") == "conversation.item.truncated"]
    for event in truncated:
        if abs(int(event.get("audio_end_ms", -1)) - audio_end_ms) <= tolerance_ms:
            return event
    at = [e.get("audio_end_ms") for e in truncated]
    raise AssertionError(f"no truncation at {audio_end_ms} ms (± {tolerance_ms}); truncations at: {at!r}")
