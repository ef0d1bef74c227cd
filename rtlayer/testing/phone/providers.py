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
            event = json.loads(message)
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


class TwilioSide(ProviderSide):
    name = "twilio"

    def opening(self, call: CallInfo) -> list[Frame]:
        start = {
            "accountSid": "AC00000000000000000000000000000001",
            "streamSid": call.stream_id,
            "callSid": call.call_id,
            "tracks": ["inbound"],
            "customParameters": dict(call.custom),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        self._stream_id = call.stream_id
        return [
            _dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            _dumps(
                {
                    "event": "start",
                    "sequenceNumber": str(self._next_seq()),
                    "start": start,
                    "streamSid": call.stream_id,
                }
            ),
        ]

    def media(self, call: CallInfo, pcm16: bytes, timestamp_ms: int) -> Frame:
        self.chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str(timestamp_ms),
            "payload": _b64(self.encode(pcm16)),
        }
        return _dumps(
            {
                "event": "media",
                "sequenceNumber": str(self._next_seq()),
                "media": media,
                "streamSid": call.stream_id,
            }
        )

    def dtmf(self, call: CallInfo, digit: str) -> Frame:
        return _dumps(
            {
                "event": "dtmf",
                "streamSid": call.stream_id,
                "sequenceNumber": str(self._next_seq()),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def stop(self, call: CallInfo) -> Frame | None:
        stop = {"accountSid": "AC00000000000000000000000000000001", "callSid": call.call_id}
        return _dumps(
            {
                "event": "stop",
                "sequenceNumber": str(self._next_seq()),
                "streamSid": call.stream_id,
                "stop": stop,
            }
        )

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        return _dumps(
            {
                "event": "mark",
                "sequenceNumber": str(self._next_seq()),
                "streamSid": call.stream_id,
                "mark": {"name": name},
            }
        )

    def _parse(self, event: dict[str, Any]) -> AppMessage:
        kind = event.get("event")
        if kind in ("media", "mark", "clear") and event.get("streamSid") != self._stream_id:
            return AppProblem(f"a {kind} message for streamSid {event.get('streamSid')!r}")
        if kind == "media":
            return self._payload((event.get("media") or {}).get("payload"))
        if kind == "mark":
            name = (event.get("mark") or {}).get("name")
            return AppMark(name) if isinstance(name, str) else AppProblem("a mark without a name")
        if kind == "clear":
            return AppClear()
        return AppProblem(f"an unknown event {kind!r}")

    _stream_id: str | None = None


class TelnyxSide(ProviderSide):
    name = "telnyx"

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
        return [
            _dumps({"event": "connected", "version": "1.0.0"}),
            _dumps(
                {
                    "event": "start",
                    "sequence_number": str(self._next_seq()),
                    "start": start,
                    "stream_id": call.stream_id,
                }
            ),
        ]

    def media(self, call: CallInfo, pcm16: bytes, timestamp_ms: int) -> Frame:
        self.chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str(timestamp_ms),
            "payload": _b64(self.encode(pcm16)),
        }
        return _dumps(
            {
                "event": "media",
                "sequence_number": str(self._next_seq()),
                "media": media,
                "stream_id": call.stream_id,
            }
        )

    def dtmf(self, call: CallInfo, digit: str) -> Frame:
        return _dumps(
            {
                "event": "dtmf",
                "stream_id": call.stream_id,
                "sequence_number": str(self._next_seq()),
                "dtmf": {"digit": digit},
            }
        )

    def stop(self, call: CallInfo) -> Frame | None:
        stop = {"user_id": "00000000-0000-0000-0000-000000000001", "call_control_id": call.call_id}
        return _dumps(
            {
                "event": "stop",
                "sequence_number": str(self._next_seq()),
                "stop": stop,
                "stream_id": call.stream_id,
            }
        )

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        return _dumps(
            {
                "event": "mark",
                "sequence_number": str(self._next_seq()),
                "stream_id": call.stream_id,
                "mark": {"name": name},
            }
        )

    def _parse(self, event: dict[str, Any]) -> AppMessage:
        kind = event.get("event")
        if kind == "media":
            return self._payload((event.get("media") or {}).get("payload"))
        if kind == "mark":
            name = (event.get("mark") or {}).get("name")
            return AppMark(name) if isinstance(name, str) else AppProblem("a mark without a name")
        if kind == "clear":
            return AppClear()
        return AppProblem(f"an unknown event {kind!r}")


class PlivoSide(ProviderSide):
    name = "plivo"
    returns_marks_on_clear = False

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

    def media(self, call: CallInfo, pcm16: bytes, timestamp_ms: int) -> Frame:
        self.chunk += 1
        media = {
            "track": "inbound",
            "timestamp": str(timestamp_ms),
            "chunk": self.chunk,
            "payload": _b64(self.encode(pcm16)),
        }
        return _dumps(
            {"event": "media", "sequenceNumber": self._next_seq(), "streamId": call.stream_id, "media": media}
        )

    def dtmf(self, call: CallInfo, digit: str) -> Frame:
        return _dumps(
            {
                "event": "dtmf",
                "sequenceNumber": self._next_seq(),
                "streamId": call.stream_id,
                "dtmf": {"digit": digit},
            }
        )

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        return _dumps(
            {
                "event": "playedStream",
                "sequenceNumber": self._next_seq(),
                "streamId": call.stream_id,
                "name": name,
            }
        )

    def clear_reply(self, call: CallInfo) -> Frame | None:
        return _dumps(
            {"event": "clearedAudio", "sequenceNumber": self._next_seq(), "streamId": call.stream_id}
        )

    def _parse(self, event: dict[str, Any]) -> AppMessage:
        kind = event.get("event")
        if kind == "playAudio":
            media = event.get("media") or {}
            if media.get("contentType") != self._content_type() or media.get("sampleRate") != self.rate:
                return AppProblem(f"playAudio as {media.get('contentType')} at {media.get('sampleRate')}")
            return self._payload(media.get("payload"))
        if kind == "checkpoint":
            name = event.get("name")
            return AppMark(name) if isinstance(name, str) else AppProblem("a checkpoint without a name")
        if kind == "clearAudio":
            return AppClear()
        return AppProblem(f"an unknown event {kind!r}")


class ExotelSide(ProviderSide):
    name = "exotel"
    in_chunk_ms = 100

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
        return [
            _dumps({"event": "connected"}),
            _dumps(
                {
                    "event": "start",
                    "sequence_number": self._next_seq(),
                    "stream_sid": call.stream_id,
                    "start": start,
                }
            ),
        ]

    def media(self, call: CallInfo, pcm16: bytes, timestamp_ms: int) -> Frame:
        self.chunk += 1
        media = {"chunk": self.chunk, "timestamp": str(timestamp_ms), "payload": _b64(pcm16)}
        return _dumps(
            {
                "event": "media",
                "sequence_number": self._next_seq(),
                "stream_sid": call.stream_id,
                "media": media,
            }
        )

    def dtmf(self, call: CallInfo, digit: str) -> Frame:
        return _dumps(
            {
                "event": "dtmf",
                "sequence_number": self._next_seq(),
                "stream_sid": call.stream_id,
                "dtmf": {"duration": "120", "digit": digit},
            }
        )

    def stop(self, call: CallInfo) -> Frame | None:
        return _dumps(
            {
                "event": "stop",
                "sequence_number": self._next_seq(),
                "stream_sid": call.stream_id,
                "stop": {"call_sid": call.call_id, "reason": "callended"},
            }
        )

    def mark_echo(self, call: CallInfo, name: str) -> Frame:
        return _dumps(
            {
                "event": "mark",
                "sequence_number": self._next_seq(),
                "stream_sid": call.stream_id,
                "mark": {"name": name},
            }
        )

    def check_out_size(self, nbytes: int) -> str | None:
        return (
            None if nbytes and nbytes % 320 == 0 else f"a media payload of {nbytes} B (not a multiple of 320)"
        )

    def _parse(self, event: dict[str, Any]) -> AppMessage:
        kind = event.get("event")
        if kind == "media":
            return self._payload((event.get("media") or {}).get("payload"))
        if kind == "mark":
            name = (event.get("mark") or {}).get("name")
            return AppMark(name) if isinstance(name, str) else AppProblem("a mark without a name")
        if kind == "clear":
            return AppClear()
        return AppProblem(f"an unknown event {kind!r}")


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
