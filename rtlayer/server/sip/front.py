"""The SIP front's asyncio shell: one UDP socket for SIP, one per call for RTP, one pacer for all calls.

What it does with each datagram on the SIP port:

- unparseable: counted (``counters.sip_malformed``) and answered 400 Bad Request when it was a
  request readable enough to answer (start line and headers), else dropped; one log line at most per
  second says why; other calls never notice;
- a new INVITE: the offer is negotiated (no PCMU/PCMA: 488), a :class:`UasDialog` answers 100
  Trying, the call is registered in ``state.calls`` as ``rtc_...``, and a signed
  ``realtime.call.incoming`` webhook goes to ``state.webhook_url``; the app then decides over REST
  (:meth:`accept_call`, :meth:`reject_call`, :meth:`refer_call`, the registry's hangup);
- a request or response of a known Call-ID: handed to that call's dialog, which answers 481 to a
  request whose tags are not the dialog's (``counters.sip_unmatched``: a BYE from a stranger who
  knows only the Call-ID ends nothing);
- OPTIONS outside a dialog: 200 with what we allow; anything else unknown: 481/405.

Every reply goes to the packet's source address. Dialog timers (200 OK retransmission, ring timeout,
BYE retransmission) run on ``loop.call_at``. Output RTP is paced for every call by one
:class:`RtpPacer`: the loop pulls each frame a little ahead of its packet time and a native thread
(no GIL) sends it at its deadline, recording how late each packet left (``pacing_jitter_ms``) for the
benchmark.

RTP in is strict with latching (:class:`~rtlayer.server.sip.rtp.RtpSourceGuard`): a call takes RTP from
the address its SDP offered and from the first source that sent valid RTP of a negotiated payload
type; packets from anyone else are dropped and counted (``rtp_stats()["rtp_foreign"]``).
``symmetric_rtp`` (default :data:`SYMMETRIC_RTP`, off) sends each call's RTP to that latched source
instead of the SDP's address, as callers behind NAT need.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtlayer.audio import PCMA, PCMU
from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.ids import new_id
from rtlayer.server.sip.call import SipCall
from rtlayer.server.sip.dialog import ALLOW, REASONS, CallState, UasDialog
from rtlayer.server.sip.message import SipParseError, SipRequest, SipResponse, build_response, parse_message
from rtlayer.server.sip.pacer import PacedCall, RtpPacer
from rtlayer.server.sip.sdp import SdpError, build_answer, negotiate, parse_offer
from rtlayer.server.sip.webhook import WebhookSender, incoming_call_event

if TYPE_CHECKING:
    from rtlayer.server.runner import SessionRunner
    from rtlayer.server.state import ServerState

__all__ = ["SipCounters", "SipFront", "front_of"]

logger = logging.getLogger("rtlayer.server.sip")

Addr = tuple[str, int]
# Symmetric RTP for fronts that do not say: off, so a caller that names a separate receive port in its
# SDP (sipp with -mp and an RTP sink) gets its audio there.
SYMMETRIC_RTP = False
LINGER_S = 5.0  # RFC 3261 Timer J/K scale: keep an ended dialog this long to absorb retransmissions


@dataclass(slots=True)
class SipCounters:
    sip_received: int = 0
    sip_malformed: int = 0
    sip_unmatched: int = 0  # requests and responses with a call's Call-ID but not its dialog's tags
    sip_errors: int = 0
    calls_offered: int = 0
    calls_accepted: int = 0
    calls_rejected: int = 0
    calls_timed_out: int = 0
    calls_refused_sdp: int = 0
    webhooks_sent: int = 0
    webhooks_failed: int = 0


def info_dtmf(info: SipRequest) -> str | None:
    """The digit of a SIP INFO carrying DTMF (``application/dtmf-relay``: ``Signal=5``; or
    ``application/dtmf``: ``5``), which some trunks send instead of RFC 4733 packets."""
    kind = (info.get("Content-Type") or "").split(";")[0].strip().lower()
    text = info.body.decode("ascii", "replace")
    if kind == "application/dtmf-relay":
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip().lower() == "signal":
                text = value
                break
        else:
            return None
    elif kind != "application/dtmf":
        return None
    digit = text.strip().upper()
    return digit if len(digit) == 1 and digit in "0123456789*#ABCD" else None


def _printable(text: str) -> str:
    """``text`` fit for a quoted header value: printable ASCII, no quotes or backslashes."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:120]


