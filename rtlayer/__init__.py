"""rtlayer: realtime transport layers for voice agents, with a native audio core and an embedded server.

The public names of the design sketch live here (``from rtlayer import WebSocketTransport``). They are
looked up on first use, so that ``import rtlayer`` stays cheap: no websockets, aiortc, httpx or server
code is imported until a name that needs it is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rtlayer.audio import AudioConverter, AudioFormat, PlaybackTracker
    from rtlayer.client.session import ClientSession
    from rtlayer.exceptions import (
        ConnectError,
        ConnectionClosedError,
        ConnectTimeout,
        HandshakeError,
        InvalidAudioError,
        InvalidURL,
        LocalProtocolError,
        ProxyError,
        RemoteProtocolError,
        RequestRefused,
        RtlayerError,
        UnsupportedOperation,
        WebhookVerificationError,
    )
    from rtlayer.protocol.webhooks import verify_webhook
    from rtlayer.server.realtime_server import RealtimeServer
    from rtlayer.transport import (
        AudioDoneEvent,
        AudioEvent,
        AudioInterruptedEvent,
        ConnectionChangeEvent,
        DtmfEvent,
        ErrorEvent,
        EventEmitter,
        FunctionCallEvent,
        InputAudioTimeoutEvent,
        ItemDeletedEvent,
        ItemUpdateEvent,
        OutputTextDeltaEvent,
        RealtimeTransportLayer,
        TranscriptDeltaEvent,
        TransportStatus,
        TurnDoneEvent,
        TurnStartedEvent,
        Usage,
    )
    from rtlayer.transports import BaseRealtimeTransport, WebSocketTransport
    from rtlayer.transports.calls import CallsClient
    from rtlayer.transports.fetch_upgrade import FetchUpgradeTransport
    from rtlayer.transports.media_stream import (
        ExotelMediaStreamTransport,
        MediaStreamTransport,
        PlivoMediaStreamTransport,
        TelnyxMediaStreamTransport,
        TwilioMediaStreamTransport,
        VonageMediaStreamTransport,
    )
    from rtlayer.transports.sip import SIPTransport, build_initial_config
    from rtlayer.transports.webrtc import WebRTCTransport

_HOMES: dict[str, str] = {
    # transports and the contract
    "RealtimeTransportLayer": "rtlayer.transport",
    "TransportStatus": "rtlayer.transport",
    "EventEmitter": "rtlayer.transport",
    "BaseRealtimeTransport": "rtlayer.transports",
    "WebSocketTransport": "rtlayer.transports",
    "WebRTCTransport": "rtlayer.transports.webrtc",
    "SIPTransport": "rtlayer.transports.sip",
    "FetchUpgradeTransport": "rtlayer.transports.fetch_upgrade",
    "CallsClient": "rtlayer.transports.calls",
    "MediaStreamTransport": "rtlayer.transports.media_stream",
    "TwilioMediaStreamTransport": "rtlayer.transports.media_stream",
    "TelnyxMediaStreamTransport": "rtlayer.transports.media_stream",
    "PlivoMediaStreamTransport": "rtlayer.transports.media_stream",
    "ExotelMediaStreamTransport": "rtlayer.transports.media_stream",
    "VonageMediaStreamTransport": "rtlayer.transports.media_stream",
    "build_initial_config": "rtlayer.transports.sip",
    "verify_webhook": "rtlayer.protocol.webhooks",
    "ClientSession": "rtlayer.client.session",
    # typed transport events
    "AudioEvent": "rtlayer.transport",
    "AudioDoneEvent": "rtlayer.transport",
    "AudioInterruptedEvent": "rtlayer.transport",
    "ConnectionChangeEvent": "rtlayer.transport",
    "ErrorEvent": "rtlayer.transport",
    "FunctionCallEvent": "rtlayer.transport",
    "DtmfEvent": "rtlayer.transport",
    "InputAudioTimeoutEvent": "rtlayer.transport",
    "ItemDeletedEvent": "rtlayer.transport",
    "ItemUpdateEvent": "rtlayer.transport",
    "OutputTextDeltaEvent": "rtlayer.transport",
    "TranscriptDeltaEvent": "rtlayer.transport",
    "TurnDoneEvent": "rtlayer.transport",
    "TurnStartedEvent": "rtlayer.transport",
    "Usage": "rtlayer.transport",
    # audio
    "AudioFormat": "rtlayer.audio",
    "AudioConverter": "rtlayer.audio",
    "PlaybackTracker": "rtlayer.audio",
    # the embedded server
    "RealtimeServer": "rtlayer.server.realtime_server",
    # exceptions
    "RtlayerError": "rtlayer.exceptions",
    "LocalProtocolError": "rtlayer.exceptions",
    "InvalidAudioError": "rtlayer.exceptions",
    "InvalidURL": "rtlayer.exceptions",
    "UnsupportedOperation": "rtlayer.exceptions",
    "RemoteProtocolError": "rtlayer.exceptions",
    "RequestRefused": "rtlayer.exceptions",
    "ConnectError": "rtlayer.exceptions",
    "ConnectTimeout": "rtlayer.exceptions",
    "HandshakeError": "rtlayer.exceptions",
    "ProxyError": "rtlayer.exceptions",
    "ConnectionClosedError": "rtlayer.exceptions",
    "WebhookVerificationError": "rtlayer.exceptions",
}

__all__ = [
    "AudioConverter",
    "AudioDoneEvent",
    "AudioEvent",
    "AudioFormat",
    "AudioInterruptedEvent",
    "BaseRealtimeTransport",
    "CallsClient",
    "ClientSession",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionChangeEvent",
    "ConnectionClosedError",
    "DtmfEvent",
    "ErrorEvent",
    "EventEmitter",
    "ExotelMediaStreamTransport",
    "FetchUpgradeTransport",
    "FunctionCallEvent",
    "HandshakeError",
    "InputAudioTimeoutEvent",
    "InvalidAudioError",
    "InvalidURL",
    "ItemDeletedEvent",
    "ItemUpdateEvent",
    "LocalProtocolError",
    "MediaStreamTransport",
    "OutputTextDeltaEvent",
    "PlaybackTracker",
    "PlivoMediaStreamTransport",
    "ProxyError",
    "RealtimeServer",
    "RealtimeTransportLayer",
    "RemoteProtocolError",
    "RequestRefused",
    "RtlayerError",
    "SIPTransport",
    "TelnyxMediaStreamTransport",
    "TranscriptDeltaEvent",
    "TransportStatus",
    "TurnDoneEvent",
    "TurnStartedEvent",
    "TwilioMediaStreamTransport",
    "UnsupportedOperation",
    "Usage",
    "VonageMediaStreamTransport",
    "WebRTCTransport",
    "WebSocketTransport",
    "WebhookVerificationError",
    "build_initial_config",
    "verify_webhook",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rtlayer' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
