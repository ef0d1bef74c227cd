"""Standard Webhooks signatures, as the Realtime service signs ``realtime.call.incoming``.

The scheme (https://www.standardwebhooks.com): three headers, ``webhook-id``, ``webhook-timestamp``
(Unix seconds) and ``webhook-signature`` (space-separated ``v1,<base64>`` values, so that a key
rotation can carry several); the signed content is ``"{id}.{timestamp}.{body}"``; the MAC is
HMAC-SHA256 keyed with the secret, which is base64 after a ``whsec_`` prefix (a bare string is used as
its UTF-8 bytes, like ``openai``'s verifier does). A delivery older or newer than ``tolerance`` seconds
is refused, which stops replays. Comparison is constant-time.

Sans-I/O: time is an argument (``now``), defaulting to the wall clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from rtlayer.exceptions import WebhookVerificationError

__all__ = [
    "DEFAULT_TOLERANCE",
    "decode_secret",
    "generate_secret",
    "sign_webhook",
    "verify_webhook",
    "webhook_headers",
]

DEFAULT_TOLERANCE = 300
_PREFIX = "whsec_"


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key of a secret: base64 after ``whsec_``, else the string's bytes."""
    if isinstance(secret, bytes):
        return secret
    if not secret:
        raise WebhookVerificationError("the webhook secret is empty")
    if secret.startswith(_PREFIX):
        try:
            return base64.b64decode(secret[len(_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise WebhookVerificationError("the whsec_ secret is not valid base64") from None
    return secret.encode()


def generate_secret(nbytes: int = 24) -> str:
    """A fresh random ``whsec_`` secret."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def sign_webhook(msg_id: str, timestamp: int, body: str | bytes, secret: str | bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery."""
    payload = body if isinstance(body, bytes) else body.encode()
    signed = msg_id.encode() + b"." + str(int(timestamp)).encode() + b"." + payload
    mac = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_headers(
    msg_id: str, body: str | bytes, secret: str | bytes, *, now: float | None = None
) -> dict[str, str]:
    """The three headers a sender attaches to ``body``."""
    ts = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(msg_id, ts, body, secret),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP header names are case-insensitive; plain dicts are not.
    value = headers.get(name)
    if value is None:
        for key, val in headers.items():
            if key.lower() == name:
                value = val
                break
    if value is None:
        raise WebhookVerificationError(f"missing header {name!r}")
    return value


def verify_webhook(
    body: str | bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Check a delivery's signature and age; raise :class:`WebhookVerificationError` if it fails.

    Any one of the header's ``v1`` signatures matching is enough (secret rotation). Signatures of
    other versions are ignored.
    """
    msg_id = _header(headers, "webhook-id")
    ts_text = _header(headers, "webhook-timestamp")
    sig_header = _header(headers, "webhook-signature")
    try:
        ts = int(ts_text)
    except ValueError:
        raise WebhookVerificationError(f"invalid webhook-timestamp {ts_text!r}") from None
    current = time.time() if now is None else now
    if current - ts > tolerance:
        raise WebhookVerificationError("webhook timestamp is too old")
    if ts - current > tolerance:
        raise WebhookVerificationError("webhook timestamp is too new")
    expected = sign_webhook(msg_id, ts, body, secret)[3:].encode()
    matched = False
    for part in sig_header.split():
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        # compare_digest on every candidate: no early exit that would time which one matched
        matched |= hmac.compare_digest(expected, value.encode())
    if not matched:
        raise WebhookVerificationError("no webhook signature matches")
