"""One sans-I/O dialect per provider: provider frames in, common events out; app frames built.

Each dialect knows one provider's wire (from its documentation): the opening messages, where the call's
metadata is, how audio is carried (base64 in JSON, or binary), what acknowledges playback, how to clear the
provider's queue, and the outbound frame size. It keeps only what the wire needs (the stream id to echo, the
format from ``start``) and never raises on what the provider sends: a frame it cannot use becomes a
``ProviderProblem`` the bridge counts.

=========  ==================  =======================  ======================  =======================
provider   opening             audio in / out           playback ack            clear
=========  ==================  =======================  ======================  =======================
twilio     connected, start    mu-law 8k, 160 B JSON    mark -> mark            clear (marks returned)
telnyx     connected, start    PCMU/PCMA/L16 BE, JSON   mark -> mark            clear (marks returned)
plivo      start               L16 LE or mu-law, JSON   checkpoint->playedStream  clearAudio->clearedAudio
exotel     connected, start    L16 LE 8k, JSON,         mark -> mark            clear (marks returned)
                               out multiples of 320 B
vonage     websocket:connected L16 LE 16k binary 640 B  notify->websocket:notify  clear->websocket:cleared
=========  ==================  =======================  ======================  =======================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

from ...audio import PCMU, AudioFormat
from ...exceptions import InvalidAudioError
from ...protocol.codec import (
    TooDeep,
    b64decode_audio,
    b64encode_audio,
    check_depth,
    dumps,
    loads_without_depth_check,
)
from .events import (
    CallStart,
    CallStop,
    ClearConfirmed,
    Connected,
    DtmfEvent,
    MediaIn,
    PlaybackAck,
    ProviderEvent,
    ProviderFormat,
    ProviderProblem,
)

__all__ = [
    "DIALECTS",
    "Dialect",
    "ExotelDialect",
    "PlivoDialect",
    "TelnyxDialect",
    "TwilioDialect",
    "VonageDialect",
    "dialect_for",
]

Frame = str | bytes
_BINARY = (bytes, bytearray, memoryview)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _dumps(event: Mapping[str, Any]) -> str:
    return dumps(event)


class Dialect:
    """The shared shape; subclasses fill in their provider's names (see the module's table)."""

    name: ClassVar[str] = ""
    #: the provider returns the marks of cleared audio (Twilio, Telnyx, Exotel)
    marks_returned_on_clear: ClassVar[bool] = False
    #: the provider confirms a clear with a message (Plivo, Vonage)
    confirms_clear: ClassVar[bool] = False
    #: audio travels in binary frames (Vonage); the other frames are JSON text
    binary_audio: ClassVar[bool] = False
    #: outbound audio per frame, in ms (the bridge cuts the model's audio to this)
    out_frame_ms: ClassVar[int] = 20

    def __init__(self, format: ProviderFormat | None = None) -> None:
        #: what the provider speaks; set from its start message when it says (else the default)
        self.format: ProviderFormat = format or self.default_format()
        self.started = False
        self.stream_id: str | None = None
        self._media_prefix = ""
        self._mark_prefix = ""
        #: L16 payloads must hold whole samples (set with the format at ``start``)
        self._whole_samples = False

    @classmethod
    def default_format(cls) -> ProviderFormat:
        return ProviderFormat(PCMU)

    @property
    def out_frame_bytes(self) -> int:
        return self.format.audio.bytes_for_ms(self.out_frame_ms)

    # -- provider -> app ------------------------------------------------------------------------------------

    def receive(self, message: Frame) -> list[ProviderEvent]:
        """One frame from the provider; never raises (bad frames become ``ProviderProblem``)."""
        if type(message) is not str:  # text first: the JSON providers' every frame (a cheaper test)
            if isinstance(message, _BINARY):
                return self._receive_binary(bytes(message))
            if not isinstance(message, str):
                return [ProviderProblem("not_a_message", f"a {type(message).__name__}, not text or bytes")]
        try:
            # The depth check waits until a frame is known not to be media or a playback ack: those two
            # paths read known keys and never print, keep or pass on a value they did not check the type of.
            event = loads_without_depth_check(message)
        except ValueError as exc:
            return [ProviderProblem("not_json", f"a text frame that is not JSON: {exc}")]
        if type(event) is not dict:  # the parsers build plain dicts
            return [ProviderProblem("not_an_object", f"a JSON {type(event).__name__}, not an object")]
        return self._receive_event(event)

    def _receive_checked(self, event: dict[str, Any]) -> list[ProviderEvent]:
        """Any frame but media and acks: its depth checked first (it may be printed, kept or handed to the app)."""
        try:
            check_depth(event)
        except TooDeep as exc:
            return [ProviderProblem("too_deep", f"a message {exc}")]
        return self._receive_rare(event)

    def _receive_rare(self, event: dict[str, Any]) -> list[ProviderEvent]:
        raise NotImplementedError

    def _receive_binary(self, data: bytes) -> list[ProviderEvent]:
        return [
            ProviderProblem("binary_frame", f"a binary frame of {len(data)} B where JSON text was expected")
        ]

    def _receive_event(self, event: dict[str, Any]) -> list[ProviderEvent]:
        """A parsed frame (not yet checked for depth: see ``receive``)."""
        return self._receive_checked(event)

    def _start(self, start: CallStart) -> list[ProviderEvent]:
        if self.started:
            return [ProviderProblem("second_start", "a second start message")]
        self.started = True
        self.stream_id = start.stream_id
        self.format = start.format
        self._whole_samples = start.format.audio.codec == "pcm16"
        self._media_prefix = self._build_media_prefix()
        self._mark_prefix = self._build_mark_prefix()
        return [start]

    def _build_media_prefix(self) -> str:
        """The JSON of an outbound media frame up to its base64 payload (which needs no escaping): the hot
        path builds each frame by concatenation, like ``ClientSession.encode_audio``."""
        return ""

    def _build_mark_prefix(self) -> str:
        return ""

    def bridge_mark(self, name: str) -> Frame:
        """``mark(name)`` for the bridge's own marker names (``"<generation>.<sequence>"``, ASCII digits, no
        escaping needed): built by concatenation on the hot path where the provider's mark allows it."""
        if self._mark_prefix:
            return self._mark_prefix + '"' + name + '"}}'
        return self.mark(name)

    def _media_frame(self, payload: bytes) -> str:
        return self._media_prefix + b64encode_audio(payload) + '"}}'

    def _unknown(self, event: dict[str, Any]) -> list[ProviderEvent]:
        kind = event.get("event")
        return [ProviderProblem("unknown_event", f"an unknown event {str(kind)[:40]!r}")]

    # -- app -> provider ------------------------------------------------------------------------------------

    def audio(self, payload: bytes) -> Frame:
        """One outbound frame of audio (already in the provider's format and byte order)."""
        raise NotImplementedError

    def mark(self, name: str) -> Frame:
        """The playback marker the provider echoes once the audio sent before it has played."""
        raise NotImplementedError

    def clear(self) -> Frame:
        """Drop the audio the provider has queued."""
        raise NotImplementedError

    def _b64(self, payload: bytes) -> str:
        return b64encode_audio(payload)


