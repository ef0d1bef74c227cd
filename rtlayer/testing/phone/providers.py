"""The provider's side of each media-stream wire, sans-I/O, written from the providers' documentation.

This is deliberately separate from ``rtlayer.transports.media_stream.dialects`` (the app's side): the
simulator must behave like the provider, so that a mistake in a dialect shows up as a failed call rather than
being mirrored here. Each ``ProviderSide`` builds what the provider sends (opening, media, DTMF, stop, mark
echoes, clear replies) and reads what the app sends, reporting anything the provider would refuse.
"""

from __future__ import annotations

import binascii
import json
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import rtlayer_native

from ...protocol import codec

__all__ = [
    "PROVIDERS",
    "AppAudio",
    "AppClear",
    "AppMark",
    "AppMessage",
    "AppProblem",
    "CallInfo",
    "ProviderSide",
    "provider_side",
]

Frame = str | bytes


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the simulated provider says about the call in its opening messages."""

    call_id: str = "CA00000000000000000000000000000001"
    stream_id: str = "MZ00000000000000000000000000000001"
    from_number: str = "+15550001111"
    to_number: str = "+15550002222"
    custom: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AppAudio:
    """Audio the app sent, decoded to PCM16 little-endian at the provider's rate."""

    pcm16: bytes


@dataclass(frozen=True, slots=True)
class AppMark:
    name: str


@dataclass(frozen=True, slots=True)
class AppClear:
    pass


@dataclass(frozen=True, slots=True)
class AppProblem:
    """Something the provider would refuse or ignore."""

    reason: str


AppMessage = AppAudio | AppMark | AppClear | AppProblem


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _swap(data: bytes) -> bytes:
    samples = array("h")
    samples.frombytes(data)
    samples.byteswap()
    return samples.tobytes()


class ProviderSide:
    """The shared machinery; subclasses name their provider's messages."""

    name: ClassVar[str] = ""
    #: the provider sends back the marks of cleared audio
    returns_marks_on_clear: ClassVar[bool] = True
    #: caller audio per inbound message, in ms
    in_chunk_ms: ClassVar[int] = 20

    def __init__(self, codec: str = "pcmu", rate: int = 8000, big_endian: bool = False) -> None:
        self.codec = codec
        self.rate = rate
        self.big_endian = big_endian
        self.sequence = 0
        self.chunk = 0

    @property
    def pcm_bytes_per_ms(self) -> int:
        return self.rate * 2 // 1000

    def encode(self, pcm16: bytes) -> bytes:
        """Caller PCM16 (little-endian, provider rate) -> the wire's encoding."""
        if self.codec == "pcmu":
            return rtlayer_native.ulaw_encode(pcm16)
        if self.codec == "pcma":
            return rtlayer_native.alaw_encode(pcm16)
        return _swap(pcm16) if self.big_endian else pcm16

    def decode(self, wire: bytes) -> bytes | None:
        """The wire's encoding -> PCM16 little-endian; None when it cannot be (odd L16)."""
        if self.codec == "pcmu":
            return rtlayer_native.ulaw_decode(wire)
        if self.codec == "pcma":
            return rtlayer_native.alaw_decode(wire)
        if len(wire) % 2:
            return None
        return _swap(wire) if self.big_endian else wire

    def _next_seq(self) -> int:
        self.sequence += 1
        return self.sequence

    # the provider's messages
    def opening(self, call: CallInfo) -> list[Frame]:
        raise NotImplementedError

    def media(self, call: CallInfo, pcm16: bytes, timestamp_ms: int) -> Frame:
        raise NotImplementedError

    def dtmf(self, call: CallInfo, digit: str) -> Frame:
        raise NotImplementedError

    def stop(self, call: CallInfo) -> Frame | None:
        return None

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        raise NotImplementedError

    def clear_reply(self, call: CallInfo) -> Frame | None:
        return None

    # the app's messages
    def parse(self, message: Frame) -> AppMessage:
        if isinstance(message, bytes):
            return AppProblem(f"a binary frame of {len(message)} B (this provider takes JSON text)")
        try:
            event = codec.loads(
                message
            )  # ValueError for bad JSON or nesting past MAX_DEPTH (no RecursionError)
        except ValueError:
            return AppProblem("a text frame that is not JSON")
        if not isinstance(event, dict):
            return AppProblem("a JSON value that is not an object")
        return self._parse(event)

    def _parse(self, event: dict[str, Any]) -> AppMessage:
        raise NotImplementedError

    def _payload(self, b64: Any) -> AppMessage:
        if not isinstance(b64, str):
            return AppProblem("media without a payload")
        try:
            wire = binascii.a2b_base64(b64, strict_mode=True)
        except (binascii.Error, ValueError):
            return AppProblem("a payload that is not base64")
        pcm = self.decode(wire)
        if pcm is None:
            return AppProblem(f"an L16 payload of {len(wire)} B (odd)")
        problem = self.check_out_size(len(wire))
        return AppProblem(problem) if problem else AppAudio(pcm)

    def check_out_size(self, nbytes: int) -> str | None:
        return None


