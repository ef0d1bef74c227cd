"""Transports: one module per medium, each mapping its medium onto the shared contract.

``WebSocketTransport`` is imported eagerly; the others (WebRTC, SIP, fetch-upgrade, the media streams) are
looked up on first use, so that importing rtlayer never pays for aiortc or httpx unless the app uses them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._base import BaseRealtimeTransport
from .websocket import WebSocketTransport

__all__ = ["BaseRealtimeTransport", "WebSocketTransport"]

_LAZY = {
    "WebRTCTransport": "rtlayer.transports.webrtc",
    "SIPTransport": "rtlayer.transports.sip",
    "FetchUpgradeTransport": "rtlayer.transports.fetch_upgrade",
    "MediaStreamTransport": "rtlayer.transports.media_stream",
    "TwilioMediaStreamTransport": "rtlayer.transports.media_stream",
    "TelnyxMediaStreamTransport": "rtlayer.transports.media_stream",
    "PlivoMediaStreamTransport": "rtlayer.transports.media_stream",
    "ExotelMediaStreamTransport": "rtlayer.transports.media_stream",
    "VonageMediaStreamTransport": "rtlayer.transports.media_stream",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtlayer.transports' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
