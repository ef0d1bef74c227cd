"""The client side of one Realtime session, sans-I/O: what every transport tracks about the conversation.

``ClientSession`` is fed the server's events (``receive_event``) and the app's calls (``send_message``,
``interrupt``, ...) with the current time ``now`` (monotonic seconds), and produces client events to send
(``send`` callback or ``events_to_send()``) and transport events to emit (``emit`` callback or ``emitted()``).
It owns:

- the active response and ``response.create`` sequencing (``sequencer``);
- the current audio item, the audio received per item, output conversion and framing to the app's format;
- interruption: stop (``audio_interrupted``), cancel unless the server's ``interrupt_response`` already does,
  and ``conversation.item.truncate`` at what the user heard, from the app's ``PlaybackTracker`` or else a
  playout clock (audio assumed played in real time from its arrival). It stays right after
  ``output_audio.done`` while buffered audio still plays (the JS SDK forgets the item at that point);
- mute (input replaced by silence, so the server's turn detection keeps its timeline).

The convenience events that are plain views of one server event (deltas, items, function calls) are
built in ``views``; what needs the session's state (turns, audio, interruption) is handled here.
"""

from __future__ import annotations

import binascii
import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

import rtlayer_native

from ..audio import PCM16_24K, AudioConverter, AudioFormat, PlaybackTracker
from ..exceptions import InvalidAudioError
from ..protocol.codec import b64decode_audio, b64encode_audio
from ..transport_events import (
    AudioDoneEvent,
    AudioEvent,
    AudioInterruptedEvent,
    ErrorEvent,
    FunctionCallEvent,
    ItemUpdateEvent,
    TurnDoneEvent,
    TurnStartedEvent,
)
from .messages import (
    function_call_item,
    function_call_output_event,
    mcp_approval_event,
    reset_history_events,
    session_update_event,
    user_message_event,
)
from .playout import AudioItem, PlayoutClock
from .sequencer import ResponseCreateSequencer
from .views import VIEWS, usage_of

__all__ = ["ClientSession", "PlayoutClock"]

logger = logging.getLogger("rtlayer.client")

Emit = Callable[[str, Any], None]
Send = Callable[[dict[str, Any]], None]

_SILENCE_BYTE = {"pcm16": b"\x00", "pcmu": b"\xff", "pcma": b"\xd5"}


