"""The sans-I/O core of the embedded server: bytes and events in, events out, no sockets, no tasks, no clock.

``ServerSession`` (``session``) is one Realtime session; the other modules are its parts: the conversation,
the input audio buffer and its turn detection, one response's events and the options of ``response.create``,
the item and client event checks, media-mode output, the idle timer and transcription. The asyncio shells
beside this package (``runner``, the WebSocket, WebRTC and SIP fronts, the REST routes) drive it; nothing here
imports them.
"""
