"""``MediaStreamTransport``: a phone call from a provider's media stream, bridged to a Realtime model.

```python
async def media_stream(ws):                       # the provider connected to the app's WebSocket endpoint
    transport = TwilioMediaStreamTransport(ws)    # an aiohttp, Starlette or websockets socket
    transport.on("dtmf", lambda e: print("pressed", e.digit))
    await transport.connect(initial_session_config={"instructions": "..."})   # waits for the call's start
    print(transport.call.call_id, transport.call.custom_parameters)
    await transport.wait_closed()                 # until the caller or the model hangs up
```

It satisfies ``RealtimeTransportLayer``: the app (or ``RtlayerRealtimeModel``) uses it like any transport,
and every event of the transport to the model (``*``, each server event type, the typed events) is re-emitted
here, plus ``call_start`` (``CallStart``), ``dtmf`` (``DtmfEvent``), ``call_stop`` and ``provider_problem``.

Audio. The model's session is pinned to one format: ``audio/pcmu`` for a mu-law provider (passthrough, no
sample touched), ``audio/pcma`` for an A-law one, else PCM16 24 kHz converted by the native transcoders. Every
``session.update`` that leaves (the initial config, ``update_session_config``, a raw ``send_event``, an agents
handoff) has its audio formats rewritten to that one (counted in ``format_pins``), so nothing can switch the
model to a format the provider does not speak. The model's audio is cut into the provider's frames, paced by
``OutboundAudio`` and followed by playback markers; a barge-in (the model's ``speech_started`` while audio
plays, or ``interrupt()``) sends the provider's clear, cancels the response, truncates the playing item at what
the provider acknowledged as played, truncates later items in flight to zero, and ignores the markers the
provider returns for the cleared audio.

The model's side is the WebSocket transport unless ``model_transport`` names another (``rtlayer bridge
--transport``): ``FetchUpgradeTransport``, or ``WebRTCTransport``, whose audio arrives at real time on an RTP
track and whose server cuts an interrupted item at what it streamed; the truncate that follows it says what
the provider acknowledged, as on the socket transports.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from array import array
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ...audio import PCM16_24K, AudioFormat, PlaybackTracker
from ...client.session import ClientSession
from ...exceptions import ConnectionClosedError, LocalProtocolError
from ...transport import AudioEvent, AudioInterruptedEvent, ConnectionChangeEvent, Listener, TransportStatus
from .._shell import ClientShell
from .bridge import InboundAudio, OutboundAudio
from .dialects import Dialect, dialect_for
from .events import (
    CallStart,
    CallStop,
    ClearConfirmed,
    DtmfEvent,
    MediaIn,
    PlaybackAck,
    ProviderEvent,
    ProviderProblem,
)
from .sockets import ProviderSocket, adapt_socket

if TYPE_CHECKING:
    from ...server.responders import Responder

__all__ = [
    "CallControl",
    "ExotelMediaStreamTransport",
    "MediaStreamTransport",
    "ModelTransportFactory",
    "PlivoMediaStreamTransport",
    "TelnyxMediaStreamTransport",
    "TwilioMediaStreamTransport",
    "VonageMediaStreamTransport",
]

logger = logging.getLogger("rtlayer.transports.media_stream")

#: events this transport emits itself (never forwarded from the model's transport)
_OWN_EVENTS = frozenset({"call_start", "dtmf", "call_stop", "provider_problem"})


class ModelTransportFactory(Protocol):
    """Builds the transport to the model (``WebSocketTransport`` and ``FetchUpgradeTransport`` fit; one with a
    ``send_audio_nowait(data) -> bool`` like ``WebSocketTransport``'s gets the caller's frames through it)."""

    def __call__(
        self,
        *,
        url: str | None = ...,
        api_key: Any = ...,
        model: str = ...,
        input_format: AudioFormat | None = ...,
        output_format: AudioFormat | None = ...,
        output_frame_ms: int | None = ...,
        playback_tracker: PlaybackTracker | None = ...,
    ) -> Any: ...


class CallControl(Protocol):
    """Hang-up and transfer through the provider's REST API (see ``call_control.py``)."""

    async def hangup(self, call: CallStart) -> None: ...

    async def transfer(self, call: CallStart, target: str) -> None: ...


