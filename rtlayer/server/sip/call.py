"""One SIP call of the embedded server: its dialog, its RTP socket, and (once accepted) its session.

A :class:`SipCall` is registered in ``state.calls`` under its ``rtc_...`` id from the INVITE on, so
that ``/calls/{id}/accept|reject|refer|hangup`` find it; ``runner`` is None until it is accepted.

Media, once accepted: RTP datagrams in -> :class:`RtpReceiver` (reorder, de-duplicate, fill losses)
-> the session's ``receive_media_audio`` in the negotiated G.711 format; RFC 4733 events ->
``receive_dtmf``. Out: the front's pacer calls :meth:`send_frame` every packet time, which pulls one
frame from the session's paced buffer and sends it (or lets the RTP clock run on in silence).

Events the session emits before the app's control socket (``?call_id=``) attaches are kept (bounded)
and replayed into the first socket that attaches, so the app sees ``session.created`` and whatever
the caller already said. This relies on the runner calling sinks in the order they were added: our
sink is first, so it replays the backlog into a new sink before that sink receives the current event.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING, Any

from rtlayer.server.sip.dialog import UasDialog
from rtlayer.server.sip.rtp import RtpReceiver, RtpSender
from rtlayer.server.sip.sdp import SdpAnswer

if TYPE_CHECKING:
    from rtlayer.server.runner import SessionRunner
    from rtlayer.server.sip.front import SipFront

__all__ = ["SipCall"]

logger = logging.getLogger("rtlayer.server.sip")

BACKLOG_EVENTS = 500


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, call: SipCall) -> None:
        self.call = call

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.call.receive_rtp(data)
        except Exception:  # a bug on one packet must not stop the call's media
            self.call.receive_errors += 1
            logger.exception("SIP call %s: an RTP packet failed", self.call.id)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a caller that went away: the call's end comes from SIP.
        self.call.send_errors += 1


class SipCall:
    """A call registered under ``rtc_...``; satisfies ``rtlayer.server.state.Call``."""

    def __init__(
        self,
        call_id: str,
        dialog: UasDialog,
        answer: SdpAnswer,
        *,
        front: SipFront,
        direction: str = "sendrecv",
    ) -> None:
        self._id = call_id
        self.front = front
        self.direction = direction
        self.dialog = dialog
        self.answer = answer
        self._runner: SessionRunner | None = None
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtp_port = 0
        self.receiver = RtpReceiver(answer.codec, answer.payload_type, answer.telephone_event)
        self.sender = RtpSender(answer.payload_type)
        self.frame_bytes = answer.frame_bytes
        self.ptime_s = answer.ptime / 1000.0
        self.next_due = 0.0
        self.ended = False
        self.accepting = False
        self.send_errors = 0
        self.receive_errors = 0
        self.webhook_task: asyncio.Task[None] | None = None
        self.dtmf_digits: collections.deque[str] = collections.deque(maxlen=256)  # the latest digits
        self._backlog: collections.deque[str] = collections.deque(maxlen=BACKLOG_EVENTS)
        self._replayed = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def runner(self) -> SessionRunner | None:
        return self._runner

    async def hangup(self) -> None:
        """End the call: BYE if answered, 480 if still ringing. Safe to call twice."""
        self.front.hangup_call(self)

    # -- media set-up -----------------------------------------------------------------------------

    async def open_rtp(self, host: str) -> int:
        """Bind this call's RTP socket on ``host`` (a free port); returns the port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _RtpProtocol(self), local_addr=(host, 0))
        self.rtp = transport
        self.rtp_port = int(transport.get_extra_info("sockname")[1])
        return self.rtp_port

    def attach_runner(self, runner: SessionRunner, now: float) -> None:
        """Start the session: the backlog sink first, then the pacing clock."""
        self._runner = runner
        runner.add_sink(self._backlog_sink)
        runner.start()
        self.next_due = now

    def _backlog_sink(self, text: str) -> None:
        if self._replayed:
            return
        runner = self._runner
        if runner is not None and len(runner.sinks) > 1:
            self.replay_backlog()
            return
        self._backlog.append(text)

    def replay_backlog(self) -> None:
        """Hand what the session said so far to the first control socket that attached."""
        runner = self._runner
        if self._replayed or runner is None or len(runner.sinks) < 2:
            return
        self._replayed = True
        first = runner.sinks[1]
        while self._backlog:
            first(self._backlog.popleft())

    # -- media ------------------------------------------------------------------------------------

    def receive_rtp(self, data: bytes) -> None:
        runner = self._runner
        if runner is None or self.ended:
            return
        rx = self.receiver
        rx.receive(data, time.monotonic())
        audio = rx.pop_audio()
        if audio:
            runner.receive_media_audio(audio)
        for digit in rx.pop_digits():
            self.receive_dtmf(digit)

    def receive_dtmf(self, digit: str) -> None:
        """A digit from RFC 4733 RTP or from a SIP INFO (``application/dtmf-relay``)."""
        runner = self._runner
        if runner is None or self.ended:
            return
        self.dtmf_digits.append(digit)
        runner.receive_dtmf(digit)

    def send_frame(self) -> bool:
        """One packet time: send the next frame of output, or keep the RTP clock running. True if sent."""
        runner = self._runner
        if runner is None or self.rtp is None or self.ended:
            return False
        if not self._replayed and len(runner.sinks) > 1:
            self.replay_backlog()
        rx = self.receiver
        rx.flush_stale(time.monotonic())
        late_audio = rx.pop_audio()
        if late_audio:
            runner.receive_media_audio(late_audio)
        frame = runner.pull_media_audio(self.frame_bytes)
        if not frame:
            self.sender.skip(self.frame_bytes)
            return False
        if len(frame) < self.frame_bytes:  # the tail of an answer: pad with G.711 silence
            frame = frame + bytes([0xFF if self.answer.codec == "pcmu" else 0xD5]) * (
                self.frame_bytes - len(frame)
            )
        self.rtp.sendto(self.sender.packet(frame), self.answer.remote)
        return True

    def close_media(self) -> None:
        """Stop the session and release the RTP port. Idempotent."""
        self.ended = True
        if self.rtp is not None:
            self.rtp.close()
            self.rtp = None
        runner, self._runner = self._runner, None
        if runner is not None and not runner.closed:
            runner.close()

    def stats(self) -> dict[str, Any]:
        rx = self.receiver
        return {
            "rtp_received": rx.received,
            "rtp_invalid": rx.invalid,
            "rtp_lost": rx.lost,
            "rtp_duplicates": rx.duplicates,
            "rtp_late": rx.late,
            "rtp_reordered": rx.reordered,
            "rtp_sent": self.sender.packets_sent,
            "dtmf": "".join(self.dtmf_digits),
        }
