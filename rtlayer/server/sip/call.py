"""One SIP call of the embedded server: its dialog, its RTP socket, and (once accepted) its session.

A :class:`SipCall` is registered in ``state.calls`` under its ``rtc_...`` id from the INVITE on, so
that ``/calls/{id}/accept|reject|refer|hangup`` find it; ``runner`` is None until it is accepted.

Media, once accepted: RTP datagrams in -> :class:`RtpSourceGuard` (only the SDP's address and the
latched source get through; the rest is counted in ``rtp_foreign``) -> :class:`RtpReceiver` (reorder,
de-duplicate, conceal losses within a time budget, resynchronise on a confirmed sequence leap)
-> the session's ``receive_media_audio`` in the negotiated G.711 format; RFC 4733 events ->
``receive_dtmf``; RTCP multiplexed on the port (RFC 5761) -> counted, and the caller's reports of our
stream kept (``rtp_lost_by_caller``). Out: the front's :class:`RtpPacer` calls :meth:`queue_frame` once per packet time,
a little before it (``lookahead``), which pulls one frame from the session's paced buffer, stamps it
and queues it in the native pacer with its deadline (or lets the RTP clock run on in silence). The
call is its media output's ``ahead`` consumer. With ``symmetric_rtp`` (the front's), output goes to
the latched source instead of the SDP's address once something latched (before that, to the SDP's
address), as callers behind NAT need; the switch reopens the call's native stream. The: :meth:`recall` drops what is queued and not sent, so a
clear stops the audio at once and the truncation counts only what left.

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rtlayer.server.sip.dialog import UasDialog
from rtlayer.server.sip.pacer import RtpPacer
from rtlayer.server.sip.rtcp import RtcpError, is_rtcp, parse_rtcp
from rtlayer.server.sip.rtp import RtpReceiver, RtpSender, RtpSourceGuard
from rtlayer.server.sip.sdp import SdpAnswer

if TYPE_CHECKING:
    from rtlayer.server.runner import SessionRunner

__all__ = ["SipCall"]

logger = logging.getLogger("rtlayer.server.sip")

BACKLOG_EVENTS = 500


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, call: SipCall) -> None:
        self.call = call

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.call.receive_rtp(data, (addr[0], addr[1]))
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
        on_hangup: Callable[[SipCall], None],
        direction: str = "sendrecv",
        symmetric_rtp: bool = False,
    ) -> None:
        self._id = call_id
        self.on_hangup = on_hangup  # the front's hangup (BYE or 480 and the end of media); no import of it
        self.direction = direction
        self.dialog = dialog
        self.answer = answer
        self._runner: SessionRunner | None = None
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtp_port = 0
        self.receiver = RtpReceiver(answer.codec, answer.payload_type, answer.telephone_event)
        negotiated = [answer.payload_type] + (
            [] if answer.telephone_event is None else [answer.telephone_event]
        )
        self.guard = RtpSourceGuard(answer.remote, negotiated)
        self.symmetric_rtp = symmetric_rtp
        self.rtp_destination: tuple[str, int] = answer.remote  # where output RTP goes now
        self.sender = RtpSender(answer.payload_type)
        self.frame_bytes = answer.frame_bytes
        self.ptime_s = answer.ptime / 1000.0
        self.ptime_ns = answer.ptime * 1_000_000
        self.pacer: RtpPacer | None = None
        self.stream: int | None = None  # the call's stream in the native pacer, once accepted
        self.rtp_dropped = 0  # stamped packets never sent: taken back by a clear, or queued at the call's end
        self.rtp_refused = 0  # packets the native queue had no room for (the caller hears a gap)
        self._native_sent = 0  # packets sent by streams this call closed (symmetric RTP may switch streams)
        self._native_errors = 0
        self.ended = False
        self.accepting = False
        self.send_errors = 0
        self.receive_errors = 0
        self.rtcp_received = 0
        self.rtcp_invalid = 0
        self.rtp_lost_by_caller = 0  # our packets the caller says it lost (its latest RTCP report)
        self.webhook_task: asyncio.Task[None] | None = None
        self.dtmf_digits: collections.deque[str] = collections.deque(maxlen=256)  # the latest digits
        self._backlog: collections.deque[str] = collections.deque(maxlen=BACKLOG_EVENTS)
        self._replayed = False
        self._skipped_ns = 0  # frame times skipped (no audio) since the last packet queued

    @property
    def id(self) -> str:
        return self._id

    @property
    def runner(self) -> SessionRunner | None:
        return self._runner

    async def hangup(self) -> None:
        """End the call: BYE if answered, 480 if still ringing. Safe to call twice."""
        self.on_hangup(self)

    # -- media set-up -----------------------------------------------------------------------------

    async def open_rtp(self, host: str) -> int:
        """Bind this call's RTP socket on ``host`` (a free port); returns the port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _RtpProtocol(self), local_addr=(host, 0))
        self.rtp = transport
        self.rtp_port = int(transport.get_extra_info("sockname")[1])
        return self.rtp_port

    def attach_runner(self, runner: SessionRunner, pacer: RtpPacer, first_deadline_ns: int) -> None:
        """Start the session (the backlog sink first), register the RTP socket with the native pacer,
        then the pacing clock from ``first_deadline_ns``. ``open_rtp`` must have run."""
        assert self.rtp is not None
        sock = self.rtp.get_extra_info("socket")
        host, port = self.rtp_destination
        self.stream = pacer.native.open_stream(sock.fileno(), host, port)
        self.pacer = pacer
        self._runner = runner
        media = runner.session.media_output
        if media is not None:
            media.ahead = self
            media.on_audio = self._audio_arrived
        runner.add_sink(self._backlog_sink)
        runner.start()
        pacer.add(self, first_deadline_ns)

    def _audio_arrived(self) -> None:
        # an answer's audio reached the empty output buffer: have the pacer send it from now on
        if self.pacer is not None and not self.ended:
            self.pacer.kick(self, time.monotonic_ns())

    def _backlog_sink(self, text: str) -> None:
        if self._replayed:
            return
        runner = self._runner
        if runner is not None and len(runner.sinks) > 1:
            self.replay_backlog()
            return
        self._backlog.append(text)

    def replay_backlog(self) -> bool:
        """Hand what the session said so far to the first control socket that attached. True if this
        call did so now; False if it had already (a later socket is greeted by the front instead)."""
        runner = self._runner
        if self._replayed or runner is None or len(runner.sinks) < 2:
            return False
        self._replayed = True
        first = runner.sinks[1]
        while self._backlog:
            first(self._backlog.popleft())
        return True

    # -- media ------------------------------------------------------------------------------------

    def receive_rtp(self, data: bytes, source: tuple[str, int]) -> None:
        """One datagram from ``source`` on the call's RTP port."""
        runner = self._runner
        if runner is None or self.ended:
            return
        if not self.guard.admit(data, source):
            return
        latched = self.guard.latched
        if self.symmetric_rtp and latched is not None and latched != self.rtp_destination:
            self._send_to(latched)
        if is_rtcp(data):  # RFC 5761: RTCP multiplexed on the RTP port
            self._receive_rtcp(data)
            return
        rx = self.receiver
        rx.receive(data, time.monotonic())
        audio = rx.pop_audio()
        if audio:
            runner.receive_media_audio(audio)
        for digit in rx.pop_digits():
            self.receive_dtmf(digit)

    def _receive_rtcp(self, data: bytes) -> None:
        """Count it, and keep what the caller reports of our stream (its loss of our packets)."""
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            self.rtcp_invalid += 1
            return
        self.rtcp_received += 1
        for packet in packets:
            for report in packet.reports:
                if report.ssrc == self.sender.ssrc:
                    self.rtp_lost_by_caller = report.cumulative_lost

    def _send_to(self, dest: tuple[str, int]) -> None:
        """Symmetric RTP: send from now on to ``dest`` (a new native stream; the old one closes, what it
        still had queued is counted in ``rtp_dropped``: in practice nothing, as the caller's first
        packet latches before the answer's audio starts)."""
        pacer, old = self.pacer, self.stream
        self.rtp_destination = dest
        if pacer is None or old is None or self.rtp is None or pacer.closed:
            return
        sock = self.rtp.get_extra_info("socket")
        try:
            self.stream = pacer.native.open_stream(sock.fileno(), dest[0], dest[1])
        except (ValueError, RuntimeError) as exc:  # every native stream in use: keep the old destination
            logger.warning("SIP call %s: cannot send RTP to %s: %s", self.id, dest, exc)
            return
        self._close_stream(pacer, old)

    def _close_stream(self, pacer: RtpPacer, stream: int) -> None:
        # before the socket closes: after close_stream the native thread no longer uses its fd
        _queued, sent, _dropped, errors = pacer.native.stream_stats(stream)
        self.rtp_dropped += pacer.native.close_stream(stream)
        self._native_sent += sent
        self._native_errors += errors

    def receive_dtmf(self, digit: str) -> None:
        """A digit from RFC 4733 RTP or from a SIP INFO (``application/dtmf-relay``)."""
        runner = self._runner
        if runner is None or self.ended:
            return
        self.dtmf_digits.append(digit)
        runner.receive_dtmf(digit)

    def queue_frame(self, deadline_ns: int) -> bool:
        """One packet time (``deadline_ns``): queue the next frame of output in the native pacer, or
        keep the RTP clock running. True if a packet was queued."""
        runner = self._runner
        pacer, stream = self.pacer, self.stream
        if runner is None or pacer is None or stream is None or self.ended:
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
            self._skipped_ns += self.ptime_ns
            return False
        self._skipped_ns = 0
        if len(frame) < self.frame_bytes:  # the tail of an answer: pad with G.711 silence
            frame = frame + bytes([0xFF if self.answer.codec == "pcmu" else 0xD5]) * (
                self.frame_bytes - len(frame)
            )
        if pacer.native.enqueue(stream, deadline_ns, self.sender.packet(frame)):
            return True
        self.rtp_refused += 1
        return False

    def has_audio(self) -> bool:
        """Whether the session has output audio not pulled yet."""
        runner = self._runner
        media = runner.session.media_output if runner is not None else None
        return media is not None and media.queued_ms > 0

    def rewind_silence(self, ns: int) -> int:
        """Take back up to ``ns`` of the frame times skipped since the last packet (an answer starts
        sooner than the pacer had run the clock): the RTP timestamp rewinds by as many samples (G.711:
        8 per ms), so timestamps keep matching send times. Returns the nanoseconds taken back."""
        samples = max(0, min(ns, self._skipped_ns)) * self.frame_bytes // self.ptime_ns
        ns = samples * self.ptime_ns // self.frame_bytes  # whole samples only
        self.sender.timestamp = (self.sender.timestamp - samples) & 0xFFFFFFFF
        self._skipped_ns -= ns
        return ns

    # -- MediaOutput.ahead (PulledAhead) ----------------------------------------------------------

    def unsent_frames(self) -> int:
        """Frames pulled from the session and still waiting in the native queue."""
        if self.pacer is None or self.stream is None:
            return 0
        return self.pacer.native.queued(self.stream)

    def recall(self) -> int:
        """Drop this call's queued packets at once (a clear, a barge-in); returns how many.

        The sender takes their sequence numbers back (the caller sees no gap) and marks the next packet
        as a new talk spurt; their timestamps become silence, as for any frame without audio."""
        if self.pacer is None or self.stream is None:
            return 0
        n = self.pacer.native.drop(self.stream)
        if n:
            self.sender.recall(n)
            self.rtp_dropped += n
        return n

    def close_media(self) -> None:
        """Stop the session and release the RTP port. Idempotent."""
        self.ended = True
        if self.pacer is not None and self.stream is not None and not self.pacer.closed:
            self._close_stream(self.pacer, self.stream)
            self.stream = None
        if self.rtp is not None:
            self.rtp.close()
            self.rtp = None
        runner, self._runner = self._runner, None
        if runner is not None and not runner.closed:
            runner.close()

    @property
    def rtp_sent(self) -> int:
        """Packets that actually left (counted by the native sender)."""
        if self.pacer is not None and self.stream is not None:
            return self._native_sent + self.pacer.native.stream_stats(self.stream)[1]
        return self._native_sent

    @property
    def native_send_errors(self) -> int:
        if self.pacer is not None and self.stream is not None:
            return self._native_errors + self.pacer.native.stream_stats(self.stream)[3]
        return self._native_errors

    def stats(self) -> dict[str, Any]:
        rx = self.receiver
        return {
            "rtp_received": rx.received,
            "rtp_invalid": rx.invalid,
            "rtp_foreign": self.guard.rejected,
            "rtp_relatched": self.guard.relatched,
            "rtp_lost": rx.lost,
            "rtp_concealed_bytes": rx.concealed,
            "rtp_resyncs": rx.resyncs,
            "rtp_out_of_range": rx.out_of_range,
            "rtp_duplicates": rx.duplicates,
            "rtp_late": rx.late,
            "rtp_reordered": rx.reordered,
            "rtp_sent": self.rtp_sent,
            "rtp_dropped": self.rtp_dropped,
            "rtp_refused": self.rtp_refused,
            "rtp_send_errors": self.send_errors + self.native_send_errors,
            "rtp_lost_by_caller": self.rtp_lost_by_caller,
            "rtcp_received": self.rtcp_received,
            "rtcp_invalid": self.rtcp_invalid,
            "dtmf": "".join(self.dtmf_digits),
        }
