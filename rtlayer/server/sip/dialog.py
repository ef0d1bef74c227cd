"""The server side of one SIP call (an INVITE dialog, RFC 3261), sans-I/O, as a transition table.

States and the inputs that move them (anything not in the table is answered as noted, or ignored)::

    state       input              action                               next
    (new)       invite             send 100 Trying, 180 Ringing         ringing
    ringing     invite (resent)    resend 180 Ringing                   ringing
    ringing     accept             send 200 OK + SDP, start Timer G     answering
    ringing     reject             send the status, start Timer G       rejecting
    ringing     refer              send 302 with Contact = target       rejecting
    ringing     cancel             200 to CANCEL, 487 to INVITE         rejecting
    ringing     ring_timeout       send 408 Request Timeout             rejecting
    answering   invite (resent)    resend 200 OK                        answering
    answering   ack                media confirmed                      confirmed
    answering   timer              resend 200 (T1 doubling to T2);      answering
                                   after 64*T1 without ACK: BYE         hanging_up
    answering   bye                200 OK                               ended
    answering   hangup             send BYE                             hanging_up
    rejecting   invite (resent)    resend the final status              rejecting
    rejecting   ack                -                                    ended
    rejecting   timer              resend; after 64*T1                  ended
    confirmed   invite (resent)    resend 200 OK                        confirmed
    confirmed   invite (re-INVITE) 200 OK with the same SDP             confirmed
    confirmed   bye                200 OK                               ended
    confirmed   hangup             send BYE, start Timer E              hanging_up
    confirmed   refer              send REFER (Refer-To = target)       confirmed
    confirmed   notify             200 OK; a final sipfrag: send BYE    hanging_up
    hanging_up  bye_response       -                                    ended
    hanging_up  bye                200 OK (crossing BYEs)               ended
    hanging_up  timer              resend BYE; after 64*T1              ended
    ended       bye (resent)       200 OK                               ended

An in-dialog request the table does not know gets 200 (OPTIONS, INFO) or 481/405; a CANCEL after the
final response gets 200 and changes nothing (RFC 3261 9.2). Every reply goes to the address the
request came from (rport, RFC 3581); our own requests go to where the INVITE came from.

Only requests of this dialog reach the table (:meth:`UasDialog.matches`, RFC 3261 12.2.2): the
caller's From tag, and our To tag, except for the INVITE's retransmissions and its CANCEL, which carry
no To tag and match the INVITE's transaction (its top Via branch) instead. Anything else with this
Call-ID gets 481 (an ACK: nothing) and changes nothing, so knowing a call's Call-ID is not enough to
end it. Responses count only when they answer a request we sent (its Via branch and our From tag).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .message import (
    SipMessage,
    SipRequest,
    SipResponse,
    ascii_int,
    branch_id,
    build_response,
    header_param,
    new_tag,
    uri_of,
)

__all__ = ["T1", "T2", "CallState", "DialogEvent", "UasDialog"]

T1 = 0.5
T2 = 4.0
_GIVE_UP = 64 * T1
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO"
REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    202: "Accepted",
    302: "Moved Temporarily",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    603: "Decline",
}


class CallState(Enum):
    RINGING = "ringing"
    ANSWERING = "answering"
    REJECTING = "rejecting"
    CONFIRMED = "confirmed"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class DialogEvent:
    """What the front must know: ``answered``, ``confirmed``, ``refer_accepted`` or ``ended``."""

    kind: str
    reason: str = ""
    status: int | None = None


Addr = tuple[str, int]
_S = CallState


class UasDialog:
    """One incoming call. Feed it requests, responses, app decisions and time; drain what to send."""

    def __init__(
        self, invite: SipRequest, source: Addr, *, local_contact: str, now: float, ring_timeout: float = 60.0
    ) -> None:
        self.invite = invite
        self.source = source
        self.call_id = invite.call_id
        self.local_contact = local_contact
        self.local_tag = new_tag()
        self.remote_tag = header_param(invite.get("From") or "", "tag")
        self._invite_branch = _branch(invite)
        self._sent_branches: deque[str] = deque(maxlen=8)  # of our requests (BYE, REFER) lately sent
        self.refused = 0  # requests and responses that did not belong to this dialog
        self.remote_target = uri_of(invite.get("Contact") or invite.get("From") or "")
        # the UAS's route set: the INVITE's Record-Route values in order (loose routing assumed; our own
        # requests still go to the INVITE's source, which is the first proxy when there is one)
        self.route_set = [
            part.strip()
            for value in invite.get_all("Record-Route")
            for part in value.split(",")
            if part.strip()
        ]
        self.state = CallState.RINGING
        self.local_cseq = 0
        self.sdp_answer = b""
        self._invite_cseq = invite.cseq[0]
        self._final: SipResponse | None = None  # the INVITE's final response, resent until ACK
        self._pending: SipRequest | None = None  # our BYE, resent until answered
        self._interval = T1
        self._resend_at: float | None = None
        self._give_up_at: float | None = None
        self._ring_deadline: float | None = now + ring_timeout
        self._outbox: list[tuple[bytes, Addr]] = []
        self._events: list[DialogEvent] = []
        self.end_reason = ""
        self._handlers = self._table()
        self._send(build_response(invite, 100, "Trying", source=source), source)
        # 180 while the app decides (phones show "ringing" and some give up on a call that only got
        # 100); it carries our tag, the early dialog's, so the 200 OK that follows matches it
        self._ringing = build_response(invite, 180, "Ringing", source=source, to_tag=self.local_tag)
        self._send(self._ringing, source)

    # ---------------------------------------------------------------- table

    def _table(self) -> dict[tuple[CallState, str], Callable[..., None]]:
        return {
            (_S.RINGING, "invite"): self._resend_ringing,
            (_S.RINGING, "accept"): self._do_accept,
            (_S.RINGING, "reject"): self._do_reject,
            (_S.RINGING, "refer"): self._do_redirect,
            (_S.RINGING, "cancel"): self._do_cancel,
            (_S.RINGING, "ring_timeout"): self._do_ring_timeout,
            (_S.ANSWERING, "invite"): self._resend_final,
            (_S.ANSWERING, "ack"): self._do_confirm,
            (_S.ANSWERING, "timer"): self._resend_or_bye,
            (_S.ANSWERING, "bye"): self._do_remote_bye,
            (_S.ANSWERING, "hangup"): self._do_hangup,
            (_S.REJECTING, "invite"): self._resend_final,
            (_S.REJECTING, "ack"): self._do_end_after_ack,
            (_S.REJECTING, "timer"): self._resend_or_end,
            (_S.CONFIRMED, "invite"): self._do_reinvite,
            (_S.CONFIRMED, "bye"): self._do_remote_bye,
            (_S.CONFIRMED, "hangup"): self._do_hangup,
            (_S.CONFIRMED, "refer"): self._do_refer,
            (_S.CONFIRMED, "notify"): self._do_notify,
            (_S.HANGING_UP, "bye_response"): self._do_bye_answered,
            (_S.HANGING_UP, "bye"): self._do_remote_bye,
            (_S.HANGING_UP, "timer"): self._resend_or_end,
            (_S.ENDED, "bye"): self._answer_ok,
        }

    def _fire(self, name: str, *args: object) -> bool:
        handler = self._handlers.get((self.state, name))
        if handler is None:
            return False
        handler(*args)
        return True

    # ---------------------------------------------------------------- inputs

    def matches(self, req: SipRequest) -> bool:
        """Whether ``req`` (with this dialog's Call-ID) belongs to this dialog: see the module's text."""
        if header_param(req.get("From") or "", "tag") != self.remote_tag:
            return False
        to_tag = header_param(req.get("To") or "", "tag")
        if to_tag is None:
            return req.method in ("INVITE", "CANCEL") and _branch(req) == self._invite_branch
        return to_tag == self.local_tag

    def receive_request(self, req: SipRequest, source: Addr, now: float) -> bool:
        """A request with this dialog's Call-ID. False if it was not this dialog's (answered 481)."""
        if not self.matches(req):
            self.refused += 1
            if req.method != "ACK":
                # a tag of its own: a refusal must not tell a stranger the dialog's tag
                refusal = build_response(req, 481, REASONS[481], source=source, to_tag=new_tag())
                self._send(refusal, source)
            return False
        self._dispatch(req, source, now)
        return True

    def _dispatch(self, req: SipRequest, source: Addr, now: float) -> None:
        method = req.method
        name = {"INVITE": "invite", "ACK": "ack", "BYE": "bye", "CANCEL": "cancel", "NOTIFY": "notify"}.get(
            method
        )
        if name == "cancel":
            if not self._fire("cancel", req, source, now):
                self._reply(req, source, 200)  # too late to cancel: 200 and nothing changes
            return
        if name is not None and self._fire(name, req, source, now):
            return
        if method == "ACK":
            return  # ACKs are never answered
        if method in ("OPTIONS", "INFO"):
            self._reply(req, source, 200, [("Allow", ALLOW)])
        elif method in ("INVITE", "BYE", "NOTIFY"):
            self._reply(req, source, 481)
        else:
            self._reply(req, source, 405, [("Allow", ALLOW)])

    def receive_response(self, resp: SipResponse, now: float) -> bool:
        """A response with this dialog's Call-ID. False if it answers nothing we sent (ignored)."""
        if (
            _branch(resp) not in self._sent_branches
            or header_param(resp.get("From") or "", "tag") != self.local_tag
        ):
            self.refused += 1
            return False
        if resp.status < 200:
            return True
        method = resp.cseq[1]
        if method == "BYE":
            self._fire("bye_response", resp, now)
        elif method == "REFER":
            self._events.append(
                DialogEvent("refer_accepted" if resp.status < 300 else "refer_failed", status=resp.status)
            )
        return True

    def accept(self, sdp: bytes, now: float) -> bool:
        """The app accepted: 200 OK with ``sdp``. False if the call is past ringing."""
        return self._fire("accept", sdp, now)

    def reject(self, status: int, now: float) -> bool:
        return self._fire("reject", status, now)

    def refer(self, target_uri: str, now: float) -> bool:
        """Before answering: 302 redirect; once answered: an in-dialog REFER."""
        return self._fire("refer", target_uri, now)

    def hangup(self, now: float) -> bool:
        """Send BYE; False if there is no answered call to hang up (then the call is ended otherwise)."""
        if self.state is _S.RINGING:
            return self._fire("reject", 480, now)
        return self._fire("hangup", now)

    def get_timer(self) -> float | None:
        times = [t for t in (self._resend_at, self._ring_deadline) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self._ring_deadline is not None and now >= self._ring_deadline:
            self._ring_deadline = None
            self._fire("ring_timeout", now)
        if self._resend_at is not None and now >= self._resend_at:
            self._fire("timer", now)

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[DialogEvent]:
        out, self._events = self._events, []
        return out

    # ---------------------------------------------------------------- actions

    def _send(self, msg: SipRequest | SipResponse, addr: Addr) -> None:
        self._outbox.append((msg.to_bytes(), addr))

    def _reply(
        self, req: SipRequest, source: Addr, status: int, headers: list[tuple[str, str]] | None = None
    ) -> None:
        resp = build_response(
            req, status, REASONS.get(status, "Unknown"), source=source, to_tag=self.local_tag, headers=headers
        )
        self._send(resp, source)

    def _answer_ok(self, req: SipRequest, source: Addr, now: float) -> None:
        self._reply(req, source, 200)

    def _final_response(self, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self._ring_deadline = None
        self._final = build_response(
            self.invite,
            status,
            REASONS.get(status, "Unknown"),
            source=self.source,
            to_tag=self.local_tag,
            headers=headers,
            body=body,
        )
        self._send(self._final, self.source)

    def _arm(self, now: float) -> None:
        self._interval = T1
        self._resend_at = now + T1
        self._give_up_at = now + _GIVE_UP

    def _end(self, reason: str, status: int | None = None) -> None:
        self.state = _S.ENDED
        self._resend_at = self._ring_deadline = None
        self.end_reason = reason
        self._events.append(DialogEvent("ended", reason, status))

    def _resend_ringing(self, req: SipRequest, source: Addr, now: float) -> None:
        # RFC 3261 17.2.1: a retransmitted INVITE gets the most recent provisional response again
        self._send(self._ringing, self.source)

    def _do_accept(self, sdp: bytes, now: float) -> None:
        self.sdp_answer = sdp
        # RFC 3261 12.1.1: a 2xx carries the INVITE's Record-Route, so the proxies stay in the path
        headers = [("Record-Route", rr) for rr in self.route_set]
        headers += [
            ("Contact", f"<{self.local_contact}>"),
            ("Allow", ALLOW),
            ("Content-Type", "application/sdp"),
        ]
        self._final_response(200, headers, sdp)
        self._arm(now)
        self.state = _S.ANSWERING
        self._events.append(DialogEvent("answered"))

    def _do_reject(self, status: int, now: float) -> None:
        self._final_response(status, [])
        self._arm(now)
        self.state = _S.REJECTING
        self._events.append(DialogEvent("ended", "rejected", status))

    def _do_redirect(self, target: str, now: float) -> None:
        self._final_response(302, [("Contact", f"<{target}>")])
        self._arm(now)
        self.state = _S.REJECTING
        self._events.append(DialogEvent("ended", "referred", 302))

    def _do_cancel(self, req: SipRequest, source: Addr, now: float) -> None:
        self._reply(req, source, 200)
        self._final_response(487, [])
        self._arm(now)
        self.state = _S.REJECTING
        self._events.append(DialogEvent("ended", "cancelled", 487))

    def _do_ring_timeout(self, now: float) -> None:
        self._final_response(408, [])
        self._arm(now)
        self.state = _S.REJECTING
        self._events.append(DialogEvent("ended", "timeout", 408))

    def _resend_final(self, req: SipRequest, source: Addr, now: float) -> None:
        if self._final is not None:
            self._send(self._final, self.source)

    def _do_confirm(self, req: SipRequest, source: Addr, now: float) -> None:
        self._resend_at = self._give_up_at = None
        self.state = _S.CONFIRMED
        self._events.append(DialogEvent("confirmed"))

    def _do_end_after_ack(self, req: SipRequest, source: Addr, now: float) -> None:
        self._resend_at = self._give_up_at = None
        self.state = _S.ENDED  # the "ended" event went out with the rejection itself

    def _backoff(self, now: float) -> bool:
        """Resend the pending message; False once it is time to give up (Timer H / F)."""
        if self._give_up_at is not None and now >= self._give_up_at:
            return False
        self._interval = min(self._interval * 2, T2)
        self._resend_at = now + self._interval
        if self._pending is not None:
            self._send(self._pending, self.source)
        elif self._final is not None:
            self._send(self._final, self.source)
        return True

    def _resend_or_bye(self, now: float) -> None:
        if not self._backoff(now):
            self._do_hangup(now, reason="no_ack")

    def _resend_or_end(self, now: float) -> None:
        if not self._backoff(now):
            self._resend_at = None
            if self.state is _S.HANGING_UP:
                self._end(self.end_reason or "local_hangup")
            else:
                self.state = _S.ENDED

    def _do_remote_bye(self, req: SipRequest, source: Addr, now: float) -> None:
        self._reply(req, source, 200)
        self._end("remote_hangup")

    def _new_request(self, method: str, headers: list[tuple[str, str]] | None = None) -> SipRequest:
        self.local_cseq += 1
        host = self.local_contact.split("@")[-1]
        local = f"{self.invite.get('To')};tag={self.local_tag}"
        branch = branch_id()
        self._sent_branches.append(branch)
        return SipRequest(
            method=method,
            uri=self.remote_target,
            headers=[
                ("Via", f"SIP/2.0/UDP {host};branch={branch};rport"),
                ("Max-Forwards", "70"),
                ("From", local),
                ("To", self.invite.get("From") or ""),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.local_cseq} {method}"),
                ("Contact", f"<{self.local_contact}>"),
                *[("Route", route) for route in self.route_set],
                *(headers or []),
            ],
        )

    def _do_hangup(self, now: float, reason: str = "local_hangup") -> None:
        self._pending = self._new_request("BYE")
        self._send(self._pending, self.source)
        self._arm(now)
        self.end_reason = reason
        self.state = _S.HANGING_UP

    def _do_bye_answered(self, resp: SipResponse, now: float) -> None:
        self._pending = None
        self._end(self.end_reason or "local_hangup", resp.status)

    def _do_reinvite(self, req: SipRequest, source: Addr, now: float) -> None:
        if req.cseq[0] == self._invite_cseq:
            self._resend_final(req, source, now)
            return
        headers = [("Contact", f"<{self.local_contact}>"), ("Content-Type", "application/sdp")]
        resp = build_response(
            req, 200, "OK", source=source, to_tag=self.local_tag, headers=headers, body=self.sdp_answer
        )
        self._send(resp, source)

    def _do_refer(self, target: str, now: float) -> None:
        self._send(self._new_request("REFER", [("Refer-To", f"<{target}>")]), self.source)

    def _do_notify(self, req: SipRequest, source: Addr, now: float) -> None:
        self._reply(req, source, 200)
        # RFC 3515: the NOTIFY body is a sipfrag status line; a final 2xx means the transfer worked.
        frag = req.body.decode("utf-8", "replace").split()
        status = ascii_int(frag[1], 3) if len(frag) >= 2 else None
        done = (header_param(req.get("Subscription-State") or "", "reason") is not None) or (
            status is not None and 200 <= status < 300
        )
        if done:
            self._do_hangup(now, reason="referred")


def _branch(msg: SipMessage) -> str | None:
    """The top Via's branch: what names a transaction (RFC 3261 17.2.3)."""
    vias = msg.get_all("Via")
    return header_param(vias[0], "branch") if vias else None
