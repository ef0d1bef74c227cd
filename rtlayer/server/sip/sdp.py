"""SDP offer/answer for a G.711 phone call (RFC 4566, RFC 3264), sans-I/O.

The offer's first audio stream is answered with the first of its codecs we take (PCMU or PCMA, in the
offerer's order of preference, RFC 3264 section 6.1), its packet time (``a=ptime``: 20 or 30 ms; 20
when absent or unusual) and its ``telephone-event`` payload type if it has one (RFC 4733 DTMF).
Numbers are read as SIP's are (:func:`~rtlayer.server.sip.message.ascii_int`); anything malformed
that matters raises :class:`SdpError` and nothing else, and a malformed attribute that does not matter
(an ``rtpmap`` or ``ptime`` we cannot read) is ignored, as RFC 4566 section 5.13 asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtlayer.exceptions import SdpError

from .message import ascii_int

__all__ = ["SdpAnswer", "SdpError", "SdpOffer", "build_answer", "negotiate", "parse_offer"]

# Static payload types of RFC 3551 we speak, and their rtpmap names.
_STATIC = {0: "pcmu", 8: "pcma"}
_NAMES = {"pcmu": "PCMU", "pcma": "PCMA"}
_PTIMES = (20, 30)


@dataclass(frozen=True, slots=True)
class SdpOffer:
    """What the caller offered for its audio stream."""

    address: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: dict[int, tuple[str, int]]  # pt -> (lowercase encoding name, clock rate)
    ptime: int | None
    direction: str


@dataclass(frozen=True, slots=True)
class SdpAnswer:
    """The negotiated stream: codec, its payload type, packet time and DTMF payload type."""

    codec: str  # "pcmu" | "pcma"
    payload_type: int
    ptime: int
    telephone_event: int | None
    remote: tuple[str, int]

    @property
    def frame_bytes(self) -> int:
        """G.711 bytes per packet: 8 samples (bytes) per ms."""
        return 8 * self.ptime


def parse_offer(sdp: bytes | str) -> SdpOffer:
    """The first ``m=audio`` stream of an offer; raises :class:`SdpError` if there is none."""
    text = sdp.decode("utf-8", "replace") if isinstance(sdp, bytes) else sdp
    session_addr: str | None = None
    media_addr: str | None = None
    port = -1
    pts: tuple[int, ...] = ()
    rtpmap: dict[int, tuple[str, int]] = {}
    ptime: int | None = None
    direction = "sendrecv"
    in_audio = False
    seen_audio = False
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            if seen_audio:
                in_audio = False
                continue  # only the first audio stream is ours; later ones are ignored
            fields = value.split()
            in_audio = len(fields) >= 4 and fields[0] == "audio"
            if in_audio:
                seen_audio = True
                numbers = [ascii_int(fields[1].split("/")[0], 5)] + [ascii_int(pt, 3) for pt in fields[3:]]
                if any(n is None for n in numbers) or max(n or 0 for n in numbers[1:]) > 127:
                    raise SdpError(f"bad m= line {line[:80]!r}")
                port, pts = numbers[0] or 0, tuple(n or 0 for n in numbers[1:])
        elif kind == "c":
            fields = value.split()
            if len(fields) >= 3:
                addr = fields[2].split("/")[0]
                if in_audio:
                    media_addr = addr
                elif not seen_audio:
                    session_addr = addr
        elif kind == "a" and in_audio:
            name, _, rest = value.partition(":")
            if name == "rtpmap":
                pt_text, _, enc = rest.partition(" ")
                enc_name, _, rate = enc.partition("/")
                pt_number = ascii_int(pt_text, 3)
                clock = ascii_int(rate.split("/")[0].strip() or "8000")
                if pt_number is not None and clock is not None:  # a malformed rtpmap is ignored
                    rtpmap[pt_number] = (enc_name.strip().lower(), clock)
            elif name == "ptime":
                ptime = ascii_int(rest, 4)  # unreadable: None, which negotiates the default
            elif name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                direction = name
    if not seen_audio:
        raise SdpError("the offer has no audio stream")
    address = media_addr or session_addr
    if address is None or not 0 <= port <= 65535:
        raise SdpError("the offer has no connection address")
    return SdpOffer(address, port, pts, rtpmap, ptime, direction)


def _codec_of(pt: int, rtpmap: dict[int, tuple[str, int]]) -> str | None:
    if pt in rtpmap:
        name, rate = rtpmap[pt]
        return name if name in _NAMES and rate == 8000 else None
    return _STATIC.get(pt)


def negotiate(offer: SdpOffer, codecs: tuple[str, ...] = ("pcmu", "pcma")) -> SdpAnswer:
    """Pick the offerer's most preferred codec among ``codecs``; raises :class:`SdpError` if none."""
    chosen: tuple[str, int] | None = None
    for pt in offer.payload_types:
        codec = _codec_of(pt, offer.rtpmap)
        if codec is not None and codec in codecs:
            chosen = (codec, pt)
            break
    if chosen is None:
        raise SdpError("no common codec: PCMU or PCMA required")
    te = next(
        (
            pt
            for pt in offer.payload_types
            if offer.rtpmap.get(pt, ("", 0))[0] == "telephone-event" and offer.rtpmap[pt][1] == 8000
        ),
        None,
    )
    ptime = offer.ptime if offer.ptime in _PTIMES else 20
    return SdpAnswer(chosen[0], chosen[1], ptime, te, (offer.address, offer.port))


def build_answer(answer: SdpAnswer, local_ip: str, local_port: int, session_id: int, direction: str) -> bytes:
    """The answer's SDP text."""
    pts = [answer.payload_type] + ([answer.telephone_event] if answer.telephone_event is not None else [])
    ip_kind = "IP6" if ":" in local_ip else "IP4"
    # RFC 3264 section 6.1: the answer's direction mirrors the offer's.
    mirror = {"sendonly": "recvonly", "recvonly": "sendonly"}.get(direction, direction)
    lines = [
        "v=0",
        f"o=rtlayer {session_id} {session_id} IN {ip_kind} {local_ip}",
        "s=rtlayer",
        f"c=IN {ip_kind} {local_ip}",
        "t=0 0",
        f"m=audio {local_port} RTP/AVP {' '.join(str(pt) for pt in pts)}",
        f"a=rtpmap:{answer.payload_type} {_NAMES[answer.codec]}/8000",
    ]
    if answer.telephone_event is not None:
        lines += [
            f"a=rtpmap:{answer.telephone_event} telephone-event/8000",
            f"a=fmtp:{answer.telephone_event} 0-16",
        ]
    lines += [f"a=ptime:{answer.ptime}", f"a={mirror}"]
    return ("\r\n".join(lines) + "\r\n").encode()