class StartKeys(NamedTuple):
    """Where a JSON provider's ``start`` keeps the call's metadata."""

    call_id: str
    stream_id: str
    custom: str
    format: str


class JsonDialect(Dialect):
    """The providers whose every message is a JSON object named by ``event`` (Twilio, Telnyx, Plivo, Exotel).

    Their ``media``, ``start``, ``dtmf`` and ``stop`` have one shape; a subclass names where its ``start``
    keeps the call's metadata, reads its format, and handles its own playback acknowledgement (``ack_event``,
    ``_ack``) and clear messages (``_receive_other``)."""

    start_keys: ClassVar[StartKeys]
    #: the event that acknowledges playback (answered by ``_ack``): the second most frequent, checked second
    ack_event: ClassVar[str]
    #: the stream id is read at the message's top level before ``start`` (Telnyx documents it there)
    stream_id_at_top: ClassVar[bool] = False

    def _receive_event(self, event: dict[str, Any]) -> list[ProviderEvent]:
        kind = event.get("event")
        if kind == "media":  # fifty a second each way (with the acks): no helper calls
            if not self.started:
                return [ProviderProblem("media_before_start", "media before the start message")]
            media = event.get("media")
            b64 = media.get("payload") if type(media) is dict else None
            if type(b64) is not str:
                return [ProviderProblem("missing_payload", "a media message without a payload string")]
            try:
                audio = b64decode_audio(b64)
            except ValueError as exc:  # binascii.Error included
                return [ProviderProblem("bad_base64", f"a media payload that is not base64: {exc}")]
            if len(audio) & 1 and self._whole_samples:
                return [ProviderProblem("odd_pcm", f"an L16 payload of {len(audio)} B (odd)")]
            try:  # Twilio's is a string of digits
                timestamp: int | None = int(media.get("timestamp"))  # type: ignore[union-attr]
            except (TypeError, ValueError, OverflowError):
                timestamp = None
            return [MediaIn(audio, timestamp)]
        if kind == self.ack_event:
            return self._ack(event)
        return self._receive_checked(event)

    def _receive_rare(self, event: dict[str, Any]) -> list[ProviderEvent]:
        kind = event.get("event")
        if kind == "start":
            return self._on_start(event, _obj(event.get("start")))
        if kind == "dtmf":
            return _dtmf(_obj(event.get("dtmf")))
        if kind == "stop":
            return [CallStop(self._stop_reason(event))]
        return self._receive_other(kind, event)

    def _ack(self, event: dict[str, Any]) -> list[ProviderEvent]:
        """The provider's playback acknowledgement (``ack_event``)."""
        raise NotImplementedError

    def _receive_other(self, kind: Any, event: dict[str, Any]) -> list[ProviderEvent]:
        return self._unknown(event)

    def _on_start(self, event: dict[str, Any], start: dict[str, Any]) -> list[ProviderEvent]:
        keys = self.start_keys
        try:
            fmt = self._start_format(_obj(start.get(keys.format)))
        except InvalidAudioError as exc:
            return [ProviderProblem("bad_format", f"unsupported {keys.format}: {exc}")]
        places = (event, start) if self.stream_id_at_top else (start, event)
        return self._start(
            CallStart(
                self.name,
                _str(start.get(keys.call_id)),
                _str(places[0].get(keys.stream_id) or places[1].get(keys.stream_id)),
                _str(start.get("from")),
                _str(start.get("to")),
                dict(_obj(self._custom_parameters(event, start))),
                fmt,
                event,
            )
        )

    def _start_format(self, fmt: dict[str, Any]) -> ProviderFormat:
        """The format ``start`` announces (raises ``InvalidAudioError`` for one the bridge cannot take)."""
        raise NotImplementedError

    def _custom_parameters(self, event: dict[str, Any], start: dict[str, Any]) -> Any:
        return start.get(self.start_keys.custom)

    def _stop_reason(self, event: dict[str, Any]) -> str:
        return "stop"


