"""Phone calls from telephony providers' media streams (Twilio, Telnyx, Plivo, Exotel, Vonage), bridged to a
Realtime model.

Layout, h11-style: ``events.py`` (what any provider says, as common events), ``dialects.py`` (one sans-I/O
dialect per provider: its frames in, common events out, its outbound frames built), ``bridge.py`` (sans-I/O
pacing, playback truth and input conditioning), ``sockets.py`` (the provider's WebSocket from aiohttp,
Starlette or websockets), ``transport.py`` (``MediaStreamTransport``, the asyncio shell) and
``call_control.py`` (optional hang-up and transfer through a provider's REST API).
"""

from __future__ import annotations

from .bridge import InboundAudio, OutboundAudio
from .call_control import (
    CallControlError,
    ExotelCallControl,
    PlivoCallControl,
    TelnyxCallControl,
    TwilioCallControl,
    VonageCallControl,
)
from .dialects import (
    DIALECTS,
    Dialect,
    ExotelDialect,
    PlivoDialect,
    TelnyxDialect,
    TwilioDialect,
    VonageDialect,
    dialect_for,
)
from .events import CallStart, CallStop, DtmfEvent, ProviderFormat, ProviderProblem
from .sockets import AiohttpSocket, ProviderSocket, StarletteSocket, WebsocketsSocket, adapt_socket
from .transport import (
    CallControl,
    ExotelMediaStreamTransport,
    MediaStreamTransport,
    PlivoMediaStreamTransport,
    TelnyxMediaStreamTransport,
    TwilioMediaStreamTransport,
    VonageMediaStreamTransport,
)

__all__ = [
    "DIALECTS",
    "AiohttpSocket",
    "CallControl",
    "CallControlError",
    "CallStart",
    "CallStop",
    "Dialect",
    "DtmfEvent",
    "ExotelCallControl",
    "ExotelDialect",
    "ExotelMediaStreamTransport",
    "InboundAudio",
    "MediaStreamTransport",
    "OutboundAudio",
    "PlivoCallControl",
    "PlivoDialect",
    "PlivoMediaStreamTransport",
    "ProviderFormat",
    "ProviderProblem",
    "ProviderSocket",
    "StarletteSocket",
    "TelnyxCallControl",
    "TelnyxDialect",
    "TelnyxMediaStreamTransport",
    "TwilioCallControl",
    "TwilioDialect",
    "TwilioMediaStreamTransport",
    "VonageCallControl",
    "VonageDialect",
    "VonageMediaStreamTransport",
    "WebsocketsSocket",
    "adapt_socket",
    "dialect_for",
]
