"""``SessionRunner``: the asyncio shell around one sans-I/O ``ServerSession``.

The session core takes events and time and returns events and response jobs; the runner is what
makes that happen on a loop:

- a front hands it client input (``receive_text``, ``receive_media_audio``, ``receive_dtmf``);
- each ``ResponseJob`` the session asks for runs as a task iterating the responder
  (``async for part in responder.respond(request)``), feeding parts back; the task is cancelled
  as soon as the session ends that response (``response.done`` for it, e.g. a barge-in or a
  ``response.cancel``);
- the session's timer (idle timeouts, expiry) is armed with ``loop.call_at``;
- every event the session emits goes to the server's observers and then, serialized once with
  ``rtlayer.protocol.codec``, to every attached sink (the WebSocket, a WebRTC data channel,
  sideband ``?call_id=`` sockets).

Output audio of WebSocket sessions is cut into ``chunk_ms`` pieces (a ``response.output_audio.delta``
each) and, when ``audio_pacing`` > 0, released at that multiple of real time, so that a client can
interrupt an answer while it is still arriving; 0 sends as fast as the responder produces. In media
mode (WebRTC, SIP) the session's paced media buffer does the pacing, so parts go in unpaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol import codec
from rtlayer.protocol.ids import new_event_id
from rtlayer.server.core.session import ServerSession
from rtlayer.server.fair import enter_session
from rtlayer.server.responders import AudioPart, Responder, ResponsePart

__all__ = ["EventObserver", "EventSink", "SessionRunner", "SessionStats", "wall_now"]

logger = logging.getLogger("rtlayer.server")

EventSink = Callable[[str], None]
"""Takes one serialized server event. Must not block and must not raise (queue and return)."""

EventObserver = Callable[[str, dict[str, Any]], None]
"""Called with ``(session_id, event)`` for every server event a session emits, before it is sent."""

_PCM16_24K_BYTES_PER_MS = 48
_SLICE_S = 0.001
"""A response task gives the loop back after this much work in one go, so one long answer (a 2 MB text
echoed word by word) cannot hold every other session of the server."""


@dataclass(frozen=True, slots=True)
class SessionStats:
    """What one session holds and what its bounds dropped (``SessionRunner.stats()``)."""

    conversation_items: int
    conversation_bytes: int
    items_dropped: int
    """Oldest items dropped to stay within ``max_conversation_bytes``."""
    item_bytes_dropped: int
    input_bytes_dropped: int
    """Input audio dropped: past ``max_input_buffer_bytes``, or undecodable media frames."""
    events_dropped: int
    """Events not delivered to a reader that was cut off (or whose queue was over its bytes)."""
    event_bytes_dropped: int
    readers_cut_off: int
    """Sockets or data channels closed for falling ``max_queued_bytes`` behind."""
    events_unserializable: int
    """Events that could not be serialized (sent as an ``error`` instead); 0 unless there is a bug."""


class SessionRunner:
    """Runs one ``ServerSession``: response tasks, timer, and fan-out of its events to sinks."""

    def __init__(
        self,
        session: ServerSession,
        responder: Responder,
        *,
        observe: EventObserver | None = None,
        audio_pacing: float = 4.0,
        chunk_ms: int = 100,
    ) -> None:
        """``observe`` sees every event before the sinks do (the server's observers: ``ServerState.observe``)."""
        self.session = session
        self.responder = responder
        self.observe = observe
        self.audio_pacing = audio_pacing
        self.chunk_bytes = max(2, chunk_ms * _PCM16_24K_BYTES_PER_MS)
        self.media_mode = getattr(session, "media", None) is not None
        self.loop = asyncio.get_running_loop()
        self.sinks: list[EventSink] = []
        self.last_activity = self.loop.time()
        self.events_sent = 0
        self.events_dropped = 0
        self.event_bytes_dropped = 0
        self.readers_cut_off = 0
        self.events_unserializable = 0
        self.work_slot = asyncio.Semaphore(1)
        """One blocking job (speech synthesis, a transcription) of this session at a time: its others wait
        their turn instead of filling the shared thread pool (``rtlayer.server.fair``)."""
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # transcriptions in flight
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self._close_callbacks: list[Callable[[SessionRunner], None]] = []
        self._done = asyncio.Event()

    # -- identity and lifecycle -------------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self.session.id)

    @property
    def closed(self) -> bool:
        return self._closed

    def on_close(self, callback: Callable[[SessionRunner], None]) -> Callable[[], None]:
        """Run ``callback(runner)`` once when the runner closes (fronts close their sockets here).

        Returns a function that forgets the callback (a sideband socket that leaves before the call).
        """
        if self._closed:
            callback(self)
        else:
            self._close_callbacks.append(callback)

        def forget() -> None:
            if callback in self._close_callbacks:
                self._close_callbacks.remove(callback)

        return forget

    async def wait_closed(self) -> None:
        await self._done.wait()

    def add_sink(self, sink: EventSink) -> Callable[[], None]:
        """Send every later event to ``sink``; returns a function that detaches it."""
        self.sinks.append(sink)

        def remove() -> None:
            if sink in self.sinks:
                self.sinks.remove(sink)

        return remove

    def greet(self, sink: EventSink) -> None:
        """Tell one late-attached sink (a ``?call_id=`` sideband socket) which session it joined.

        The session's own ``session.created`` went out when the call started, before this sink existed;
        the sideband gets its own ``session.created`` with the session as it is now, so that a client
        that waits for it (as clients of a fresh socket do) learns the session id and config.
        """
        if self._closed:
            return
        event = {
            "type": "session.created",
            "event_id": new_event_id(),
            "session": self.session.session_object(),
        }
        if self.observe is not None:
            self.observe(self.id, event)
        try:
            sink(codec.dumps(event))
        except Exception:
            logger.exception("event sink failed while greeting it")

    def stats(self) -> SessionStats:
        """What the session holds and what its bounds dropped, now."""
        session = self.session
        conversation = session.conversation
        return SessionStats(
            conversation_items=len(conversation),
            conversation_bytes=conversation.nbytes,
            items_dropped=conversation.dropped_items,
            item_bytes_dropped=conversation.dropped_bytes,
            input_bytes_dropped=session.input_dropped_bytes,
            events_dropped=self.events_dropped,
            event_bytes_dropped=self.event_bytes_dropped,
            readers_cut_off=self.readers_cut_off,
            events_unserializable=self.events_unserializable,
        )

    def count_dropped(self, events: int, nbytes: int, *, cut_off: bool = False) -> None:
        """A reader's sink dropped ``events`` (``nbytes``); ``cut_off``: the reader itself was closed."""
        self.events_dropped += events
        self.event_bytes_dropped += nbytes
        self.readers_cut_off += int(cut_off)

    def start(self) -> None:
        """Flush what the session queued at creation (``session.created``) and arm its timer."""
        self._pump()

    def close(self) -> None:
        """Stop every response task and the timer, detach sinks, unregister. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in [*self._jobs.values(), *self._tasks]:
            task.cancel()
        self._jobs.clear()
        self._tasks.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sinks.clear()
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("close callback failed")
        self._done.set()

    # -- input ------------------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """One client text frame (malformed JSON is answered by the session with ``error``)."""
        if self._closed:
            return
        self.last_activity = self.loop.time()
        try:
            self.session.receive_text(text, wall_now())
        except Exception:
            self._internal_error()
        self._pump()

    def receive_event(self, event: dict[str, Any]) -> None:
        """One parsed client event (a data channel front may parse itself)."""
        if self._closed:
            return
        self.last_activity = self.loop.time()
        try:
            self.session.receive_event(event, wall_now())
        except Exception:
            self._internal_error()
        self._pump()

    def receive_media_audio(self, data: bytes) -> None:
        """Input audio from RTP (WebRTC, SIP), already in the session's media format."""
        if self._closed:
            return
        try:
            self.session.receive_media_audio(data, wall_now())
        except Exception:
            self._internal_error()
        self._pump()

    def receive_dtmf(self, digit: str) -> None:
        if self._closed:
            return
        try:
            self.session.receive_dtmf(digit, wall_now())
        except Exception:
            self._internal_error()
        self._pump()

    def pull_media_audio(self, nbytes: int) -> bytes | None:
        """One paced frame of output audio in media mode (None: nothing playing)."""
        if self._closed:
            return None
        frame: bytes | None = self.session.pull_media_audio(nbytes, wall_now())
        self._pump()
        return frame

    def clear_media_audio(self) -> None:
        if self._closed:
            return
        self.session.clear_media_audio(wall_now())
        self._pump()

    def refuse(self, refusal: RequestRefused) -> None:
        """Emit the ``error`` event of a refusal the session core cannot see (e.g. a binary frame)."""
        self._emit({**refusal.error_event(), "event_id": new_event_id()})

    def _internal_error(self) -> None:
        """A bug in the session core met this input: log it, tell the client, keep the session."""
        logger.exception("session %s failed to handle client input", self.id)
        self._pump()  # whatever the session queued before failing still goes out, in order
        self.refuse(
            RequestRefused(
                "server_error",
                "The server had an error while processing this event; the session goes on.",
                status=500,
            )
        )

    # -- the pump ---------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start new response jobs, deliver queued events, re-arm the timer."""
        session = self.session
        for job in session.response_jobs():
            response_id = str(job.response_id)
            task = self.loop.create_task(self._run_job(job), name=f"rtlayer-response-{response_id}")
            self._jobs[response_id] = task
        for transcription in session.transcription_jobs():
            self._tasks.add(task := self.loop.create_task(self._transcribe(transcription)))
            task.add_done_callback(self._tasks.discard)
        events = session.events_to_send()
        for event in events:
            self._emit(event)
        self._arm_timer()
        if session.closed and not self._closed:
            self.close()

    def _emit(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        if self.observe is not None:
            self.observe(self.id, event)
        try:
            text = codec.dumps(event)
        except (TypeError, ValueError):  # a value past the encoder's limits reached an event: a bug upstream
            logger.exception("session %s: could not serialize a %s event", self.id, event.get("type"))
            self.events_unserializable += 1
            event = _unserializable_error(event)
            text = codec.dumps(event)
        for sink in self.sinks:
            try:
                sink(text)
            except Exception:  # a broken sink loses its events, the session and other sinks go on
                logger.exception("event sink failed; detaching it")
                self.sinks = [s for s in self.sinks if s is not sink]
        self.events_sent += 1
        self.last_activity = self.loop.time()
        if event.get("type") == "response.done":
            # The session ended this response (finished, cancelled by the client, or interrupted by
            # a new turn): stop producing it, unless this is the job's own task finishing it.
            response = event.get("response") or {}
            task = self._jobs.pop(str(response.get("id")), None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    def _arm_timer(self) -> None:
        when = self.session.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is None:
            return
        delay = max(0.0, float(when) - wall_now())
        self._timer = self.loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        self.session.handle_timer(wall_now())
        self._pump()

    # -- responses --------------------------------------------------------------------------------

    async def _run_job(self, job: Any) -> None:
        """Iterate the responder for one response, feeding parts back until done or cancelled."""
        response_id = str(job.response_id)
        session = self.session
        paced = self.audio_pacing > 0 and not self.media_mode
        # The pacing clock starts with the first audio, so a slow start (synthesis) is not made up
        # for by a burst afterwards.
        start: float | None = None
        audio_s = 0.0
        error: str | None = None
        loop = self.loop
        slice_end = loop.time() + _SLICE_S
        enter_session(self.work_slot)
        try:
            async with _closing(self.responder.respond(job.request)) as parts:
                async for part in parts:
                    if self._closed or job.cancelled:
                        return
                    if loop.time() > slice_end:  # a responder that never awaits: let the others run
                        await asyncio.sleep(0)
                        if self._closed or job.cancelled:
                            return
                        slice_end = loop.time() + _SLICE_S
                    if isinstance(part, AudioPart) and start is None:
                        start = self.loop.time()
                    if (
                        isinstance(part, AudioPart)
                        and not self.media_mode
                        and len(part.pcm16_24k) > self.chunk_bytes
                    ):
                        pcm = part.pcm16_24k
                        for offset in range(0, len(pcm), self.chunk_bytes):
                            chunk = pcm[offset : offset + self.chunk_bytes]
                            session.response_part(
                                response_id, dataclasses.replace(part, pcm16_24k=chunk), wall_now()
                            )
                            self._pump()
                            audio_s += len(chunk) / (_PCM16_24K_BYTES_PER_MS * 1000)
                            await self._pace(paced, start or 0.0, audio_s)
                            slice_end = loop.time() + _SLICE_S  # the pace let the others run
                    else:
                        session.response_part(response_id, part, wall_now())
                        self._pump()
                        if isinstance(part, AudioPart):
                            audio_s += len(part.pcm16_24k) / (_PCM16_24K_BYTES_PER_MS * 1000)
                            await self._pace(paced, start or 0.0, audio_s)
                            slice_end = loop.time() + _SLICE_S  # the pace let the others run
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a responder bug fails this response, never the session
            logger.exception("responder failed")
            error = f"responder failed: {type(exc).__name__}: {exc}"
        if self._closed or response_id not in self._jobs:
            return
        session.response_finished(response_id, wall_now(), error=error)
        self._jobs.pop(response_id, None)
        self._pump()

    async def _transcribe(self, job: Any) -> None:
        """Run the responder's ``transcribe`` on committed user audio and hand the result back."""
        enter_session(self.work_slot)
        transcribe = getattr(self.responder, "transcribe", None)
        transcript: str | None = None
        error: str | None = None
        if transcribe is None:
            error = "This server's responder cannot transcribe audio."
        else:
            try:
                transcript = await transcribe(job.pcm16_24k)
            except Exception as exc:  # a responder bug fails this transcription only
                logger.exception("transcription failed")
                error = f"transcription failed: {type(exc).__name__}: {exc}"
        if self._closed:
            return
        self.session.transcription_result(job.item_id, transcript, wall_now(), error=error)
        self._pump()

    async def _pace(self, paced: bool, start: float, audio_s: float) -> None:
        if not paced:
            # Still yield, so that a long answer never starves the other sessions on this loop.
            await asyncio.sleep(0)
            return
        delay = start + audio_s / self.audio_pacing - self.loop.time()
        await asyncio.sleep(delay if delay > 0 else 0)


@contextlib.asynccontextmanager
async def _closing(parts: AsyncIterator[ResponsePart]) -> AsyncIterator[AsyncIterator[ResponsePart]]:
    """Close a responder's generator when its response stops early (its ``finally`` blocks run now)."""
    try:
        yield parts
    finally:
        aclose = getattr(parts, "aclose", None)
        if aclose is not None:
            await aclose()


def _unserializable_error(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": new_event_id(),
        "error": {
            "type": "server_error",
            "code": "server_error",
            "message": f"The server could not send a {str(event.get('type'))[:60]} event; the session goes on.",
            "param": None,
            "event_id": None,
        },
    }


def wall_now() -> float:
    """The session core's clock: Unix time in seconds (``expires_at`` and ``received_at`` are Unix)."""
    return time.time()
