"""The embedded server's SIP front: a SIP user agent on UDP with G.711 over RTP.

``RealtimeServer(sip_port=...)`` (``rtlayer serve --sip-port``) calls :func:`start_sip_front`; the
app's REST routes (``/v1/realtime/calls/{id}/accept|reject|refer``) come from :func:`setup`.

Modules, bottom up: ``message`` (SIP wire), ``sdp`` (offer/answer), ``rtp`` (packets, reordering,
DTMF), ``dialog`` (one call's state machine) - all sans-I/O - then ``call`` (one call's sockets and
session), ``webhook`` (the signed announcement), ``front`` (the UDP shell, timers, pacer) and ``rest``
(the routes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtlayer.server.sip.front import SipFront
from rtlayer.server.sip.rest import setup

if TYPE_CHECKING:
    from rtlayer.server.state import ServerState

__all__ = ["SipFront", "setup", "start_sip_front"]


async def start_sip_front(
    state: ServerState, host: str, port: int, *, ring_timeout: float = 60.0
) -> SipFront:
    """Listen for SIP on UDP ``host:port`` (0 picks a free port; see ``.port``). Close with ``.close()``."""
    front = SipFront(state, host, ring_timeout=ring_timeout)
    await front.start(port)
    return front
