"""What a provider's media stream says, as small frozen events common to every provider.

A dialect (``dialects.py``) turns one provider frame into a list of these; the bridge (``bridge.py``) acts on
them. ``CallStart`` and ``DtmfEvent`` are also what the app receives, as the ``call_start`` and ``dtmf``
events of ``MediaStreamTransport``. Raw provider frames are kept in ``raw`` where an app may want more.

Each is a frozen dataclass, except the two that come fifty times a second per call, ``MediaIn`` and
``PlaybackAck``: immutable NamedTuples, a third cheaper to make (``bench/README.md``, issue 12's CPU target),
and never emitted by ``MediaStreamTransport``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ...audio import AudioFormat
from ...transport_events import DtmfEvent  # one dtmf event for every medium (SIP's too)

__all__ = [
    "CallStart",
    "CallStop",
    "ClearConfirmed",
    "Connected",
    "DtmfEvent",
    "MediaIn",
    "PlaybackAck",
    "ProviderEvent",
    "ProviderFormat",
    "ProviderProblem",
]


@dataclass(frozen=True, slots=True)
class ProviderFormat:
    """The audio a provider speaks on the stream: an ``AudioFormat`` plus the byte order of its L16."""

    audio: AudioFormat
    #: L16 samples in network byte order (Telnyx); rtlayer's PCM16 is little-endian
    big_endian: bool = False

    def __str__(self) -> str:
        return f"{self.audio}{' big-endian' if self.big_endian else ''}"


@dataclass(frozen=True, slots=True)
class Connected:
    """The provider's first message (Twilio, Telnyx, Exotel ``connected``); nothing to do but note it."""


@dataclass(frozen=True, slots=True)
class CallStart:
    """The call's metadata, from the provider's ``start`` message (Vonage: its ``websocket:connected``).

    Available from ``MediaStreamTransport.call`` and as the ``call_start`` event before any model event.
    """

    provider: str
    #: the provider's call id (Twilio ``callSid``, Telnyx ``call_control_id``, Plivo ``callId``, ...)
    call_id: str | None
    #: the stream's id, echoed in the frames the app sends (Twilio ``streamSid``, ...)
    stream_id: str | None
    from_number: str | None
    to_number: str | None
    custom_parameters: Mapping[str, Any]
    format: ProviderFormat
    raw: Mapping[str, Any] = field(repr=False)


class MediaIn(NamedTuple):
    """Caller audio, in the provider's format (L16 still in the provider's byte order). A tuple, like
    ``PlaybackAck``: fifty of each are made a second per call, at a third less than a frozen dataclass."""

    audio: bytes
    #: the provider's timestamp of this chunk in ms since the stream started, when it gives one
    timestamp_ms: int | None


class PlaybackAck(NamedTuple):
    """The provider played the app's audio up to the mark/checkpoint/notify called ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class ClearConfirmed:
    """The provider says it dropped the queued audio (Plivo ``clearedAudio``, Vonage ``websocket:cleared``)."""


@dataclass(frozen=True, slots=True)
class CallStop:
    """The provider ends the stream (``stop``); the socket closes after it."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderProblem:
    """A frame the dialect could not use; ``kind`` is short and stable (the bridge counts by it)."""

    kind: str
    detail: str


ProviderEvent = (
    Connected | CallStart | MediaIn | PlaybackAck | ClearConfirmed | DtmfEvent | CallStop | ProviderProblem
)