class MarkDialect(JsonDialect):
    """The ``mark`` family (Twilio, Telnyx, Exotel): ``connected`` then ``start``, ``mark`` echoed after
    playback, ``clear`` answered by the marks of the cleared audio; the outbound messages differ only in the
    stream id they carry (``stream_key``, none for Telnyx)."""

    marks_returned_on_clear = True
    #: the key of the stream id in outbound messages (None: they carry none)
    stream_key: ClassVar[str | None] = None

    ack_event = "mark"

    def _ack(self, event: dict[str, Any]) -> list[ProviderEvent]:
        mark = event.get("mark")
        name = mark.get("name") if type(mark) is dict else None
        return [PlaybackAck(name)] if type(name) is str else _ack_named(name)

    def _receive_other(self, kind: Any, event: dict[str, Any]) -> list[ProviderEvent]:
        if kind == "connected":
            return [Connected()]
        return self._unknown(event)

    def _stream_field(self) -> str:
        """The outbound messages' stream id member, JSON text with its comma (empty when they carry none)."""
        return "" if self.stream_key is None else f'"{self.stream_key}":' + dumps(self.stream_id) + ","

    def _message(self, kind: str, **members: Any) -> str:
        stream = {} if self.stream_key is None else {self.stream_key: self.stream_id}
        return _dumps({"event": kind, **stream, **members})

    def _build_media_prefix(self) -> str:
        return '{"event":"media",' + self._stream_field() + '"media":{"payload":"'

    def _build_mark_prefix(self) -> str:
        return '{"event":"mark",' + self._stream_field() + '"mark":{"name":'

    def audio(self, payload: bytes) -> Frame:
        return self._media_frame(payload)

    def mark(self, name: str) -> Frame:
        return self._message("mark", mark={"name": name})

    def clear(self) -> Frame:
        return self._message("clear")


