"""The Realtime wire protocol (GA), sans-I/O, shared by rtlayer's clients and its embedded server.

- ``events``: the event type names (``ClientEventType``, ``ServerEventType``);
- ``ids``: ids in the service's formats (``event_...``, ``item_...``, ``resp_...``);
- ``session_config``: the GA session config, its defaults, legacy normalisation, validated merging;
- ``items``: conversation items and audio duration arithmetic;
- ``codec``: the fastest sound JSON encode/decode measured (orjson when installed);
- ``webhooks``: Standard Webhooks signing and verification (Calls API).
"""

from __future__ import annotations

from rtlayer.protocol import codec
from rtlayer.protocol.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES, ClientEventType, ServerEventType
from rtlayer.protocol.ids import new_event_id, new_id
from rtlayer.protocol.session_config import default_session, merge_session, normalize_session

__all__ = [
    "CLIENT_EVENT_TYPES",
    "SERVER_EVENT_TYPES",
    "ClientEventType",
    "ServerEventType",
    "codec",
    "default_session",
    "merge_session",
    "new_event_id",
    "new_id",
    "normalize_session",
]
