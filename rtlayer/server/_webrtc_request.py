"""The body of ``POST /v1/realtime/calls``, parsed without I/O.

Two forms reach the endpoint (REALTIME_PROTOCOL.md section 5):

- ``Content-Type: application/sdp``: the offer is the whole body (the Agents JS SDK, the browser);
- ``multipart/form-data`` with a part ``sdp`` (the offer) and an optional part ``session`` (JSON
  session config) (openai-python's ``client.realtime.calls.create``).

``parse_call_request`` returns the offer and the session config or raises ``RequestRefused``
(with the HTTP status to answer) whose message is what the client will read in ``{"error": {"message": ...}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from rtlayer.exceptions import RequestRefused
from rtlayer.protocol import codec

__all__ = ["CallRequest", "check_offer", "parse_call_request"]

MAX_BODY_BYTES = 256 * 1024
"""An SDP offer is a few kB; anything near this is not one."""


@dataclass(frozen=True, slots=True)
class CallRequest:
    sdp: str
    session: dict[str, Any] | None


def parse_call_request(content_type: str, body: bytes) -> CallRequest:
    """Split a call request into its offer and session config (None when absent)."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestRefused(
            "invalid_request",
            f"request body too large ({len(body)} bytes, at most {MAX_BODY_BYTES})",
            status=413,
        )
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/sdp":
        return CallRequest(check_offer(_text(body, "SDP offer")), None)
    if mime == "multipart/form-data":
        return _parse_multipart(content_type, body)
    raise RequestRefused(
        "unsupported_content_type",
        "unsupported Content-Type "
        f"{mime or '(none)'!r}: send the SDP offer as application/sdp, or multipart/form-data "
        "with parts 'sdp' and 'session'",
        status=415,
    )


def check_offer(sdp: str) -> str:
    """Refuse what is plainly not an SDP offer with a message that says what is wrong."""
    text = sdp.strip()
    if not text:
        raise RequestRefused("invalid_offer", "the SDP offer is empty")
    if not text.startswith("v=0"):
        raise RequestRefused("invalid_offer", "invalid SDP offer: it must start with 'v=0'")
    if "\nm=" not in text.replace("\r\n", "\n"):
        raise RequestRefused("invalid_offer", "invalid SDP offer: it has no media section (m=)")
    # aiortc expects CRLF line endings; accept either.
    return "\r\n".join(text.replace("\r\n", "\n").split("\n")) + "\r\n"


def _parse_multipart(content_type: str, body: bytes) -> CallRequest:
    if "boundary=" not in content_type:
        raise RequestRefused("invalid_request", "multipart/form-data without a boundary")
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise RequestRefused("invalid_request", "malformed multipart/form-data body")
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    if "sdp" not in parts:
        raise RequestRefused("invalid_request", "multipart request without an 'sdp' part")
    session: dict[str, Any] | None = None
    if "session" in parts:
        try:
            loaded = codec.loads(_text(parts["session"], "session part"))
        except codec.TooDeep as exc:
            raise RequestRefused("invalid_value", f"invalid session: {exc}", "session") from None
        except ValueError as exc:
            raise RequestRefused("invalid_json", f"the 'session' part is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise RequestRefused("invalid_json", "the 'session' part must be a JSON object")
        session = loaded
    return CallRequest(check_offer(_text(parts["sdp"], "SDP offer")), session)


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRefused("invalid_request", f"the {what} is not UTF-8 text") from None