class JsonSide(ProviderSide):
    """The providers whose messages are JSON objects named by ``event`` (Twilio, Telnyx, Plivo, Exotel).

    Their messages have one envelope: ``event``, a sequence number, the stream id and one body member; a
    subclass names the envelope's keys (``sequence_key``, ``stream_key``), whether its sequence numbers are
    text, and where the stream id stands in each kind of message (``stream_at``: its position among the
    members, after ``event`` and the sequence number by default), and builds the bodies that differ. The app's
    messages are read the same way: its audio, playback marker and clear, each named by its ``event``."""

    sequence_key: ClassVar[str] = "sequenceNumber"
    sequence_as_text: ClassVar[bool] = False
    stream_key: ClassVar[str] = "streamSid"
    #: the position of the stream id among a message's members, by kind (default 2: after the sequence)
    stream_at: ClassVar[Mapping[str, int]] = {}
    #: members of a DTMF body besides the digit, before it
    dtmf_members: ClassVar[Mapping[str, str]] = {}
    #: the app's messages name the stream, and the provider refuses one for another stream (Twilio)
    checks_stream: ClassVar[bool] = False
    #: the ``event`` of the app's audio, playback marker and clear
    audio_event: ClassVar[str] = "media"
    mark_event: ClassVar[str] = "mark"
    clear_event: ClassVar[str] = "clear"

    _stream_id: str | None = None

    def _message(self, kind: str, call: CallInfo, body_key: str | None = None, body: Any = None) -> str:
        """One message in this provider's envelope, with the next sequence number."""
        seq = self._next_seq()
        members: list[tuple[str, Any]] = [
            ("event", kind),
            (self.sequence_key, str(seq) if self.sequence_as_text else seq),
        ]
        if body_key is not None:
            members.append((body_key, body))
        members.insert(self.stream_at.get(kind, 2), (self.stream_key, call.stream_id))
        return _dumps(dict(members))

    def _opening(
        self, call: CallInfo, connected: Mapping[str, Any] | None, start: dict[str, Any]
    ) -> list[Frame]:
        self._stream_id = call.stream_id
        frames: list[Frame] = [] if connected is None else [_dumps({"event": "connected", **connected})]
        return [*frames, self._message("start", call, "start", start)]

    def media(self, call: CallInfo, pcm16: bytes, timestamp_ms: int) -> Frame:
        self.chunk += 1
        return self._message("media", call, "media", self._media_body(_b64(self.encode(pcm16)), timestamp_ms))

    def _media_body(self, payload: str, timestamp_ms: int) -> dict[str, Any]:
        return {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str(timestamp_ms),
            "payload": payload,
        }

    def dtmf(self, call: CallInfo, digit: str) -> Frame:
        return self._message("dtmf", call, "dtmf", {**self.dtmf_members, "digit": digit})

    def _parse(self, event: dict[str, Any]) -> AppMessage:
        kind = event.get("event")
        if self.checks_stream and kind in (self.audio_event, self.mark_event, self.clear_event):
            if event.get(self.stream_key) != self._stream_id:
                return AppProblem(f"a {kind} message for {self.stream_key} {event.get(self.stream_key)!r}")
        if kind == self.audio_event:
            return self._app_audio(event)
        if kind == self.mark_event:
            name = self._mark_name(event)
            return AppMark(name) if isinstance(name, str) else AppProblem(f"a {kind} without a name")
        if kind == self.clear_event:
            return AppClear()
        return AppProblem(f"an unknown event {kind!r}")

    def _app_audio(self, event: dict[str, Any]) -> AppMessage:
        return self._payload(_members(event.get("media")).get("payload"))

    def _mark_name(self, event: dict[str, Any]) -> Any:
        return _members(event.get("mark")).get("name")