def model_format_for(dialect: Dialect) -> AudioFormat:
    """The format the model session is pinned to: G.711 passes through, L16 goes through PCM16 24 kHz."""
    audio = dialect.format.audio
    return audio if audio.codec in ("pcmu", "pcma") else PCM16_24K


class MediaStreamTransport(ClientShell):
    """A provider's media stream bridged to a Realtime model (see the module docstring).

    The shared client shell does what every transport does: where the model is (no URL and no key: the
    embedded server, started with ``responder``), status, tasks, closing and the session methods (on the
    model transport's session); this class waits for the call's start, bridges the audio both ways and
    hangs up the provider's socket at the end."""

    def __init__(
        self,
        socket: Any,
        provider: str | Dialect,
        *,
        url: str | None = None,
        api_key: Any = None,
        model: str = "gpt-realtime",
        responder: Responder | None = None,
        model_transport: ModelTransportFactory | None = None,
        model_format: AudioFormat | None = None,
        lead_ms: float = 80.0,
        max_ahead_ms: float = 300.0,
        max_gap_fill_ms: float = 1000.0,
        trailing_silence_ms: float = 700.0,
        stall_ms: float = 500.0,
        max_buffered_ms: float = 5000.0,
        start_timeout: float = 10.0,
        call_control: CallControl | None = None,
    ) -> None:
        super().__init__(url=url, api_key=api_key, model=model, responder=responder)
        self.socket: ProviderSocket = adapt_socket(socket)
        self.dialect = dialect_for(provider) if isinstance(provider, str) else provider
        self.call_control = call_control
        self.start_timeout = start_timeout
        self._factory = model_transport
        self._model_format = model_format
        self._lead_ms, self._max_ahead_ms = lead_ms, max_ahead_ms
        self._inbound_options = {
            "max_gap_fill_ms": max_gap_fill_ms,
            "trailing_silence_ms": trailing_silence_ms,
            "stall_ms": stall_ms,
        }
        self._max_buffered_ms = max_buffered_ms
        #: the call's metadata, from the provider's start message (None until it came)
        self.call: CallStart | None = None
        #: the transport to the model (None before ``connect``)
        self.inner: Any = None
        #: its ``send_audio_nowait`` when it has one (see ``_to_model``)
        self._send_nowait: Callable[[bytes], bool] | None = None
        self.outbound: OutboundAudio | None = None
        self.inbound: InboundAudio | None = None
        self.tracker: PlaybackTracker = PlaybackTracker()
        self._started = asyncio.Event()
        self._reader_done = asyncio.Event()
        self._model_gone = asyncio.Event()
        self._closed = asyncio.Event()
        self._ready = False
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._forwarded: set[str] = set()
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pumping = False
        self._due_at: float | None = None
        self._due_timer: asyncio.TimerHandle | None = None
        self._socket_open = True
        self._close_task: asyncio.Task[None] | None = None
        #: counters (also what ``rtlayer bridge`` exports to Prometheus)
        self.frames_in = 0
        self.frames_out = 0
        self.dropped_input_bytes = 0
        self.interruptions = 0
        self.format_pins = 0
        self.problems: Counter[str] = Counter()
        #: ms of audio acknowledged as played after a barge-in's truncate was decided (providers that
        #: confirm a clear only: Plivo, Vonage); the truncation's error
        self.truncation_error_ms = 0.0
        self._awaiting_clear = False

    # -- the contract ----------------------------------------------------------------------------------------

    @property
    def muted(self) -> bool | None:
        return None if self.inner is None else bool(self.inner.muted)

    @property
    def model_format(self) -> AudioFormat:
        return self._model_format or model_format_for(self.dialect)

    def add_listener(self, name: str, listener: Listener) -> Listener:
        self._forward(name)
        return super().add_listener(name, listener)

    def _check_connect(self, call_id: str | None, config: Mapping[str, Any]) -> None:
        if self._closing or self._closed.is_set():
            raise LocalProtocolError("connect() after close(): a transport bridges one call")

    def _endpoint(self, base: str, call_id: str | None) -> str:
        return base  # the model transport derives its own endpoint from the server's URL

    async def _open_session(
        self, endpoint: str, key: str | None, call_id: str | None, config: Mapping[str, Any]
    ) -> None:
        """Waits for the provider's start (the call's metadata), then connects to the model.

        Audio that arrives before the model's session exists is buffered (up to ``max_buffered_ms``, the
        excess dropped and counted in ``dropped_input_bytes``) and sent once it exists."""
        self._spawn(self._provider_reader())
        try:
            async with asyncio.timeout(self.start_timeout):
                await self._first(self._started.wait(), self._reader_done.wait())
        except TimeoutError:
            raise ConnectionClosedError(f"no start from the provider within {self.start_timeout} s") from None
        if self.call is None:
            raise ConnectionClosedError("the provider closed the stream before its start message")
        self.outbound = OutboundAudio(
            self.dialect.out_frame_ms, lead_ms=self._lead_ms, max_ahead_ms=self._max_ahead_ms
        )
        self.inner = self._make_inner(self.dialect.format.audio, endpoint, key)
        self._send_nowait = getattr(self.inner, "send_audio_nowait", None)
        for name in list(self._listeners):
            self._forward(name)
        self.inner.on("audio", self._on_model_audio)
        self.inner.on("audio_interrupted", self._on_interrupted)
        self.inner.on("connection_change", self._on_model_connection)
        # The server applies the pinned session.update before any audio sent after it, and the model
        # transport's session keeps the pinned formats from then on (a session.created with the server's
        # defaults arriving later does not switch it back): buffered audio can flow at once.
        await self.inner.connect(endpoint, key, self.model, call_id, self._pin(dict(config)))
        await self._flush_buffer()
        if self._model_gone.is_set():
            raise ConnectionClosedError("the model's session ended while the call started")
        self._spawn(self._pacer())
        self._spawn(self._stall_watch())

    async def wait_closed(self) -> None:
        """Returns once the call is over (the caller hung up, the model session ended, or ``close()``)."""
        await self._closed.wait()

    def send_event(self, event: Mapping[str, Any]) -> None:
        inner = self._require_inner()
        if event.get("type") == "session.update" and isinstance(event.get("session"), Mapping):
            event = {**event, "session": self._pin(dict(event["session"]))}
        inner.send_event(event)

    def _require_session(self) -> ClientSession:
        session: ClientSession = self._require_inner()._require_session()
        return session

    def _send_dict(self, event: dict[str, Any]) -> None:
        self._require_inner().send_event(event)  # the model transport remembers a session.update

    async def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None:
        """Audio for the model in the provider's format (little-endian when L16), besides the caller's."""
        await self._require_inner().send_audio(data, commit=commit)

    def update_session_config(self, config: Mapping[str, Any]) -> None:
        super().update_session_config(self._pin(dict(config)))

    def interrupt(self, cancel_ongoing_response: bool = True) -> None:
        """Stop what the caller hears now: clear, cancel, truncate at what the provider played."""
        self._require_inner().interrupt(cancel_ongoing_response)

    def mute(self, muted: bool) -> None:
        self._require_inner().mute(muted)

    def events(self, names: Iterable[str] = ("*",), maxsize: int = 10_000) -> Any:
        for name in names:
            self._forward(name)
        return super().events(names, maxsize)

    async def hangup(self) -> None:
        """Ends the call: through the provider's REST API when a ``call_control`` was given, then locally."""
        if self.call_control is not None and self.call is not None:
            await self.call_control.hangup(self.call)
        await self.close()

    async def transfer(self, target: str) -> None:
        """Transfers the call through the provider's REST API (needs a ``call_control``)."""
        if self.call_control is None or self.call is None:
            raise LocalProtocolError("transfer() needs a call_control and a started call")
        await self.call_control.transfer(self.call, target)

    async def _shutdown(self, reason: str | None) -> None:
        """The shell's way down, once: a second ``close()`` waits for the first (``wait_closed``)."""
        if self._closing:
            await self._closed.wait()
            return
        try:
            await super()._shutdown(reason)
        finally:
            self._closed.set()

    def _has_open_medium(self) -> bool:
        return self._socket_open

    async def _release(self, reason: str | None) -> None:
        """Closes the model's transport and the provider's socket."""
        try:
            if self.inner is not None:
                try:
                    await self.inner.close()
                except Exception:
                    logger.exception("closing the model's transport failed")
        finally:
            self._socket_open = False
            if self._due_timer is not None:
                self._due_timer.cancel()
            await self.socket.close()

    # -- internals: wiring -----------------------------------------------------------------------------------

    def _make_inner(self, provider_audio: AudioFormat, url: str, api_key: str | None) -> Any:
        factory = self._factory
        if factory is None:
            from ..websocket import WebSocketTransport

            factory = WebSocketTransport
        return factory(
            url=url,
            api_key=api_key,
            model=self.model,
            input_format=provider_audio,
            output_format=provider_audio,
            output_frame_ms=self.dialect.out_frame_ms,
            playback_tracker=self.tracker,
        )

    def _forward(self, name: str) -> None:
        """Re-emits the model transport's ``name`` events here (once per name, from when it exists)."""
        if name in _OWN_EVENTS or name in self._forwarded or self.inner is None:
            return
        self._forwarded.add(name)
        if name == "connection_change":
            return  # this transport reports its own status (see _on_model_connection)
        self.inner.add_listener(name, lambda payload, _name=name: self.emit(_name, payload))

    def _pin(self, session: dict[str, Any]) -> dict[str, Any]:
        """``session`` with its audio formats set to the pinned model format (see the module docstring)."""
        session = copy.deepcopy(session)
        want = self.model_format.to_session()
        audio = session.get("audio")
        audio = dict(audio) if isinstance(audio, Mapping) else {}
        for direction in ("input", "output"):
            part = audio.get(direction)
            part = dict(part) if isinstance(part, Mapping) else {}
            asked = part.get("format")
            if asked is not None:
                try:
                    same = AudioFormat.from_session(asked) == self.model_format
                except ValueError:
                    same = False
                if not same:
                    self.format_pins += 1
                    if self.format_pins == 1:
                        logger.info(
                            "a session update asked for %r on %s; kept %s (the provider's)",
                            asked,
                            direction,
                            self.model_format,
                        )
            part["format"] = want
            audio[direction] = part
        # Legacy flat keys would be mapped onto the same fields: drop them, the GA ones above win.
        for key in ("input_audio_format", "output_audio_format", "inputAudioFormat", "outputAudioFormat"):
            if key in session:
                session.pop(key)
                self.format_pins += 1
        session["audio"] = audio
        return session

    def _require_inner(self) -> Any:
        if self.inner is None or self._closing:
            raise ConnectionClosedError("the media stream is not connected: call connect() first")
        return self.inner

    @staticmethod
    async def _first(*aws: Awaitable[Any]) -> None:
        tasks = [asyncio.ensure_future(a) for a in aws]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_model_connection(self, event: ConnectionChangeEvent) -> None:
        if event.status is TransportStatus.CONNECTED and self._status is not TransportStatus.CONNECTED:
            self._set_status(TransportStatus.CONNECTED, reason=event.reason)
        elif event.status is TransportStatus.RECONNECTING:
            self._set_status(TransportStatus.RECONNECTING, reason=event.reason)
        elif event.status is TransportStatus.DISCONNECTED:
            self._model_gone.set()
            if self._ready and not self._closing:
                # The model's session ended: the call has nothing left to say; hang up the provider's side.
                self._spawn_close()

    def _spawn_close(self) -> None:
        # Not one of self._tasks: close() cancels those. Kept referenced until it is done.
        if not self._closing and self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self.close())

    # -- internals: provider -> model ------------------------------------------------------------------------

    async def _provider_reader(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await self.socket.receive()
                if message is None:
                    break
                for event in self.dialect.receive(message):
                    if await self._on_provider_event(event, loop.time()):
                        return
        except Exception:
            logger.exception("the provider's socket failed")
        finally:
            if not self._closing:
                self.emit("call_stop", CallStop("closed"))
                self._spawn_close()
            self._reader_done.set()

    async def _on_provider_event(self, event: ProviderEvent, now: float) -> bool:
        """Acts on one provider event; True when the call is over."""
        if isinstance(event, MediaIn):
            self.frames_in += 1
            assert self.inbound is not None
            audio = event.audio
            if self.dialect.format.big_endian:
                audio = _swap16(audio)
            for chunk in self.inbound.media(audio, event.timestamp_ms, now):
                await self._to_model(chunk)
        elif isinstance(event, PlaybackAck):
            if self._on_ack(event.name, now):
                await self._pump()  # the provider played a frame: the next may leave now
        elif isinstance(event, CallStart):
            self.call = event
            self.inbound = InboundAudio(self.dialect.format.audio, **self._inbound_options)
            self.emit("call_start", event)
            self._started.set()
        elif isinstance(event, DtmfEvent):
            self.emit("dtmf", event)
        elif isinstance(event, ClearConfirmed):
            self._awaiting_clear = False
        elif isinstance(event, CallStop):
            self.emit("call_stop", event)
            self._spawn_close()
            return True
        elif isinstance(event, ProviderProblem):
            self._problem(event)
        return False

    def _problem(self, problem: ProviderProblem) -> None:
        self.problems[problem.kind] += 1
        if self.problems[problem.kind] == 1:  # once per kind: a provider repeating itself must not flood logs
            logger.warning(
                "%s stream: %s (ignored; counted in problems[%r])",
                self.dialect.name,
                problem.detail,
                problem.kind,
            )
        self.emit("provider_problem", problem)

    async def _to_model(self, chunk: bytes) -> None:
        if self._ready and self.inner is not None:
            # Straight to the model's socket, in the provider's reader, when it takes the frame at once (the
            # WebSocket transport's send_audio_nowait); else the waiting send_audio, so a model socket that
            # stops reading slows the reader instead of queueing without bound.
            if self._send_nowait is not None and self._send_nowait(chunk):
                return
            try:
                await self.inner.send_audio(chunk)
            except ConnectionClosedError:
                self.dropped_input_bytes += len(chunk)
            return
        limit = self.dialect.format.audio.bytes_for_ms(self._max_buffered_ms)
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        while self._buffered > limit:  # keep the newest: the start of a long wait is the stalest audio
            dropped = self._buffer.popleft()
            self._buffered -= len(dropped)
            self.dropped_input_bytes += len(dropped)

    async def _flush_buffer(self) -> None:
        """Sends what was buffered, in order; audio arriving meanwhile queues behind it, and the bridge
        switches to sending directly only once the buffer is empty (no await between the check and the
        switch)."""
        while self._buffer:
            chunk = self._buffer.popleft()
            self._buffered -= len(chunk)
            await self.inner.send_audio(chunk)
        self._ready = True

    async def _stall_watch(self) -> None:
        inbound = self.inbound
        assert inbound is not None
        step = max(inbound.stall_ms / 4000.0, 0.01)
        loop = asyncio.get_running_loop()
        while not self._closing:
            await asyncio.sleep(step)
            silence = inbound.check_stall(loop.time())
            if silence:
                await self._to_model(silence)

    # -- internals: model -> provider ------------------------------------------------------------------------

    def _on_model_audio(self, event: AudioEvent) -> None:
        outbound = self.outbound
        if outbound is None:
            return
        data = event.data
        if self.dialect.format.big_endian:
            data = _swap16(data)
        outbound.push(data, event.item_id, event.content_index)
        self._wake.set()

    def _on_ack(self, name: str, now: float) -> bool:
        """The provider played up to marker ``name``: playback truth for the model transport; True when it
        confirmed audio of the current generation (so more may leave now)."""
        outbound = self.outbound
        if outbound is None:
            self._problem(
                ProviderProblem("unknown_mark", f"a playback ack for {name[:40]!r} before any audio")
            )
            return False
        stale = outbound.stale_acks
        pending = outbound.ack(name, now)
        if pending is not None:
            self.tracker.on_play_ms(pending.item_id, pending.content_index, pending.ms)
            return True
        if outbound.stale_acks == stale:
            self._problem(ProviderProblem("unknown_mark", f"a playback ack for {name[:40]!r}, never sent"))
        elif self._awaiting_clear:
            # Played after the truncate was decided, before the provider confirmed the clear: heard but not in
            # the truncate. Only measurable where the provider confirms a clear (Plivo, Vonage); the others
            # return the markers of cleared audio, which look the same.
            self.truncation_error_ms += self.dialect.out_frame_ms
        return False

    async def _pacer(self) -> None:
        """Sends the model's audio when ``_wake`` says some may leave: audio arrived from the model, or the
        real-time schedule's next frame is due (``_arm``'s timer). Acknowledgements pump inline, in the
        provider's reader, without a task switch per frame."""
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._pump()

    async def _pump(self) -> None:
        """Sends every frame that may leave now, then arms the timer for the next one. One pump at a time (a
        second caller returns: the running one loops until nothing is ready), so frames leave in order."""
        outbound = self.outbound
        if outbound is None or self._pumping:
            return
        self._pumping = True
        loop = asyncio.get_running_loop()
        try:
            while frames := outbound.pop_ready(loop.time()):
                generation = outbound.generation
                for frame in frames:
                    async with self._send_lock:
                        if outbound.generation != generation:
                            break  # a barge-in cleared it while we waited for the socket
                        await self._send(self.dialect.audio(frame.audio))
                        await self._send(self.dialect.bridge_mark(frame.mark))
                    self.frames_out += 1
        finally:
            self._pumping = False
        self._arm(outbound.next_due(loop.time()), loop)

    def _arm(self, due: float | None, loop: asyncio.AbstractEventLoop) -> None:
        """The pacer's timer at ``due`` (the schedule's next frame; None disarms it): a timer handle when the
        due time changes, rather than an ``asyncio.timeout`` context and its exception per frame."""
        if due == self._due_at:
            return
        if self._due_timer is not None:
            self._due_timer.cancel()
            self._due_timer = None
        self._due_at = due
        if due is not None:
            self._due_timer = loop.call_at(due, self._on_due)

    def _on_due(self) -> None:
        # Forget the fired timer first: a pump that finds the frame not quite due yet (the loop may run a timer
        # a hair early) arms again for the same time instead of waiting for an acknowledgement.
        self._due_timer = self._due_at = None
        self._wake.set()

    async def _send(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            await self.socket.send_text(frame)
        else:
            await self.socket.send_bytes(frame)

    def _on_interrupted(self, event: AudioInterruptedEvent) -> None:
        """The model transport stopped an item (barge-in or ``interrupt()``): stop the provider too."""
        outbound = self.outbound
        if outbound is None or self.inner is None:
            return
        self.interruptions += 1
        unheard = outbound.clear()
        self._awaiting_clear = self.dialect.confirms_clear
        self._spawn(self._send_clear())
        session = self.inner.session
        for (item_id, content_index), _ms in unheard.items():
            if item_id == event.item_id and content_index == event.content_index:
                continue  # the model transport truncated it already, at what the provider played
            heard = self.tracker.played_ms(item_id, content_index)
            received = session.audio_received_ms(item_id, content_index)
            self.inner.send_event(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": content_index,
                    "audio_end_ms": int(min(heard, received)),
                }
            )

    async def _send_clear(self) -> None:
        async with self._send_lock:
            try:
                await self._send(self.dialect.clear())
            except Exception:
                logger.debug("could not send the clear (the socket is closing)")


def _swap16(data: bytes) -> bytes:
    """L16 between network byte order and rtlayer's little-endian (a C loop in ``array``)."""
    samples = array("h")
    samples.frombytes(data[: len(data) & ~1])
    samples.byteswap()
    return samples.tobytes()


class TwilioMediaStreamTransport(MediaStreamTransport):
    """``MediaStreamTransport`` for Twilio Media Streams (mu-law 8 kHz; passthrough to ``audio/pcmu``)."""

    def __init__(self, socket: Any, **options: Any) -> None:
        super().__init__(socket, "twilio", **options)


class TelnyxMediaStreamTransport(MediaStreamTransport):
    """``MediaStreamTransport`` for Telnyx media streaming (PCMU, PCMA or big-endian L16)."""

    def __init__(self, socket: Any, **options: Any) -> None:
        super().__init__(socket, "telnyx", **options)


class PlivoMediaStreamTransport(MediaStreamTransport):
    """``MediaStreamTransport`` for Plivo audio streams (L16 8/16 kHz or mu-law)."""

    def __init__(self, socket: Any, **options: Any) -> None:
        super().__init__(socket, "plivo", **options)


class ExotelMediaStreamTransport(MediaStreamTransport):
    """``MediaStreamTransport`` for Exotel voice streaming (L16 8 kHz; 320 B frames out)."""

    def __init__(self, socket: Any, **options: Any) -> None:
        super().__init__(socket, "exotel", **options)


class VonageMediaStreamTransport(MediaStreamTransport):
    """``MediaStreamTransport`` for Vonage WebSocket connect (binary L16 16 kHz, 640 B frames)."""

    def __init__(self, socket: Any, **options: Any) -> None:
        super().__init__(socket, "vonage", **options)