class TwilioDialect(MarkDialect):
    """Twilio Media Streams (bidirectional ``<Connect><Stream>``): mu-law 8 kHz, 20 ms, JSON."""

    name = "twilio"
    start_keys = StartKeys("callSid", "streamSid", "customParameters", "mediaFormat")
    stream_key = "streamSid"

    def _start_format(self, fmt: dict[str, Any]) -> ProviderFormat:
        if fmt and (fmt.get("encoding") != "audio/x-mulaw" or _int(fmt.get("sampleRate")) != 8000):
            raise InvalidAudioError(str(fmt))
        return ProviderFormat(PCMU)


_TELNYX_CODECS = {"PCMU": "pcmu", "PCMA": "pcma", "L16": "pcm16"}


class TelnyxDialect(MarkDialect):
    """Telnyx media streaming: PCMU, PCMA or L16 (big-endian, 8/16 kHz), 20 ms, JSON."""

    name = "telnyx"
    start_keys = StartKeys("call_control_id", "stream_id", "custom_parameters", "media_format")
    stream_id_at_top = True

    def _start_format(self, fmt: dict[str, Any]) -> ProviderFormat:
        codec = _TELNYX_CODECS.get(str(fmt.get("encoding", "PCMU")))
        if codec is None:
            raise InvalidAudioError(f"encoding {fmt.get('encoding')!r}")
        audio = AudioFormat(codec, _int(fmt.get("sample_rate")) or 8000)  # type: ignore[arg-type]
        return ProviderFormat(audio, big_endian=codec == "pcm16")


class PlivoDialect(JsonDialect):
    """Plivo audio streams: ``audio/x-l16`` (little-endian, 8/16 kHz) or ``audio/x-mulaw``, JSON."""

    name = "plivo"
    confirms_clear = True
    start_keys = StartKeys("callId", "streamId", "customParameters", "mediaFormat")

    @classmethod
    def default_format(cls) -> ProviderFormat:
        return ProviderFormat(AudioFormat("pcm16", 8000))

    ack_event = "playedStream"

    def _ack(self, event: dict[str, Any]) -> list[ProviderEvent]:
        name = event.get("name")
        return [PlaybackAck(name)] if type(name) is str else _ack_named(name)

    def _receive_other(self, kind: Any, event: dict[str, Any]) -> list[ProviderEvent]:
        if kind == "clearedAudio":
            return [ClearConfirmed()]
        return self._unknown(event)

    def _start_format(self, fmt: dict[str, Any]) -> ProviderFormat:
        encoding = str(fmt.get("encoding", "audio/x-l16"))
        if encoding == "audio/x-mulaw":
            return ProviderFormat(PCMU)
        if encoding == "audio/x-l16":
            return ProviderFormat(AudioFormat("pcm16", _int(fmt.get("sampleRate")) or 8000))
        raise InvalidAudioError(f"encoding {encoding!r}")

    def _custom_parameters(self, event: dict[str, Any], start: dict[str, Any]) -> Any:
        return start.get(self.start_keys.custom) or event.get("extra_headers")

    def _content_type(self) -> str:
        audio = self.format.audio
        return "audio/x-mulaw" if audio.codec == "pcmu" else "audio/x-l16"

    def audio(self, payload: bytes) -> Frame:
        media = {
            "contentType": self._content_type(),
            "sampleRate": self.format.audio.rate,
            "payload": self._b64(payload),
        }
        return _dumps({"event": "playAudio", "media": media})

    def mark(self, name: str) -> Frame:
        return _dumps({"event": "checkpoint", "streamId": self.stream_id, "name": name})

    def clear(self) -> Frame:
        return _dumps({"event": "clearAudio", "streamId": self.stream_id})


class ExotelDialect(MarkDialect):
    """Exotel voice streaming: PCM16 little-endian 8 kHz, ~100 ms chunks in, multiples of 320 B out (we send
    320 B), JSON."""

    name = "exotel"
    start_keys = StartKeys("call_sid", "stream_sid", "custom_parameters", "media_format")
    stream_key = "stream_sid"
    #: 20 ms = 320 B at 8 kHz: the smallest multiple of 320 B Exotel takes, so playback marks (and so a
    #: barge-in's truncation) are as fine as on the other providers
    out_frame_ms = 20

    @classmethod
    def default_format(cls) -> ProviderFormat:
        return ProviderFormat(AudioFormat("pcm16", 8000))

    def _start_format(self, fmt: dict[str, Any]) -> ProviderFormat:
        return ProviderFormat(AudioFormat("pcm16", _int(fmt.get("sample_rate")) or 8000))

    def _stop_reason(self, event: dict[str, Any]) -> str:
        return _str(_obj(event.get("stop")).get("reason")) or "stop"


