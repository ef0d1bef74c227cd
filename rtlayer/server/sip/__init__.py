"""The embedded server's SIP front: a SIP user agent on UDP with G.711 over RTP.

``RealtimeServer(sip_port=...)`` (``rtlayer serve --sip-port``) calls :func:`start_sip_front`; the
app's REST routes (``/v1/realtime/calls/{id}/accept|reject|refer``) come from :func:`setup`.

Modules, bottom up: ``message`` (SIP wire), ``sdp`` (offer/answer), ``rtp`` (packets, reordering,
DTMF), ``dialog`` (one call's state machine) - all sans-I/O - then ``call`` (one call's sockets and
session), ``pacer`` (RTP pulled ahead on the loop, sent on time by ``rtlayer_native.Pacer``'s thread),
``webhook`` (the signed announcement), ``front`` (the UDP shell, timers) and ``rest`` (the routes).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rtlayer.server.sip.front import SipFront
from rtlayer.server.sip.rest import setup

if TYPE_CHECKING:
    from rtlayer.server.state import ServerState

__all__ = ["SipFront", "setup", "start_sip_front"]


async def start_sip_front(
    state: ServerState,
    host: str,
    port: int,
    *,
    ring_timeout: float = 60.0,
    realtime_priority: int | None = None,
) -> SipFront:
    """Listen for SIP on UDP ``host:port`` (0 picks a free port; see ``.port``). Close with ``.close()``.

    ``realtime_priority`` (default: ``$RTLAYER_SIP_PACER_PRIORITY``, else 10): the SCHED_FIFO priority
    asked for the RTP sending thread alone (a native thread that only sends packets already built, a few
    microseconds each), as media servers do for their RTP threads; without the privilege (root or
    CAP_SYS_NICE) it stays in the fair class with a short time slice. 0: never ask.
    """
    if realtime_priority is None:
        realtime_priority = int(os.environ.get("RTLAYER_SIP_PACER_PRIORITY") or 10)
    front = SipFront(state, host, ring_timeout=ring_timeout, realtime_priority=realtime_priority)
    await front.start(port)
    return front