class MarkSide(JsonSide):
    """The ``mark`` family (Twilio, Telnyx, Exotel): marks echoed as ``mark``; the app sends ``media``,
    ``mark`` and ``clear``."""

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        return self._message("mark", call, "mark", {"name": name})


class TwilioSide(MarkSide):
    name = "twilio"
    sequence_as_text = True
    stream_at: ClassVar[Mapping[str, int]] = {"start": 3, "media": 3, "dtmf": 1}
    dtmf_members: ClassVar[Mapping[str, str]] = {"track": "inbound_track"}
    checks_stream = True

    def opening(self, call: CallInfo) -> list[Frame]:
        start = {
            "accountSid": "AC00000000000000000000000000000001",
            "streamSid": call.stream_id,
            "callSid": call.call_id,
            "tracks": ["inbound"],
            "customParameters": dict(call.custom),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        return self._opening(call, {"protocol": "Call", "version": "1.0.0"}, start)

    def stop(self, call: CallInfo) -> Frame | None:
        return self._message(
            "stop",
            call,
            "stop",
            {"accountSid": "AC00000000000000000000000000000001", "callSid": call.call_id},
        )


class TelnyxSide(MarkSide):
    name = "telnyx"
    sequence_key = "sequence_number"
    sequence_as_text = True
    stream_key = "stream_id"
    stream_at: ClassVar[Mapping[str, int]] = {"start": 3, "media": 3, "dtmf": 1, "stop": 3}

    _ENCODINGS: ClassVar[dict[str, str]] = {"pcmu": "PCMU", "pcma": "PCMA", "pcm16": "L16"}

    def __init__(self, codec: str = "pcmu", rate: int = 8000, big_endian: bool = True) -> None:
        super().__init__(codec, rate, big_endian=codec == "pcm16")

    def opening(self, call: CallInfo) -> list[Frame]:
        start = {
            "user_id": "00000000-0000-0000-0000-000000000001",
            "call_control_id": call.call_id,
            "call_session_id": "00000000-0000-0000-0000-000000000002",
            "from": call.from_number,
            "to": call.to_number,
            "custom_parameters": dict(call.custom),
            "media_format": {
                "encoding": self._ENCODINGS[self.codec],
                "sample_rate": self.rate,
                "channels": 1,
            },
        }
        return self._opening(call, {"version": "1.0.0"}, start)

    def stop(self, call: CallInfo) -> Frame | None:
        stop = {"user_id": "00000000-0000-0000-0000-000000000001", "call_control_id": call.call_id}
        return self._message("stop", call, "stop", stop)


class PlivoSide(JsonSide):
    name = "plivo"
    returns_marks_on_clear = False
    stream_key = "streamId"
    audio_event, mark_event, clear_event = "playAudio", "checkpoint", "clearAudio"

    def __init__(self, codec: str = "pcm16", rate: int = 8000, big_endian: bool = False) -> None:
        super().__init__(codec, rate, False)

    def _content_type(self) -> str:
        return "audio/x-mulaw" if self.codec == "pcmu" else "audio/x-l16"

    def opening(self, call: CallInfo) -> list[Frame]:
        start = {
            "callId": call.call_id,
            "streamId": call.stream_id,
            "accountId": "MA0000000000000001",
            "from": call.from_number,
            "to": call.to_number,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": self._content_type(), "sampleRate": self.rate},
            "customParameters": dict(call.custom),
        }
        return [_dumps({"event": "start", "sequenceNumber": 0, "start": start})]

    def _media_body(self, payload: str, timestamp_ms: int) -> dict[str, Any]:
        return {"track": "inbound", "timestamp": str(timestamp_ms), "chunk": self.chunk, "payload": payload}

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        return self._message("playedStream", call, "name", name)

    def clear_reply(self, call: CallInfo) -> Frame | None:
        return self._message("clearedAudio", call)

    def _app_audio(self, event: dict[str, Any]) -> AppMessage:
        media = _members(event.get("media"))
        if media.get("contentType") != self._content_type() or media.get("sampleRate") != self.rate:
            return AppProblem(f"playAudio as {media.get('contentType')} at {media.get('sampleRate')}")
        return self._payload(media.get("payload"))

    def _mark_name(self, event: dict[str, Any]) -> Any:
        return event.get("name")


class ExotelSide(MarkSide):
    name = "exotel"
    in_chunk_ms = 100
    sequence_key = "sequence_number"
    stream_key = "stream_sid"
    dtmf_members: ClassVar[Mapping[str, str]] = {"duration": "120"}

    def __init__(self, codec: str = "pcm16", rate: int = 8000, big_endian: bool = False) -> None:
        super().__init__("pcm16", rate, False)

    def opening(self, call: CallInfo) -> list[Frame]:
        start = {
            "stream_sid": call.stream_id,
            "call_sid": call.call_id,
            "account_sid": "exotel-account",
            "from": call.from_number,
            "to": call.to_number,
            "custom_parameters": dict(call.custom),
            "media_format": {"encoding": "base64", "sample_rate": str(self.rate), "bit_rate": "128kbps"},
        }
        return self._opening(call, {}, start)

    def _media_body(self, payload: str, timestamp_ms: int) -> dict[str, Any]:
        return {"chunk": self.chunk, "timestamp": str(timestamp_ms), "payload": payload}

    def stop(self, call: CallInfo) -> Frame | None:
        return self._message("stop", call, "stop", {"call_sid": call.call_id, "reason": "callended"})

    def check_out_size(self, nbytes: int) -> str | None:
        return (
            None if nbytes and nbytes % 320 == 0 else f"a media payload of {nbytes} B (not a multiple of 320)"
        )


class VonageSide(ProviderSide):
    name = "vonage"
    returns_marks_on_clear = False

    def __init__(self, codec: str = "pcm16", rate: int = 16000, big_endian: bool = False) -> None:
        super().__init__("pcm16", rate, False)

    @property
    def frame_bytes(self) -> int:
        return self.rate * 2 // 50

    def opening(self, call: CallInfo) -> list[Frame]:
        return [
            _dumps(
                {
                    "event": "websocket:connected",
                    "content-type": f"audio/l16;rate={self.rate}",
                    "uuid": call.call_id,
                    "from": call.from_number,
                    "to": call.to_number,
                    **call.custom,
                }
            )
        ]

    def media(self, call: CallInfo, pcm16: bytes, timestamp_ms: int) -> Frame:
        return pcm16

    def dtmf(self, call: CallInfo, digit: str) -> Frame:
        return _dumps({"event": "websocket:dtmf", "digit": digit, "duration": 260})

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        return _dumps({"event": "websocket:notify", "payload": {"name": name}})

    def clear_reply(self, call: CallInfo) -> Frame | None:
        return _dumps({"event": "websocket:cleared"})

    def parse(self, message: Frame) -> AppMessage:
        if isinstance(message, bytes):
            if len(message) != self.frame_bytes:
                return AppProblem(
                    f"a binary frame of {len(message)} B (Vonage takes exactly {self.frame_bytes} B)"
                )
            return AppAudio(message)
        return super().parse(message)

    def _parse(self, event: dict[str, Any]) -> AppMessage:
        action = event.get("action")
        if action == "notify":
            payload = event.get("payload")
            name = payload.get("name") if isinstance(payload, dict) else None
            return AppMark(name) if isinstance(name, str) else AppProblem("a notify without payload.name")
        if action == "clear":
            return AppClear()
        return AppProblem(f"an unknown action {action!r}")


PROVIDERS: dict[str, type[ProviderSide]] = {
    p.name: p for p in (TwilioSide, TelnyxSide, PlivoSide, ExotelSide, VonageSide)
}


def provider_side(name: str, codec: str | None = None, rate: int | None = None) -> ProviderSide:
    """The provider side for ``name``, with its documented default format unless told otherwise."""
    try:
        cls = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}: expected one of {', '.join(PROVIDERS)}") from None
    defaults = {
        "twilio": ("pcmu", 8000),
        "telnyx": ("pcmu", 8000),
        "plivo": ("pcm16", 8000),
        "exotel": ("pcm16", 8000),
        "vonage": ("pcm16", 16000),
    }[name]
    return cls(codec or defaults[0], rate or (8000 if codec in ("pcmu", "pcma") else defaults[1]))


def _members(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else no members (an app may send any JSON type where one is expected)."""
    return value if isinstance(value, dict) else {}