_VONAGE_KNOWN = {"event", "content-type"}
_CONTENT_TYPE = re.compile(r"audio/l16\s*;\s*rate\s*=\s*([0-9]{1,6})")  # more digits: no rate anyone speaks


class VonageDialect(Dialect):
    """Vonage WebSocket connect: binary L16 little-endian frames of exactly 20 ms (640 B at 16 kHz)."""

    name = "vonage"
    confirms_clear = True
    binary_audio = True

    @classmethod
    def default_format(cls) -> ProviderFormat:
        return ProviderFormat(AudioFormat("pcm16", 16000))

    def _receive_binary(self, data: bytes) -> list[ProviderEvent]:
        if not self.started:
            return [ProviderProblem("media_before_start", "audio before websocket:connected")]
        if len(data) != self.out_frame_bytes:
            return [ProviderProblem("bad_frame_size", f"{len(data)} B, not {self.out_frame_bytes} B")]
        return [MediaIn(data, None)]

    def _receive_event(self, event: dict[str, Any]) -> list[ProviderEvent]:
        if event.get("event") == "websocket:notify":  # fifty a second (its audio is binary)
            payload = event.get("payload")
            return _ack_named(payload.get("name") if type(payload) is dict else None)
        return self._receive_checked(event)

    def _receive_rare(self, event: dict[str, Any]) -> list[ProviderEvent]:
        kind = event.get("event")
        if kind == "websocket:cleared":
            return [ClearConfirmed()]
        if kind == "websocket:connected":
            match = _CONTENT_TYPE.fullmatch(str(event.get("content-type", "")).strip().lower())
            if match is None:
                return [
                    ProviderProblem("bad_format", f"unsupported content-type {event.get('content-type')!r}")
                ]
            rate = int(match.group(1))
            try:
                audio = AudioFormat("pcm16", rate)
            except InvalidAudioError as exc:
                return [ProviderProblem("bad_format", str(exc))]
            custom = {k: v for k, v in event.items() if k not in _VONAGE_KNOWN}
            return self._start(
                CallStart(
                    self.name,
                    _str(custom.get("uuid") or custom.get("call_uuid")),
                    None,
                    _str(custom.get("from")),
                    _str(custom.get("to")),
                    custom,
                    ProviderFormat(audio),
                    event,
                )
            )
        if kind == "websocket:dtmf":
            return _dtmf(event)
        return self._unknown(event)

    def audio(self, payload: bytes) -> Frame:
        return payload

    def mark(self, name: str) -> Frame:
        return _dumps({"action": "notify", "payload": {"name": name}})

    def clear(self) -> Frame:
        return _dumps({"action": "clear"})


def _ack_named(name: Any) -> list[ProviderEvent]:
    """A playback ack for the marker ``name``: a string (or a number, printed), nothing else (a container's
    text is unbounded work)."""
    if type(name) is str:
        return [PlaybackAck(name)]
    if type(name) is int or type(name) is float:
        return [PlaybackAck(str(name))]
    return [ProviderProblem("bad_mark", f"a marker name of type {type(name).__name__}")]


def _dtmf(dtmf: dict[str, Any]) -> list[ProviderEvent]:
    digit = dtmf.get("digit")
    if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCDabcd":
        return [ProviderProblem("bad_dtmf", f"a DTMF digit {str(digit)[:10]!r}")]
    return [DtmfEvent(digit.upper(), _int(dtmf.get("duration")))]


DIALECTS: dict[str, type[Dialect]] = {
    d.name: d for d in (TwilioDialect, TelnyxDialect, PlivoDialect, ExotelDialect, VonageDialect)
}


def dialect_for(provider: str) -> Dialect:
    """A new dialect object for ``provider`` (``twilio``, ``telnyx``, ``plivo``, ``exotel``, ``vonage``)."""
    try:
        return DIALECTS[provider]()
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}: expected one of {', '.join(DIALECTS)}") from None
