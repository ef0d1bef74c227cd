"""Fuzz targets for the SIP front's parsers, for ``fuzz_runner`` (each in a child process, seeded).

Every input is random bytes (15 %) or a seed message mutated a few times (byte flips, deletions,
repeated slices, and splices of fragments that broke hand-written parsers before: non-ASCII digits,
numbers past ``int()``'s 4300-digit limit or 2**31, separators, NUL, the Unicode line breaks that
``str.splitlines`` honours). What each component documents, and so what the targets allow:

- ``sip.message``: ``parse_message`` raises ``SipParseError`` only; what parses goes through a fresh
  dialog (ringing or answered) and the front's replies (the 400 built from ``SipParseError.request``)
  without raising anything;
- ``sip.sdp``: ``parse_offer`` / ``negotiate`` raise ``SdpError`` only (the front's 488);
- ``sip.rtp_packet``: ``parse_rtp`` raises ``RtpError`` only, and what parses round-trips;
- ``sip.rtp_receiver``: a stream of up to 40 hostile packets (leaps, repeats, new SSRCs, other
  payload types, payloads up to 64 KB, garbage, strangers) into a guarded ``RtpReceiver``: nothing
  raises, the audio handed on is never more than the payload received plus the silence real time
  allows (the hardening issue's finding 1 as a property), the reorder buffer stays small, and a
  stranger never latches;
- ``sip.rtcp``: ``parse_rtcp`` raises ``RtcpError`` only.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from fuzz_runner import target

from rtlayer.exceptions import RtcpError, RtpError, SdpError, SipParseError
from rtlayer.server.sip.dialog import UasDialog
from rtlayer.server.sip.front import info_dtmf
from rtlayer.server.sip.message import SipRequest, build_response, parse_message
from rtlayer.server.sip.rtcp import parse_rtcp
from rtlayer.server.sip.rtp import RtpPacket, RtpReceiver, RtpSourceGuard, encode_dtmf, parse_rtp
from rtlayer.server.sip.sdp import build_answer, negotiate, parse_offer

# Fragments that broke (or could break) hand-written parsers: non-ASCII digits (² ٣), numbers past
# int()'s 4300-digit limit or 2**31, separators, NUL, Unicode line breaks that str.splitlines honours.
TOKENS = [
    b"\xc2\xb2",
    b"\xd9\xa3",
    b"9" * 5000,
    b"99999999999999999999",
    b"2147483648",
    b"-1",
    b"",
    b" ",
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b":",
    b"\x00",
    b"\xff",
    b"SIP/2.0",
    b"\t",
    b"<",
    b">",
    b";",
    b"=",
    b"/",
    b",",
    b";tag=",
    b";branch=z9hG4bK",
    b"\xe2\x80\xa8",
    b"\x1c",
    b"\x85",
    b"\xc2\x85",
]


def mutate(rng: random.Random, base: bytes) -> bytes:
    """``base`` with one to six edits."""
    b = bytearray(base)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if op < 0.25 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.4 and b:
            i = rng.randrange(len(b))
            del b[i : i + rng.randint(1, 20)]
        elif op < 0.65:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.choice(TOKENS)
        elif op < 0.8 and b:  # a slice repeated (headers, lines, blocks)
            i = rng.randrange(len(b))
            j = min(len(b), i + rng.randint(1, 64))
            b[i:i] = b[i:j] * rng.randint(1, 4)
        else:  # a run of digits replaced by a token
            digits = [i for i, c in enumerate(b) if 48 <= c <= 57]
            if digits:
                i = j = rng.choice(digits)
                while j < len(b) and 48 <= b[j] <= 57:
                    j += 1
                b[i:j] = rng.choice(TOKENS)
    return bytes(b)


def hostile(rng: random.Random, seeds: list[bytes], most: int = 300) -> bytes:
    """Random bytes (15 %) or a mutated seed."""
    if rng.random() < 0.15:
        return rng.randbytes(rng.randint(0, most))
    return mutate(rng, rng.choice(seeds))


# -- SIP ------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent.parent / "sip_fixtures"
PEER = ("127.0.0.1", 5061)
SDP = (
    b"v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
_HEAD = (
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1;rport\r\nMax-Forwards: 70\r\n"
    "From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>{to_tag}\r\nCall-ID: abc@127.0.0.1\r\n"
    "CSeq: {cseq}\r\nContact: <sip:b@127.0.0.1:5061>\r\n"
)


def _request(method: str, cseq: int, body: bytes = b"", to_tag: str = "", extra: str = "") -> bytes:
    head = _HEAD.format(to_tag=to_tag, cseq=f"{cseq} {method}") + extra
    return f"{method} sip:a@127.0.0.1 SIP/2.0\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


INVITE = _request("INVITE", 1, SDP, extra="Content-Type: application/sdp\r\nRecord-Route: <sip:p;lr>\r\n")
SIP_SEEDS = [
    INVITE,
    _request("ACK", 1, to_tag=";tag=T"),
    _request("BYE", 2, to_tag=";tag=T"),
    _request("CANCEL", 1),
    _request("OPTIONS", 3, to_tag=";tag=T"),
    _request(
        "INFO", 4, b"Signal=5\r\nDuration=160\r\n", ";tag=T", "Content-Type: application/dtmf-relay\r\n"
    ),
    _request(
        "NOTIFY", 5, b"SIP/2.0 200 OK\r\n", ";tag=T", "Subscription-State: terminated;reason=noresource\r\n"
    ),
    _request("INVITE", 6, SDP, ";tag=T"),
    b"SIP/2.0 200 OK\r\n"
    + _HEAD.format(to_tag=";tag=2", cseq="2 BYE").encode()
    + b"Content-Length: 0\r\n\r\n",
    b"SIP/2.0 202 Accepted\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\nf: <sip:a@h>;tag=T\r\nt: <sip:b@h>\r\n"
    b"i: abc@127.0.0.1\r\nCSeq: 1 REFER\r\nl: 0\r\n\r\n",
    (FIXTURES / "invite_compact.sip").read_bytes(),
    (FIXTURES / "invite_pcma_30ms.sip").read_bytes(),
]


def dialog(rng: random.Random) -> UasDialog:
    """A call from the INVITE seed: ringing, or answered."""
    invite = parse_message(INVITE)
    assert isinstance(invite, SipRequest)
    d = UasDialog(invite, PEER, local_contact="sip:rtlayer@127.0.0.1:5070", now=0.0)
    if rng.random() < 0.5:
        d.accept(SDP, 0.0)
    return d


def feed(d: UasDialog, data: bytes, now: float) -> None:
    """What the front does with one datagram for a known call (and the 400 for a malformed one)."""
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        if exc.request is not None:
            build_response(exc.request, 400, "Bad Request", source=PEER, to_tag="t").to_bytes()
        raise
    msg.to_bytes()
    if isinstance(msg, SipRequest):
        d.receive_request(msg, PEER, now)
        info_dtmf(msg)
    else:
        d.receive_response(msg, now)
    d.handle_timer(now)
    d.datagrams_to_send()
    d.events()


@target("sip.message", documented=(SipParseError,))
def sip_message(rng: random.Random) -> None:
    feed(dialog(rng), hostile(rng, SIP_SEEDS), 0.5)


# -- SDP ------------------------------------------------------------------------------------------

SDP_SEEDS = [
    b"v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
    b"v=0\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\nm=audio 7000/2 RTP/AVP 8 0\r\n"
    b"c=IN IP4 127.0.0.1/127\r\na=ptime:30\r\na=sendonly\r\nm=audio 7002 RTP/AVP 0\r\n",
    b"v=0\nc=IN IP4 192.168.1.20\nm=audio 5004 RTP/AVP 111 9 101\na=rtpmap:111 opus/48000/2\n"
    b"a=rtpmap:9 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=recvonly\n",
]


@target("sip.sdp", documented=(SdpError,))
def sip_sdp(rng: random.Random) -> None:
    offer = parse_offer(hostile(rng, SDP_SEEDS))
    build_answer(negotiate(offer), "127.0.0.1", 4000, 1, offer.direction)


# -- RTP ------------------------------------------------------------------------------------------

RTP_SEEDS = [
    RtpPacket(0, 1, 160, 42, b"\xff" * 160, marker=True).to_bytes(),
    bytes([0xB1, 0x08])
    + struct.pack("!HII", 5, 800, 9)
    + b"CSRC"
    + struct.pack("!HH", 0xBEDE, 1)
    + b"\x00" * 4
    + b"\xd5" * 240
    + b"\x00\x00\x03",
    encode_dtmf("5", sequence=7, timestamp=8000, ssrc=42, duration=480, end=True),
]


@target("sip.rtp_packet", documented=(RtpError,))
def sip_rtp_packet(rng: random.Random) -> None:
    pkt = parse_rtp(hostile(rng, RTP_SEEDS, 80))
    again = parse_rtp(
        RtpPacket(pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.payload).to_bytes()
    )
    assert again.payload == pkt.payload and again.sequence == pkt.sequence


MAX_CONCEAL_MS = 200
CALLER, STRANGER = ("127.0.0.1", 5000), ("127.0.0.2", 5000)


def _packet(rng: random.Random, seq: int, ssrc: int) -> bytes:
    size = rng.choice([160, 160, 160, 240, 1, 1400, 65_000 if rng.random() < 0.05 else 160])
    pt = rng.choice([0, 0, 0, 0, 101, 8, 13])
    payload = b"\x55" * size if pt != 101 else bytes([rng.randrange(20), 0x8A, 0, 160])
    return RtpPacket(pt, seq, rng.getrandbits(32), ssrc, payload).to_bytes()


@target("sip.rtp_receiver", documented=())
def sip_rtp_receiver(rng: random.Random) -> None:
    rx = RtpReceiver("pcmu", 0, 101, max_conceal_ms=MAX_CONCEAL_MS)
    guard = RtpSourceGuard(("127.0.0.1", 4000), [0, 101])
    seq, ssrc, now, payload_in, audio_out = rng.randrange(65536), 42, 0.0, 0, 0
    for _ in range(rng.randint(1, 40)):
        if rng.random() < 0.15:
            data = hostile(rng, RTP_SEEDS, 80)
        else:
            step = rng.choice(
                [1, 1, 1, 1, 2, 3, 0, -1, -2, 5, 50, 0x7FFF, 0x8000, 40_000, rng.randrange(65536)]
            )
            seq = (seq + step) & 0xFFFF
            if rng.random() < 0.02:
                ssrc = rng.getrandbits(32)
            data = _packet(rng, seq, ssrc)
        now += rng.choice([0.0, 0.0, 0.001, 0.02, 0.02, 0.05, 1.0])
        if not guard.admit(data, CALLER if rng.random() < 0.9 else STRANGER):
            continue
        try:
            pkt = parse_rtp(data)
            payload_in += len(pkt.payload) if pkt.payload_type == 0 else 0
        except RtpError:
            pass
        rx.receive(data, now)
        if rng.random() < 0.1:
            rx.flush_stale(now + 0.1)
        audio_out += len(rx.pop_audio())
        rx.pop_digits()
        allowed = payload_in + 8 * MAX_CONCEAL_MS + round((now + 0.1) * 8000) + 8
        assert audio_out <= allowed, (audio_out, allowed)
        assert rx.buffered <= rx.depth + 1  # the reorder buffer stays small
        assert guard.latched in (None, CALLER)  # a stranger never latches


# -- RTCP -----------------------------------------------------------------------------------------


def _rr(blocks: int) -> bytes:
    block = struct.pack("!IB3sIIII", 0xBEEF, 12, (5).to_bytes(3, "big"), 70_000, 30, 0, 0)
    return struct.pack("!BBHI", 0x80 | blocks, 201, 1 + 6 * blocks, 0xCAFE) + block * blocks


SDES = struct.pack("!BBHI", 0x81, 202, 4, 0xCAFE) + b"\x01\x08rtlayer1\x00\x00"
SR = struct.pack("!BBHI", 0x81, 200, 12, 7) + b"\x00" * 20 + _rr(1)[8:]
BYE = struct.pack("!BBHI", 0xA1, 203, 2, 7) + b"\x00\x00\x00\x04"
RTCP_SEEDS = [_rr(0), _rr(1) + SDES, _rr(3) + SDES + BYE, SR + SDES, SR + BYE]


@target("sip.rtcp", documented=(RtcpError,))
def sip_rtcp(rng: random.Random) -> None:
    parse_rtcp(hostile(rng, RTCP_SEEDS))