def event_type(event: Any) -> Any:
    """The ``type`` of a client event the app hands over; ``TypeError`` when it is not an event object.

    Only the shape is checked here: a wrong or missing ``type`` is the server's to refuse, with an
    ``error`` event, as the service does."""
    if not isinstance(event, Mapping):
        raise TypeError(f"a client event is a mapping (a dict with a 'type'), got {type(event).__name__}")
    return event.get("type")


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (server events are read defensively)."""
    return value if isinstance(value, dict) else {}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class ClientSession:
    """One session's client state; a transport holds one per connection (see the module docstring)."""

    #: interrupted items whose late deltas are dropped (bounded)
    _MAX_INTERRUPTED = 32

    def __init__(
        self,
        *,
        input_format: AudioFormat | None = None,
        output_format: AudioFormat | None = None,
        output_frame_ms: int | None = None,
        tracker: PlaybackTracker | None = None,
        emit: Emit | None = None,
        send: Send | None = None,
        retrieve_items: bool = False,
    ) -> None:
        self.input_format = input_format
        self.output_format = output_format
        self.output_frame_ms = output_frame_ms
        self.tracker = tracker
        self.retrieve_items = retrieve_items
        self._emitted: list[tuple[str, Any]] = []
        self._outbox: list[dict[str, Any]] = []
        self._emit: Emit = (
            emit if emit is not None else lambda name, payload: self._emitted.append((name, payload))
        )
        self._send: Send = send if send is not None else self._outbox.append
        self.sequencer = ResponseCreateSequencer()
        self.config: dict[str, Any] = {}
        self.session_input_format = PCM16_24K
        self.session_output_format = PCM16_24K
        # The formats the app's own session.update asked for (per direction): they stand against a
        # session.created, which carries the server's defaults from before it read that update.
        self._requested_input: AudioFormat | None = None
        self._requested_output: AudioFormat | None = None
        self.interrupt_response = True
        self.active_response_id: str | None = None
        self.muted = False
        self.muted_bytes = 0
        self._audio: AudioItem | None = None
        self._interrupted: dict[str, None] = {}
        self._received: dict[tuple[str, int], AudioItem] = {}
        self._in_conv: AudioConverter | None = None
        self._out_conv: AudioConverter | None = None
        self._framer: rtlayer_native.Framer | None = None
        self._tracing_wanted: Any = "auto"
        self._configure_audio()

    # -- draining (when no callbacks were given) ------------------------------------------------------------

    def events_to_send(self) -> list[dict[str, Any]]:
        out = self._outbox[:]
        self._outbox.clear()
        return out

    def emitted(self) -> list[tuple[str, Any]]:
        out = self._emitted[:]
        self._emitted.clear()
        return out

    # -- app side --------------------------------------------------------------------------------------------

    def send_event(self, event: Mapping[str, Any]) -> None:
        """Any raw client event; ``response.create`` goes through the sequencer."""
        kind = event_type(event)
        if kind == "response.create":
            self._send_all(self.sequencer.request(dict(event), manual=True))
            return
        if kind == "response.cancel":
            self.sequencer.begin_cancel()
        elif kind == "session.update" and isinstance(event.get("session"), Mapping):
            # Sent untouched, but a format change applies to the audio that follows it (see session_update).
            self._expect_formats(_obj(session_update_event(event["session"])["session"].get("audio")))
        self._send(dict(event))

    def request_response(self, response: Mapping[str, Any] | None = None) -> None:
        """Ask for a response; without a body it is automatic and may be coalesced with others waiting."""
        event: dict[str, Any] = {"type": "response.create"}
        if response is not None:
            event["response"] = dict(response)
        self._send_all(self.sequencer.request(event, manual=response is not None))

    def session_update(self, config: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
        """The ``session.update`` event for a partial config in GA or legacy (flat, camelCase) shape."""
        event = session_update_event(config, model)
        if "tracing" in event["session"]:
            self._tracing_wanted = None  # the app chose; do not add "auto" on session.created
        self._expect_formats(_obj(event["session"].get("audio")))
        return event

    def _expect_formats(self, audio: dict[str, Any]) -> None:
        """The server applies a ``session.update`` before the audio sent after it, so audio sent before its
        ``session.updated`` comes back must already be in the new format: switch now (the next
        ``session.updated`` corrects this if the server refused the change)."""
        fin, fout = _obj(audio.get("input")).get("format"), _obj(audio.get("output")).get("format")
        try:
            new_in = AudioFormat.from_session(fin) if fin is not None else self.session_input_format
            new_out = AudioFormat.from_session(fout) if fout is not None else self.session_output_format
        except ValueError:
            return  # the server will refuse it with an error; nothing to switch
        if fin is not None:
            self._requested_input = new_in
        if fout is not None:
            self._requested_output = new_out
        if (new_in, new_out) != (self.session_input_format, self.session_output_format):
            self.session_input_format, self.session_output_format = new_in, new_out
            self._configure_audio()

    def update_session_config(self, config: Mapping[str, Any], model: str | None = None) -> None:
        self._send(self.session_update(config, model))

    def send_message(
        self,
        message: str | Mapping[str, Any],
        other_event_data: Mapping[str, Any] | None = None,
        *,
        trigger_response: bool = True,
    ) -> None:
        """A user message (text, or a message item with content parts); then a response unless told not to."""
        self._send(user_message_event(message, other_event_data))
        if trigger_response:
            self.request_response()

    def add_image(self, image: str, *, trigger_response: bool = True) -> None:
        """An image as a user message: a ``data:image/...;base64,...`` URL, the form the GA protocol takes."""
        if not isinstance(image, str):
            raise TypeError(f"an image is a data: URL (str), got {type(image).__name__}")
        self.send_message(
            {"content": [{"type": "input_image", "image": image}]}, trigger_response=trigger_response
        )

    def send_function_call_output(
        self, call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        self._send(function_call_output_event(call, output))
        item = function_call_item(call, output)
        self._emit("item_update", ItemUpdateEvent(call.item_id, "function_call", "completed", item))
        if start_response:
            self.request_response()

    def send_mcp_response(self, approval_request_id: str, approved: bool, reason: str | None = None) -> None:
        """Approve or refuse an MCP tool call the server asked about (``mcp_approval_request`` item)."""
        self._send(mcp_approval_event(approval_request_id, approved, reason))

    def reset_history(self, old_history: list[dict[str, Any]], new_history: list[dict[str, Any]]) -> None:
        """Makes the server's conversation match ``new_history`` (see ``messages.reset_history_events``)."""
        self._send_all(reset_history_events(old_history, new_history))

    def mute(self, muted: bool) -> None:
        self.muted = bool(muted)

    def encode_audio(self, data: bytes | bytearray | memoryview) -> str:
        """The ``input_audio_buffer.append`` text for app audio (converted to the session's input format).

        Built by concatenation: base64 needs no JSON escaping, and this is the hot send path.
        """
        if self.muted:
            fmt = self.input_format or self.session_input_format
            self.muted_bytes += len(data)
            data = _SILENCE_BYTE[fmt.codec] * len(data)
        if self._in_conv is not None:
            data = self._in_conv.convert(data)
        elif len(data) % 2 and self.session_input_format.codec == "pcm16":
            from ..exceptions import InvalidAudioError

            raise InvalidAudioError(f"PCM16 data must have an even number of bytes, got {len(data)}")
        return '{"type":"input_audio_buffer.append","audio":"' + b64encode_audio(data) + '"}'

    def interrupt(self, now: float, cancel_ongoing_response: bool = True) -> bool:
        """The user barged in: returns whether audio was playing (and so was stopped and truncated)."""
        item = self._audio
        if item is not None and self._is_playing(item, now):
            received_ms = self.session_output_format.duration_ms(item.received_bytes)
            audio_end_ms = int(min(self._heard_ms(item, now), received_ms))
            if cancel_ongoing_response:
                self._cancel()
            self._stop_item(item)
            self._emit(
                "audio_interrupted",
                AudioInterruptedEvent(item.item_id, item.content_index, audio_end_ms, item.response_id),
            )
            self._send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item.item_id,
                    "content_index": item.content_index,
                    "audio_end_ms": audio_end_ms,
                }
            )
            return True
        if cancel_ongoing_response:
            self._cancel()
        return False

    def heard_ms(self, item_id: str, now: float, content_index: int = 0) -> float:
        """How much of an item the user has heard (tracker or playout clock), capped at what was received."""
        item = self._audio
        if item is None or item.item_id != item_id or item.content_index != content_index:
            return 0.0
        return min(self._heard_ms(item, now), self.session_output_format.duration_ms(item.received_bytes))

    def audio_received_ms(self, item_id: str, content_index: int = 0) -> float:
        item = self._received.get((item_id, content_index))
        return 0.0 if item is None else self.session_output_format.duration_ms(item.received_bytes)

    @property
    def current_audio_item_id(self) -> str | None:
        return None if self._audio is None else self._audio.item_id

    def connection_lost(self) -> None:
        """The connection ended: nothing in flight can be answered any more."""
        self.sequencer.reset()
        self.active_response_id = None
        if self._audio is not None:
            self._stop_item(self._audio)

    # -- server side -----------------------------------------------------------------------------------------

    def receive_event(self, event: dict[str, Any], now: float) -> None:
        """One server event: emits ``*``, its own name, and the derived convenience events.

        A server event whose fields have the wrong types (a bad base64 delta, ``content_index: "zero"``,
        ``usage.input_tokens: "many"``, odd-length PCM) is passed on raw, then reported as an ``error``
        event naming it (code ``invalid_server_event``); the session carries on."""
        kind = event.get("type")
        self._emit("*", event)
        if not isinstance(kind, str):
            self._emit("error", ErrorEvent("server event without a type", "invalid_event", raw=event))
            return
        if kind == "error":
            err = _obj(event.get("error"))
            self._send_all(self.sequencer.error(err))
            self._emit(
                "error",
                ErrorEvent(
                    str(err.get("message", "")),
                    _str_or_none(err.get("code")),
                    str(err.get("type", "error")),
                    _str_or_none(err.get("param")),
                    _str_or_none(err.get("event_id")),
                    raw=event,
                ),
            )
            return
        self._emit(kind, event)
        try:
            view = VIEWS.get(kind)
            if view is not None:
                payload = view[1](event)
                if payload is not None:
                    self._emit(view[0], payload)
            handler = _HANDLERS.get(kind)
            if handler is not None:
                handler(self, event, now)
        except Exception as exc:  # listeners' own errors never get here: the emitter reports those
            self._unreadable(event, exc)

    def receive_audio_delta(
        self, response_id: str, item_id: str, content_index: Any, b64: str | bytes, now: float
    ) -> None:
        """The audio of one ``response.output_audio.delta``; transports call it directly (skipping
        ``receive_event``'s dispatch) when nobody listens to the raw event. This is the hot receive path."""
        fmt = self.session_output_format
        try:
            if item_id in self._interrupted:  # inside: a hostile item_id may be unhashable
                return  # late audio of an item the user interrupted: never play it
            if type(content_index) is not int:
                raise ValueError(f"content_index {content_index!r} is not an integer")
            try:
                raw = b64decode_audio(b64)
            except binascii.Error as exc:
                raise ValueError(f"delta is not valid base64 ({exc})") from None
            size = len(raw)
            if fmt.codec == "pcm16" and size & 1:
                raise InvalidAudioError(f"{size} bytes of PCM16 audio: not a whole number of samples")
        except (ValueError, TypeError) as exc:
            self._unreadable(
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "content_index": content_index,
                },
                exc,
            )
            return
        item = self._audio
        if item is None or item.item_id != item_id or item.content_index != content_index:
            item = self._start_item(item_id, content_index, response_id)
        item.received_bytes += size
        if self.tracker is None:
            item.clock.push(fmt.duration_ms(size), now)
        if self._out_conv is not None:
            raw = self._out_conv.convert(raw)
        if self._framer is None:
            self._emit("audio", AudioEvent(raw, response_id, item_id, content_index))
        else:
            for frame in self._framer.push(raw):
                self._emit("audio", AudioEvent(frame, response_id, item_id, content_index))

    # -- internals -------------------------------------------------------------------------------------------

    def _unreadable(self, event: dict[str, Any], exc: Exception) -> None:
        kind = event.get("type")
        logger.warning("the server sent a %s event that cannot be read: %s", kind, exc)
        self._emit(
            "error",
            ErrorEvent(
                f"the server sent a {kind} event that cannot be read ({type(exc).__name__}: {exc}); ignored",
                "invalid_server_event",
                raw=event,
                exception=exc,
            ),
        )

    def _send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._send(event)

    def _cancel(self) -> None:
        if self.active_response_id is not None and self.sequencer.begin_cancel():
            self._send({"type": "response.cancel"})

    def _heard_ms(self, item: AudioItem, now: float) -> float:
        if self.tracker is not None:
            return self.tracker.played_ms(item.item_id, item.content_index)
        return item.clock.played_ms(now)

    def _is_playing(self, item: AudioItem, now: float) -> bool:
        if not item.done:
            return True
        if self.tracker is not None:
            return self._heard_ms(item, now) + 0.5 < self.session_output_format.duration_ms(
                item.received_bytes
            )
        return item.clock.playing(now)

    def _start_item(self, item_id: str, content_index: int, response_id: str) -> AudioItem:
        if self._audio is not None and not self._audio.done:
            self._flush_output(self._audio)
        key = (item_id, content_index)
        item = self._received.get(key) or AudioItem(item_id, content_index, response_id)
        self._audio = item
        self._received[key] = item
        if len(self._received) > 64:
            del self._received[next(iter(self._received))]
        return item

    def _stop_item(self, item: AudioItem) -> None:
        self._interrupted[item.item_id] = None
        if len(self._interrupted) > self._MAX_INTERRUPTED:
            del self._interrupted[next(iter(self._interrupted))]
        if self._out_conv is not None:
            self._out_conv.reset()
        if self._framer is not None:
            self._framer.reset()
        if self.tracker is not None:
            self.tracker.on_interrupted()
        self._audio = None

    def _flush_output(self, item: AudioItem) -> None:
        tail = self._out_conv.flush() if self._out_conv is not None else b""
        frames = self._framer.push(tail) if self._framer is not None else ([tail] if tail else [])
        if self._framer is not None:
            last = self._framer.flush()
            if last:
                frames.append(last)
        for frame in frames:
            self._emit("audio", AudioEvent(frame, item.response_id, item.item_id, item.content_index))

    def _configure_audio(self) -> None:
        """(Re)builds converters after the session's formats are known or changed."""
        out_fmt = self.output_format or self.session_output_format
        self._out_conv = (
            None
            if out_fmt == self.session_output_format
            else AudioConverter(self.session_output_format, out_fmt)
        )
        in_fmt = self.input_format or self.session_input_format
        self._in_conv = (
            None if in_fmt == self.session_input_format else AudioConverter(in_fmt, self.session_input_format)
        )
        self._framer = None
        if self.output_frame_ms:
            nbytes = out_fmt.bytes_for_ms(self.output_frame_ms)
            self._framer = rtlayer_native.Framer(nbytes, pad_last=True)
        if self.tracker is not None:
            self.tracker.set_audio_format(out_fmt)

    def _on_session(self, event: dict[str, Any], now: float) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            return
        self.config = copy.deepcopy(session)
        audio = _obj(session.get("audio"))
        inp = _obj(audio.get("input"))
        out = _obj(audio.get("output"))
        td = inp.get("turn_detection")
        self.interrupt_response = bool(td.get("interrupt_response", True)) if isinstance(td, dict) else False
        try:
            fin = (
                AudioFormat.from_session(inp.get("format")) if "format" in inp else self.session_input_format
            )
            fout = (
                AudioFormat.from_session(out.get("format")) if "format" in out else self.session_output_format
            )
        except ValueError as exc:
            self._emit(
                "error", ErrorEvent(f"unusable audio format in {event.get('type')}: {exc}", "invalid_format")
            )
            return
        if event.get("type") == "session.created":
            # The server's defaults, from before it read the app's session.update (sent or queued already):
            # the formats that update asked for stand until a session.updated says what the server applied.
            fin = self._requested_input or fin
            fout = self._requested_output or fout
        if (fin, fout) != (self.session_input_format, self.session_output_format):
            self.session_input_format, self.session_output_format = fin, fout
            self._configure_audio()
        if event.get("type") == "session.created" and self._tracing_wanted is not None:
            # Like the official SDKs: ask for tracing once the session exists (unless the app configured it).
            self._send(
                {"type": "session.update", "session": {"type": "realtime", "tracing": self._tracing_wanted}}
            )

    def _on_response_created(self, event: dict[str, Any], now: float) -> None:
        response = _obj(event.get("response"))
        self.active_response_id = str(response.get("id", ""))
        self._send_all(self.sequencer.response_created())
        self._emit("turn_started", TurnStartedEvent(self.active_response_id, response))

    def _on_response_done(self, event: dict[str, Any], now: float) -> None:
        response = _obj(event.get("response"))
        self.active_response_id = None
        usage = usage_of(response)
        self._emit("usage_update", usage)
        self._emit(
            "turn_done",
            TurnDoneEvent(str(response.get("id", "")), str(response.get("status", "")), response, usage),
        )
        self._send_all(self.sequencer.response_done())

    def _on_audio_delta(self, event: dict[str, Any], now: float) -> None:
        delta = event.get("delta")
        if not isinstance(delta, str):
            raise TypeError(f"delta is {type(delta).__name__}, not a base64 string")
        self.receive_audio_delta(
            str(event.get("response_id", "")),
            str(event.get("item_id", "")),
            event.get("content_index") or 0,
            delta,
            now,
        )

    def _on_audio_done(self, event: dict[str, Any], now: float) -> None:
        item = self._audio
        item_id = str(event.get("item_id", ""))
        if item is not None and item.item_id == item_id and not item.done:
            item.done = True
            self._flush_output(item)
        self._emit(
            "audio_done",
            AudioDoneEvent(str(event.get("response_id", "")), item_id, int(event.get("content_index") or 0)),
        )

    def _on_speech_started(self, event: dict[str, Any], now: float) -> None:
        item = self._audio
        if item is not None and self._is_playing(item, now):
            self.interrupt(now, cancel_ongoing_response=not self.interrupt_response)

    def _on_retrievable(self, event: dict[str, Any], now: float) -> None:
        if self.retrieve_items and isinstance(event.get("item_id"), str):
            self._send({"type": "conversation.item.retrieve", "item_id": event["item_id"]})


_HANDLERS: dict[str, Callable[[ClientSession, dict[str, Any], float], None]] = {
    "session.created": ClientSession._on_session,
    "session.updated": ClientSession._on_session,
    "response.created": ClientSession._on_response_created,
    "response.done": ClientSession._on_response_done,
    "response.output_audio.delta": ClientSession._on_audio_delta,
    "response.output_audio.done": ClientSession._on_audio_done,
    "input_audio_buffer.speech_started": ClientSession._on_speech_started,
    "conversation.item.input_audio_transcription.completed": ClientSession._on_retrievable,
    "conversation.item.truncated": ClientSession._on_retrievable,
}
