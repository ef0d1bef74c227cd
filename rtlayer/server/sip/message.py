"""SIP messages (RFC 3261), sans-I/O: parse one datagram into a request or response, and back.

Only what a UAS on UDP needs: start line, headers (in order, repeated headers kept, compact forms
expanded, folded lines joined), a body sized by Content-Length, and the helpers that build a response
to a request the way RFC 3261 section 8.2.6 wants it (every Via copied in order, ``received`` and
``rport`` filled on the top one, a To tag added). Malformed input raises :class:`SipParseError`, which
the front counts (and answers 400 when the start line and headers were readable enough to answer, its
``request``); nothing here raises anything else on bad bytes. Numbers are ASCII digits only and
bounded in length (``str.isdigit`` accepts ``²`` and ``int`` accepts ``٣``; neither is SIP).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from rtlayer.exceptions import SipParseError

__all__ = [
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "ascii_int",
    "branch_id",
    "build_response",
    "header_param",
    "new_tag",
    "parse_message",
    "uri_of",
]

MAX_MESSAGE = 65_535
SIP_VERSION = "SIP/2.0"

# RFC 3261 section 7.3.3 compact forms, and the canonical spelling we write.
_COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "r": "Refer-To",
    "o": "Event",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Max-Forwards",
        "Allow",
        "Supported",
        "User-Agent",
        "Server",
        "Refer-To",
        "Referred-By",
        "Event",
        "Subscription-State",
        "Record-Route",
        "Route",
        "Accept",
        "Reason",
    )
}
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_DIGITS = re.compile(r"[0-9]+")
MAX_CSEQ = 2**31 - 1  # RFC 3261 8.1.1.5: "MUST be less than 2**31"


def ascii_int(text: str, max_digits: int = 10) -> int | None:
    """``text`` (surrounding blanks ignored) as a non-negative integer written in at most
    ``max_digits`` ASCII digits, else None. The one way SIP and SDP numbers are read here."""
    text = text.strip()
    if len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)


def _canonical(name: str) -> str:
    low = name.lower()
    if low in _COMPACT:
        return _COMPACT[low]
    return _CANONICAL.get(low, name)


@dataclass(slots=True)
class SipMessage:
    """Headers (ordered, repeats kept) and body, shared by requests and responses."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header (case-insensitive, compact forms accepted)."""
        want = _canonical(name).lower()
        for key, value in self.headers:
            if key.lower() == want:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, in order; comma-joined Via values are split."""
        want = _canonical(name).lower()
        out: list[str] = []
        for key, value in self.headers:
            if key.lower() == want:
                if want == "via":
                    out.extend(part.strip() for part in value.split(",") if part.strip())
                else:
                    out.append(value)
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every value of a header by one (appended if absent)."""
        canon = _canonical(name)
        low = canon.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != low]
        self.headers.append((canon, value))

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, method) of the CSeq header."""
        raw = (self.get("CSeq") or "").split()
        number = ascii_int(raw[0]) if len(raw) == 2 else None
        if number is None or number > MAX_CSEQ or not _TOKEN.match(raw[1]):
            raise SipParseError(f"invalid CSeq {self.get('CSeq')!r}")
        return number, raw[1].upper()

    def _head_and_body(self, start: str) -> bytes:
        lines = [start]
        for key, value in self.headers:
            if key.lower() != "content-length":
                lines.append(f"{key}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(slots=True)
class SipRequest(SipMessage):
    method: str = ""
    uri: str = ""

    def to_bytes(self) -> bytes:
        return self._head_and_body(f"{self.method} {self.uri} {SIP_VERSION}")


@dataclass(slots=True)
class SipResponse(SipMessage):
    status: int = 0
    reason: str = ""

    def to_bytes(self) -> bytes:
        return self._head_and_body(f"{SIP_VERSION} {self.status} {self.reason}")


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one UDP datagram. Raises :class:`SipParseError` on anything malformed."""
    if len(data) > MAX_MESSAGE:
        raise SipParseError("message too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")  # bare-LF senders exist; RFC 3261 7.5 tolerance
        if not sep:
            raise SipParseError("no end of headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # folded continuation of the previous header
            if not headers:
                raise SipParseError("continuation line before any header")
            key, value = headers[-1]
            headers[-1] = (key, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or not _TOKEN.match(name):
            raise SipParseError(f"bad header line {line[:60]!r}")
        headers.append((_canonical(name), value.strip()))

    msg: SipRequest | SipResponse
    parts = start.split(" ", 2)
    if parts[0] == SIP_VERSION:
        status = ascii_int(parts[1], 3) if len(parts) >= 2 else None
        if status is None or not 100 <= status <= 699:
            raise SipParseError(f"bad status line {start[:60]!r}")
        msg = SipResponse(headers=headers, status=status, reason=parts[2] if len(parts) > 2 else "")
    else:
        if len(parts) != 3 or parts[2] != SIP_VERSION or not _TOKEN.match(parts[0]) or not parts[1]:
            raise SipParseError(f"bad request line {start[:60]!r}")
        msg = SipRequest(headers=headers, method=parts[0].upper(), uri=parts[1])
    try:
        _check(msg, body)
    except SipParseError as exc:
        raise SipParseError(str(exc), msg if isinstance(msg, SipRequest) else None) from None
    return msg


def _check(msg: SipRequest | SipResponse, body: bytes) -> None:
    """Content-Length, the headers every message needs, and CSeq; sets the body."""
    length_text = msg.get("Content-Length")
    if length_text is not None:
        length = ascii_int(length_text)
        if length is None:
            raise SipParseError(f"bad Content-Length {length_text[:60]!r}")
        if length > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:length]
    msg.body = body
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        if not msg.get(required):
            raise SipParseError(f"missing or empty {required} header")
    msg.cseq  # noqa: B018 -- validates the CSeq now, so later code can trust it


def header_param(value: str, name: str) -> str | None:
    """A ``;name=value`` parameter of a header value (outside its ``<...>`` URI), or None."""
    tail = value.rsplit(">", 1)[-1] if "<" in value else value
    for part in tail.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        if key.lower() == name.lower():
            return val.strip()
    return None


def uri_of(value: str) -> str:
    """The URI inside a name-addr (``"Bob" <sip:bob@host>;tag=1`` -> ``sip:bob@host``)."""
    if "<" in value and ">" in value:
        return value[value.index("<") + 1 : value.index(">")]
    return value.split(";", 1)[0].strip()


def new_tag() -> str:
    return secrets.token_hex(6)


def branch_id() -> str:
    """A Via branch with the RFC 3261 magic cookie."""
    return "z9hG4bK" + secrets.token_hex(8)


def _stamp_via(via: str, source: tuple[str, int]) -> str:
    # RFC 3261 18.2.1 and RFC 3581: say where the request really came from, so the reply finds it.
    host, port = source[0], source[1]
    params = via.split(";")
    out = [params[0]]
    has_received = False
    for part in params[1:]:
        key = part.strip().split("=", 1)[0].lower()
        if key == "rport":
            out.append(f"rport={port}")
        elif key == "received":
            out.append(f"received={host}")
            has_received = True
        else:
            out.append(part)
    if not has_received:
        out.append(f"received={host}")
    return ";".join(out)


def build_response(
    request: SipRequest,
    status: int,
    reason: str,
    *,
    source: tuple[str, int] | None = None,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> SipResponse:
    """A response to ``request``: Vias copied in order (top one stamped), From, To (+tag), Call-ID, CSeq."""
    vias = request.get_all("Via")
    if source is not None and vias:
        vias[0] = _stamp_via(vias[0], source)
    out: list[tuple[str, str]] = [("Via", v) for v in vias]
    to = request.get("To") or ""
    if to_tag and header_param(to, "tag") is None and status != 100:
        to = f"{to};tag={to_tag}"
    out += [
        ("From", request.get("From") or ""),
        ("To", to),
        ("Call-ID", request.call_id),
        ("CSeq", request.get("CSeq") or ""),
    ]
    out += headers or []
    return SipResponse(headers=out, body=body, status=status, reason=reason)
