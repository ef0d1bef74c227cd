"""The embedded Realtime-compatible server.

``RealtimeServer`` runs it in-process (tests, ``rtlayer talk``); ``rtlayer serve`` runs it in the
foreground. ``ServerState`` is what every front shares; ``SessionRunner`` is the asyncio shell of one
sans-I/O ``ServerSession`` (``rtlayer.server.core``, the core: no sockets, no tasks). The shells beside it
are the runner and the state, the fronts (``ws``, ``webrtc``, ``sip``) with what they share (``http``),
and ``app`` / ``realtime_server``, which assemble them.

Names are imported on first use, so that importing ``rtlayer.server.state`` (the core, the runner and the
responders) does not pull in aiohttp, aiortc or the fronts with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtlayer.server.realtime_server import RealtimeServer
    from rtlayer.server.runner import EventSink, SessionRunner
    from rtlayer.server.state import Call, CallRegistry, ServerLimits, ServerState

__all__ = [
    "Call",
    "CallRegistry",
    "EventSink",
    "RealtimeServer",
    "ServerLimits",
    "ServerState",
    "SessionRunner",
]

_HOMES = {
    "RealtimeServer": "rtlayer.server.realtime_server",
    "EventSink": "rtlayer.server.runner",
    "SessionRunner": "rtlayer.server.runner",
    "Call": "rtlayer.server.state",
    "CallRegistry": "rtlayer.server.state",
    "ServerLimits": "rtlayer.server.state",
    "ServerState": "rtlayer.server.state",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rtlayer.server' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