class _LogBudget:
    """At most one log line per ``interval`` seconds for what peers can cause at will (malformed
    datagrams): the next line says how many were left out, so a flood costs no disk."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next = 0.0
        self.suppressed = 0

    def take(self, now: float) -> int | None:
        """None: stay quiet; else log now, mentioning the returned count of lines left out."""
        if now < self._next:
            self.suppressed += 1
            return None
        self._next = now + self.interval
        left_out, self.suppressed = self.suppressed, 0
        return left_out


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, front: SipFront) -> None:
        self.front = front

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.front.datagram_received(data, (addr[0], addr[1]))
        except Exception:  # a bug on one message must not stop the front: count it, log it, go on
            self.front.counters.sip_errors += 1
            logger.exception("SIP message from %s failed", addr)


class SipFront:
    """The SIP user agent of one embedded server."""

    def __init__(
        self,
        state: ServerState,
        host: str,
        *,
        ring_timeout: float = 60.0,
        webhook_timeout: float = 5.0,
        max_jitter_samples: int = 100_000,
        lookahead: float = 0.04,
        run_ahead: float = 0.2,
        realtime_priority: int = 10,
        symmetric_rtp: bool | None = None,
    ) -> None:
        self.state = state
        self.host = host
        self.port = 0
        self.ring_timeout = ring_timeout
        # for calls offered from now on: send RTP back to where the caller's RTP comes from
        self.symmetric_rtp = SYMMETRIC_RTP if symmetric_rtp is None else symmetric_rtp
        self.webhook_timeout = webhook_timeout
        self.counters = SipCounters()
        self.calls: dict[str, SipCall] = {}  # by SIP Call-ID, including ended ones that linger
        # lookahead / run_ahead: how far ahead of its packet time a silent / talking call's next frame is
        # pulled and handed to the native sender (loop stalls shorter than that minus 20 ms do not show
        # on the wire); realtime_priority: SCHED_FIFO asked for the sending thread (when not permitted,
        # or 0: a short fair-class time slice)
        self.pacer = RtpPacer(
            lookahead=lookahead,
            run_ahead=run_ahead,
            max_lateness_samples=max_jitter_samples,
            realtime_priority=realtime_priority,
            on_error=self._pacing_failed,
        )
        self._transport: asyncio.DatagramTransport | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._webhooks: WebhookSender | None = None
        self._rtp_done: dict[str, int] = {}  # counters of the calls already forgotten
        self._closed = False
        _FRONTS[state] = self
        self._malformed_log = _LogBudget()

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=(self.host, port)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        self.pacer.start()

    async def close(self) -> None:
        """Hang up every call (BYE goes out), stop timers and sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for call in list(self.calls.values()):
            if not call.ended:
                self.hangup_call(call)
            self._finish(call)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await self.pacer.close()
        if self._webhooks is not None:
            await self._webhooks.close()
        if self._transport is not None:
            self._transport.close()

    @property
    def pacing_jitter_ms(self) -> deque[float]:
        """How late each RTP packet left against its deadline, in ms (at the native sender)."""
        self.pacer.drain_lateness()
        return self.pacer.lateness_ms

    @property
    def local_contact(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sip:rtlayer@{host}:{self.port}"

    def rtp_stats(self) -> dict[str, int]:
        """RTP counters summed over every call this front has had (ended calls included)."""
        total = dict(self._rtp_done)
        for call in self.calls.values():
            for key, value in call.stats().items():
                if isinstance(value, int):
                    total[key] = total.get(key, 0) + value
        return total

    # -- datagrams in -----------------------------------------------------------------------------

    def _send(self, data: bytes, addr: Addr) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.counters.sip_received += 1
        if not data.strip():
            return  # RFC 5626 keepalive (CRLF)
        now = time.monotonic()
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self._malformed(exc, addr, now)
            return
        call = self.calls.get(msg.call_id)
        if isinstance(msg, SipResponse):
            if call is not None:
                if not call.dialog.receive_response(msg, now):
                    self.counters.sip_unmatched += 1
                self._service(call)
            return
        if call is not None:
            matched = call.dialog.receive_request(msg, addr, now)
            self.counters.sip_unmatched += not matched
            self._service(call)
            if matched and msg.method == "INFO":
                digit = info_dtmf(msg)
                if digit is not None:
                    call.receive_dtmf(digit)
        elif msg.method == "INVITE" and not self._closed:
            self._new_call(msg, addr, now)
        elif msg.method == "OPTIONS":
            headers = [
                ("Allow", ALLOW),
                ("Accept", "application/sdp"),
                ("Contact", f"<{self.local_contact}>"),
            ]
            self._reply(msg, addr, 200, headers)
        elif msg.method != "ACK":
            self._reply(msg, addr, 481 if msg.method in ("BYE", "CANCEL") else 405, [("Allow", ALLOW)])

    def _malformed(self, exc: SipParseError, addr: Addr, now: float) -> None:
        """Count it; answer 400 (RFC 3261 8.2.2) when it was a request we can answer, never an ACK."""
        self.counters.sip_malformed += 1
        req = exc.request
        answered = req is not None and req.method != "ACK" and bool(req.get_all("Via"))
        if answered:
            assert req is not None
            self._reply(req, addr, 400, [("Warning", f'399 rtlayer "{_printable(str(exc))}"')])
        left_out = self._malformed_log.take(now)
        if left_out is not None:
            logger.warning(
                "malformed SIP message from %s:%s (%s)%s%s",
                addr[0],
                addr[1],
                exc,
                "; answered 400" if answered else "",
                f"; {left_out} more since the last line" if left_out else "",
            )

    def _reply(
        self, req: SipRequest, addr: Addr, status: int, headers: list[tuple[str, str]] | None = None
    ) -> None:
        resp = build_response(
            req, status, REASONS.get(status, "Unknown"), source=addr, to_tag="rtlayer", headers=headers
        )
        self._send(resp.to_bytes(), addr)

    def _new_call(self, invite: SipRequest, addr: Addr, now: float) -> None:
        try:
            offer = parse_offer(invite.body)
            answer = negotiate(offer)
        except SdpError as exc:
            self.counters.calls_refused_sdp += 1
            self._reply(invite, addr, 488, [("Warning", f'304 rtlayer "{_printable(str(exc))}"')])
            return
        if len(self.calls) >= 2 * self.state.limits.max_sessions:
            self._reply(invite, addr, 503, [("Retry-After", "5")])
            return
        dialog = UasDialog(
            invite, addr, local_contact=self.local_contact, now=now, ring_timeout=self.ring_timeout
        )
        call = SipCall(
            new_id("rtc"),
            dialog,
            answer,
            on_hangup=self.hangup_call,
            direction=offer.direction,
            symmetric_rtp=self.symmetric_rtp,
        )
        self.calls[dialog.call_id] = call
        self.state.calls.add(call)
        self.counters.calls_offered += 1
        self._service(call)
        if self.state.webhook_url:
            call.webhook_task = asyncio.get_running_loop().create_task(self._post_webhook(call))
        else:
            logger.warning("SIP call %s: no webhook_url configured; nobody can accept it", call.id)

    # -- the dialog's outputs and timer -----------------------------------------------------------

    def _service(self, call: SipCall) -> None:
        """Send what the dialog queued, act on its events, re-arm its timer."""
        dialog = call.dialog
        for data, addr in dialog.datagrams_to_send():
            self._send(data, addr)
        for event in dialog.events():
            if event.kind == "ended":
                if event.reason == "timeout":
                    self.counters.calls_timed_out += 1
                logger.info("SIP call %s ended: %s", call.id, event.reason)
                self._end_media(call)
        handle = self._timers.pop(dialog.call_id, None)
        if handle is not None:
            handle.cancel()
        when = dialog.get_timer()
        loop = asyncio.get_running_loop()
        if when is not None:
            self._timers[dialog.call_id] = loop.call_at(
                loop.time() + max(0.0, when - time.monotonic()), self._on_timer, call
            )
        elif dialog.state is CallState.ENDED:
            self._timers[dialog.call_id] = loop.call_later(LINGER_S, self._finish, call)

    def _on_timer(self, call: SipCall) -> None:
        self._timers.pop(call.dialog.call_id, None)
        call.dialog.handle_timer(time.monotonic())
        self._service(call)

    def _end_media(self, call: SipCall) -> None:
        """The call is over for the app: unregister it, close its session (and so its sockets)."""
        self.state.calls.remove(call.id)
        if call.webhook_task is not None and not call.webhook_task.done():
            call.webhook_task.cancel()
        call.close_media()

    def _finish(self, call: SipCall) -> None:
        self._end_media(call)
        if self.calls.pop(call.dialog.call_id, None) is not None:
            for key, value in call.stats().items():
                if isinstance(value, int):
                    self._rtp_done[key] = self._rtp_done.get(key, 0) + value
        handle = self._timers.pop(call.dialog.call_id, None)
        if handle is not None:
            handle.cancel()

    # -- webhook ----------------------------------------------------------------------------------

    async def _post_webhook(self, call: SipCall) -> None:
        url = self.state.webhook_url
        assert url is not None
        if self._webhooks is None or self._webhooks.url != url:
            self._webhooks = WebhookSender(url, self.state.webhook_secret, self.webhook_timeout)
        event = incoming_call_event(call.id, call.dialog.invite, time.time())
        ok, detail = await self._webhooks.deliver(event)
        if ok:
            self.counters.webhooks_sent += 1
            return
        self.counters.webhooks_failed += 1
        logger.warning("SIP call %s: webhook to %s failed (%s); declining the call", call.id, url, detail)
        if call.dialog.reject(480, time.monotonic()):
            self._service(call)

    # -- the app's decisions (REST) ---------------------------------------------------------------

    def _live(self, call_id: str) -> SipCall | None:
        call = self.state.calls.get(call_id)
        if not isinstance(call, SipCall) or call.ended or self.calls.get(call.dialog.call_id) is not call:
            return None  # not a SIP call of this front, or over
        return call

    def _ringing(self, call_id: str) -> SipCall:
        call = self._live(call_id)
        if call is None:
            raise RequestRefused("call_not_found", f"Call '{call_id}' not found.", "call_id", status=404)
        if call.dialog.state is not CallState.RINGING or call.accepting:
            raise RequestRefused(
                "call_already_handled",
                f"Call '{call_id}' was already answered or ended.",
                "call_id",
                status=409,
            )
        return call

    async def accept_call(self, call_id: str, config: dict[str, Any]) -> SessionRunner:
        """Answer the call with a session configured by ``config`` (audio forced to what SIP negotiated)."""
        call = self._ringing(call_id)
        call.accepting = True  # a second accept while this one binds its port is a 409, not a second session
        fmt = {"type": f"audio/{call.answer.codec}"}
        config = dict(config)
        audio = dict(config.get("audio") or {})
        for side in ("input", "output"):
            part = dict(audio.get(side) or {})
            part["format"] = fmt  # the caller's codec is fixed by the SDP answer, not by the app
            audio[side] = part
        config["audio"] = audio
        try:
            runner = self.state.create_runner(
                model=config.get("model"),
                config=config,
                media=PCMU if call.answer.codec == "pcmu" else PCMA,
                formats_fixed=True,  # and a session.update's formats are dropped, as the accept body's
            )
        except RequestRefused as exc:
            if exc.status != 429:  # the accept body was checked by the route; a limit is what is left
                raise
            if call.dialog.reject(503, time.monotonic()):
                self._service(call)
            raise RequestRefused("rate_limit_exceeded", str(exc), "call_id", status=429) from None
        try:
            port = await call.open_rtp(self.host)
        except OSError as exc:
            runner.close()
            if call.dialog.reject(500, time.monotonic()):
                self._service(call)
            raise RequestRefused(
                "server_error", f"Call '{call_id}': no RTP port ({exc}).", "call_id", status=500
            ) from None
        if call.ended or call.dialog.state is not CallState.RINGING:  # cancelled while we bound the port
            runner.close()
            call.close_media()
            raise RequestRefused(
                "call_already_handled",
                f"Call '{call_id}' ended before it could be accepted.",
                "call_id",
                status=409,
            )
        sdp = build_answer(call.answer, self.host, port, int(time.time()), call.direction)
        try:
            # the first packet time is one lookahead away: the pacer pulls every frame that far ahead
            call.attach_runner(runner, self.pacer, time.monotonic_ns() + self.pacer.lookahead_ns)
        except (ValueError, RuntimeError) as exc:  # a non-numeric address; every native stream in use
            runner.close()
            call.close_media()
            status = 488 if isinstance(exc, ValueError) else 503
            if call.dialog.reject(status, time.monotonic()):
                self._service(call)
            http, code = (400, "invalid_value") if status == 488 else (429, "rate_limit_exceeded")
            raise RequestRefused(code, f"Call '{call_id}': {exc}.", "call_id", status=http) from None
        runner.on_close(lambda _r: self.hangup_call(call))
        call.dialog.accept(sdp, time.monotonic())
        self.counters.calls_accepted += 1
        self._service(call)
        return runner

    def reject_call(self, call_id: str, status: int) -> None:
        call = self._ringing(call_id)
        call.dialog.reject(status, time.monotonic())
        self.counters.calls_rejected += 1
        self._service(call)

    def refer_call(self, call_id: str, target_uri: str) -> None:
        call = self._live(call_id)
        if call is None:
            raise RequestRefused("call_not_found", f"Call '{call_id}' not found.", "call_id", status=404)
        if not call.dialog.refer(target_uri, time.monotonic()):
            raise RequestRefused(
                "call_not_active", f"Call '{call_id}' cannot be transferred now.", "call_id", status=409
            )
        self._service(call)

    def hangup_call(self, call: SipCall) -> None:
        if call.dialog.state is not CallState.ENDED and call.dialog.hangup(time.monotonic()):
            self._service(call)
        self._end_media(call)

    # -- output pacing ----------------------------------------------------------------------------

    def _pacing_failed(self, call: PacedCall) -> None:
        if isinstance(call, SipCall):
            self.hangup_call(call)


_FRONTS: weakref.WeakKeyDictionary[ServerState, SipFront] = weakref.WeakKeyDictionary()


def front_of(state: ServerState) -> SipFront | None:
    """The SIP front serving ``state`` (its REST routes decide its calls), if one was started."""
    return _FRONTS.get(state)
