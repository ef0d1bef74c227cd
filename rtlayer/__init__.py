"""rtlayer: realtime transport layers for voice agents, with a native audio core and an embedded server."""

from __future__ import annotations

__version__ = "0.1.0"

# The public names of the DESIGN sketch (``from rtlayer import WebSocketTransport``), looked up on first use so
# that ``import rtlayer`` stays cheap (no websockets, aiortc or server import until a name is asked for).
_LAZY = {
    "WebSocketTransport": "rtlayer.transports",
    "WebRTCTransport": "rtlayer.transports",
    "SIPTransport": "rtlayer.transports",
    "CallsClient": "rtlayer.transports.calls",
    "build_initial_config": "rtlayer.transports.sip",
    "verify_webhook": "rtlayer.protocol.webhooks",
    "FetchUpgradeTransport": "rtlayer.transports",
    "BaseRealtimeTransport": "rtlayer.transports",
    "RealtimeTransportLayer": "rtlayer.transport",
    "TransportStatus": "rtlayer.transport",
    "ClientSession": "rtlayer.client_session",
    "AudioFormat": "rtlayer.audio",
    "PlaybackTracker": "rtlayer.audio",
    "RealtimeServer": "rtlayer.server.realtime_server",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtlayer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
