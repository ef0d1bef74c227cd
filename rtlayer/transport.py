"""The contract every rtlayer transport satisfies, its event emitter and its typed events.

A transport (WebSocket, WebRTC, SIP, fetch-upgrade, ...) carries the Realtime protocol over one medium and
tells the app what happens through named events, like the OpenAI Agents JS SDK's ``RealtimeTransportLayer``:

- ``*``: every raw server event (a dict, untouched, unknown types included);
- each server event type under its own name (``response.done`` -> the raw dict);
- convenience events derived from them, as the small frozen dataclasses below: ``audio``, ``audio_done``,
  ``audio_interrupted``, ``audio_transcript_delta``, ``output_text_delta``, ``turn_started``, ``turn_done``,
  ``function_call``, ``item_update``, ``item_deleted``, ``usage_update``, ``dtmf`` (a key pressed on a SIP
  call), ``input_audio_timeout`` (the user stayed silent for ``idle_timeout_ms``), ``error``,
  ``connection_change``.

Raw events stay dicts on purpose: validating each one into a model is what makes the anchors slow.
The typed events live in ``rtlayer.transport_events`` and are re-exported here.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from ._event_names import Subscribe
from .transport_events import (
    TRANSPORT_EVENT_NAMES,
    AudioDoneEvent,
    AudioEvent,
    AudioInterruptedEvent,
    ConnectionChangeEvent,
    DtmfEvent,
    ErrorEvent,
    FunctionCallEvent,
    InputAudioTimeoutEvent,
    ItemDeletedEvent,
    ItemUpdateEvent,
    OutputTextDeltaEvent,
    TranscriptDeltaEvent,
    TransportStatus,
    TurnDoneEvent,
    TurnStartedEvent,
    Usage,
)

__all__ = [
    "TRANSPORT_EVENT_NAMES",
    "AudioDoneEvent",
    "AudioEvent",
    "AudioInterruptedEvent",
    "ConnectionChangeEvent",
    "DtmfEvent",
    "ErrorEvent",
    "EventEmitter",
    "EventStream",
    "FunctionCallEvent",
    "InputAudioTimeoutEvent",
    "ItemDeletedEvent",
    "ItemUpdateEvent",
    "Listener",
    "OutputTextDeltaEvent",
    "RealtimeTransportLayer",
    "TranscriptDeltaEvent",
    "TransportStatus",
    "TurnDoneEvent",
    "TurnStartedEvent",
    "Usage",
    "WireConnection",
]

logger = logging.getLogger("rtlayer.transport")


# ---------------------------------------------------------------------------------------------------------
# The emitter

Listener = Callable[[Any], Any]


_T = TypeVar("_T")


class EventStream(Generic[_T]):
    """An async iterator over some of an emitter's events; ends when the emitter closes.

    Bounded: when the consumer falls more than ``maxsize`` events behind, the oldest are dropped and
    counted in ``dropped`` (a slow consumer must not grow memory without limit).
    """

    _END = object()

    def __init__(self, emitter: EventEmitter, names: tuple[str, ...], maxsize: int) -> None:
        self._emitter = emitter
        self._names = names
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.dropped = 0
        self._closed = False
        for name in names:
            emitter.add_listener(name, self._put)

    def _put(self, payload: Any) -> None:
        if self._closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(payload)

    def _end(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in self._names:
            self._emitter.remove_listener(name, self._put)
        if not self._queue.full():  # wakes a waiting consumer; a full queue needs no wake-up (nor a drop)
            self._queue.put_nowait(self._END)

    def aclose_now(self) -> None:
        """Stops the stream (the consumer's ``async for`` ends after what is queued)."""
        self._end()
        self._emitter._streams.discard(self)

    def __aiter__(self) -> EventStream[_T]:
        return self

    async def __anext__(self) -> _T:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is self._END:
            raise StopAsyncIteration
        payload: _T = item
        return payload


class EventEmitter:
    """``on``/``off``/``once``/``emit`` by event name, ``*`` included, plus ``events()`` as an async iterator.

    ``on``, ``once`` and ``off`` are typed by event name for the type checker (``on("audio", f)`` checks
    ``f`` takes an ``AudioEvent``; an unknown name is an error); ``add_listener``, ``add_listener_once`` and
    ``remove_listener`` are the same calls for names known only at run time.

    A listener that raises is logged and reported as an ``error`` event; it never breaks the transport's
    receive loop. A listener may be a coroutine function: its coroutine runs as a task the emitter tracks
    (and cancels at ``close_listeners()``).
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._streams: set[EventStream[Any]] = set()
        self._listener_tasks: set[asyncio.Task[Any]] = set()

    if TYPE_CHECKING:
        # Typed by name (``on("audio", ...)`` hands an ``AudioEvent``): see ``rtlayer._event_names``.
        on: Subscribe
        once: Subscribe
        off: Subscribe

    def add_listener(self, name: str, listener: Listener) -> Listener:
        """Calls ``listener(payload)`` for each ``name`` event; returns the listener (``on`` is this, typed
        by event name; this form takes any name, for names known only at run time)."""
        self._listeners.setdefault(name, []).append(listener)
        return listener

    def remove_listener(self, name: str, listener: Listener) -> Listener:
        """Removes one registration of ``listener`` (no error when it was not registered); ``off``, untyped."""
        listeners = self._listeners.get(name)
        if listeners and listener in listeners:
            listeners.remove(listener)
            if not listeners:
                del self._listeners[name]
        return listener

    def add_listener_once(self, name: str, listener: Listener) -> Listener:
        """Like ``add_listener``, for the next ``name`` event only (``once``, untyped)."""

        def wrapper(payload: Any) -> Any:
            self.remove_listener(name, wrapper)
            return listener(payload)

        return self.add_listener(name, wrapper)

    if not TYPE_CHECKING:
        # Calls through (not aliases), so that a subclass overriding ``add_listener`` (to forward events it
        # would otherwise not produce) sees every registration.

        def on(self, name: str, listener: Listener) -> Listener:
            return self.add_listener(name, listener)

        def once(self, name: str, listener: Listener) -> Listener:
            return self.add_listener_once(name, listener)

        def off(self, name: str, listener: Listener) -> Listener:
            return self.remove_listener(name, listener)

    def has_listeners(self, name: str) -> bool:
        return name in self._listeners

    def emit(self, name: str, payload: Any = None) -> None:
        listeners = self._listeners.get(name)
        if not listeners:
            return
        if len(listeners) == 1:  # the common case, without copying the list
            listener = listeners[0]
            try:
                result = listener(payload)
            except Exception as exc:
                self._listener_failed(name, exc)
                return
            if result is not None and inspect.isawaitable(result):
                self._track(result, name)
            return
        for listener in tuple(listeners):
            try:
                result = listener(payload)
            except Exception as exc:
                self._listener_failed(name, exc)
                continue
            if result is not None and inspect.isawaitable(result):
                self._track(result, name)

    def _track(self, awaitable: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(awaitable)
        self._listener_tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._listener_tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                self._listener_failed(name, exc)

        task.add_done_callback(done)

    def _listener_failed(self, name: str, exc: BaseException) -> None:
        logger.error("listener for %r raised %s: %s", name, type(exc).__name__, exc)
        if name != "error":
            self.emit(
                "error",
                ErrorEvent(
                    f"listener for {name!r} raised {type(exc).__name__}: {exc}",
                    "listener_error",
                    exception=exc,
                ),
            )

    def events(self, names: Iterable[str] = ("*",), maxsize: int = 10_000) -> EventStream[Any]:
        """An async iterator over the payloads of the ``names`` events (default: every raw server event).

        It ends when the transport closes; ``async for event in transport.events(): ...``.
        """
        stream: EventStream[Any] = EventStream(self, tuple(names), maxsize)
        self._streams.add(stream)
        return stream

    async def _drain_listener_tasks(self) -> None:
        tasks = list(self._listener_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def close_listeners(self) -> None:
        """Ends every ``events()`` iterator (listeners registered with ``on`` stay)."""
        for stream in list(self._streams):
            stream._end()
        self._streams.clear()


# ---------------------------------------------------------------------------------------------------------
# The contracts


@runtime_checkable
class WireConnection(Protocol):
    """One message-oriented connection, shaped like ``websockets.asyncio.client.ClientConnection``.

    ``recv()`` raises ``websockets.ConnectionClosed`` at the end. ``BaseRealtimeTransport._open`` returns one;
    the fetch-upgrade transport implements it over an httpx-upgraded stream.
    """

    close_code: int | None

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def ping(self) -> Awaitable[float]: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@runtime_checkable
class RealtimeTransportLayer(Protocol):
    """What every transport offers (snake_case names of the JS SDK's ``RealtimeTransportLayer``)."""

    @property
    def status(self) -> TransportStatus: ...

    @property
    def muted(self) -> bool | None: ...

    on: Subscribe
    once: Subscribe
    off: Subscribe

    def add_listener(self, name: str, listener: Listener) -> Listener: ...

    def remove_listener(self, name: str, listener: Listener) -> Listener: ...

    def events(self, names: Iterable[str] = ("*",), maxsize: int = 10_000) -> AsyncIterator[Any]: ...

    async def connect(
        self,
        url: str | None = None,
        api_key: str | Callable[[], str | Awaitable[str]] | None = None,
        model: str | None = None,
        call_id: str | None = None,
        initial_session_config: Mapping[str, Any] | None = None,
    ) -> None: ...

    def send_event(self, event: Mapping[str, Any]) -> None: ...

    def send_message(
        self,
        message: str | Mapping[str, Any],
        other_event_data: Mapping[str, Any] | None = None,
        *,
        trigger_response: bool = True,
    ) -> None: ...

    def add_image(self, image: str, *, trigger_response: bool = True) -> None: ...

    async def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None: ...

    def update_session_config(self, config: Mapping[str, Any]) -> None: ...

    def send_function_call_output(
        self, call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None: ...

    def request_response(self, response: Mapping[str, Any] | None = None) -> None: ...

    def interrupt(self, cancel_ongoing_response: bool = True) -> None: ...

    def mute(self, muted: bool) -> None: ...

    def reset_history(self, old_history: list[dict[str, Any]], new_history: list[dict[str, Any]]) -> None: ...

    async def close(self) -> None: ...
