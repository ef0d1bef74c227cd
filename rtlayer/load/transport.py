"""``LoadWebSocketTransport``: the WebSocket transport, plus a synchronous send of pre-encoded appends.

A load generator sends the same few hundred frames of speech and silence millions of times. This subclass of
:class:`~rtlayer.transports.websocket.WebSocketTransport` (so every caller is still a real transport session:
the same handshake, session, events, playback tracking, interrupts, reconnection) adds one method,
:meth:`~LoadWebSocketTransport.send_prepared_nowait`: it writes an ``input_audio_buffer.append`` whose JSON
was encoded once per WAV, straight through the connection's sans-I/O protocol to its socket, without a
coroutine, a timeout or a task. When it cannot do that at once (the socket's buffer is filling up, events
wait for the socket, the session mutes or converts audio, the connection is not open) it says so, and the
caller sends through the ordinary ``send_audio``, which waits for the socket with a timeout.
"""

from __future__ import annotations

from ..transport import TransportStatus
from ..transports.websocket import WRITE_BUFFER_LIMIT, WebSocketTransport

__all__ = ["WRITE_BUFFER_LIMIT", "LoadWebSocketTransport"]


class LoadWebSocketTransport(WebSocketTransport):
    """A ``WebSocketTransport`` with :meth:`send_prepared_nowait` (see the module docstring)."""

    def send_prepared_nowait(self, append: bytes) -> bool:
        """Writes ``append`` (the UTF-8 JSON of an ``input_audio_buffer.append`` of audio already in the
        session's input format) to the socket now; False, with nothing sent, when that must wait or
        needs ``send_audio`` (which converts, mutes, queues and times out)."""
        conn = self._conn
        session = self.session
        if (
            self._status is not TransportStatus.CONNECTED
            or self._out
            or not self._writable(conn)
            or session.muted
            or (session.input_format is not None and session.input_format != session.session_input_format)
        ):
            return False
        self._write_nowait(conn, append)
        return True
