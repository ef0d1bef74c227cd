"""Standard Webhooks signatures: ours verify with ``openai``'s verifier and theirs with ours."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import openai
import pytest

from rtlayer.exceptions import WebhookVerificationError
from rtlayer.protocol.webhooks import (
    generate_secret,
    sign_webhook,
    verify_webhook,
    webhook_headers,
)

SECRET = "whsec_" + base64.b64encode(b"rtlayer-test-secret-0123456789").decode()
BODY = json.dumps(
    {
        "id": "evt_123",
        "object": "event",
        "type": "realtime.call.incoming",
        "created_at": 1_700_000_000,
        "data": {"call_id": "rtc_abc", "sip_headers": [{"name": "From", "value": "<sip:a@b>"}]},
    }
)


def _reference_signature(msg_id: str, ts: int, body: str, key: bytes) -> str:
    """The scheme written out by hand, as the Standard Webhooks spec states it."""
    mac = hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_signature_matches_the_spec_by_hand() -> None:
    key = base64.b64decode(SECRET[len("whsec_") :])
    assert sign_webhook("msg_1", 1234, BODY, SECRET) == _reference_signature("msg_1", 1234, BODY, key)


def test_our_signature_unwraps_with_openai() -> None:
    headers = webhook_headers("wh_1", BODY, SECRET)
    client = openai.OpenAI(api_key="x", webhook_secret=SECRET)
    event = client.webhooks.unwrap(BODY, headers)
    assert event.type == "realtime.call.incoming"
    assert event.data.call_id == "rtc_abc"
    # a tampered body fails there too: the check is not vacuous
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(BODY.replace("rtc_abc", "rtc_abd"), headers)


def test_verify_accepts_what_openai_scheme_signs() -> None:
    now = int(time.time())
    key = base64.b64decode(SECRET[len("whsec_") :])
    headers = {
        "Webhook-Id": "wh_2",  # header names are case-insensitive
        "Webhook-Timestamp": str(now),
        "Webhook-Signature": _reference_signature("wh_2", now, BODY, key),
    }
    verify_webhook(BODY, headers, SECRET)
    verify_webhook(BODY.encode(), headers, SECRET)


def test_several_signatures_any_match() -> None:
    headers = webhook_headers("wh_3", BODY, SECRET)
    other = generate_secret()
    rotated = sign_webhook("wh_3", int(headers["webhook-timestamp"]), BODY, other)
    headers["webhook-signature"] = f"v2,ignored {rotated} {headers['webhook-signature']}"
    verify_webhook(BODY, headers, SECRET)
    verify_webhook(BODY, headers, other)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b, h: (b.replace("rtc_abc", "rtc_xyz"), h), "no webhook signature matches"),
        (lambda b, h: (b, {**h, "webhook-timestamp": str(int(time.time()) - 301)}), "too old"),
        (lambda b, h: (b, {**h, "webhook-timestamp": str(int(time.time()) + 301)}), "too new"),
        (lambda b, h: (b, {**h, "webhook-timestamp": "soon"}), "invalid webhook-timestamp"),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-id"}), "missing header"),
        (lambda b, h: (b, {**h, "webhook-signature": "v1,AAAA"}), "no webhook signature matches"),
    ],
)
def test_refusals(mutate, message) -> None:  # type: ignore[no-untyped-def]
    body, headers = mutate(BODY, webhook_headers("wh_4", BODY, SECRET))
    with pytest.raises(WebhookVerificationError, match=message):
        verify_webhook(body, headers, SECRET)


def test_old_timestamp_with_a_valid_signature_is_refused() -> None:
    old = time.time() - 600
    headers = webhook_headers("wh_5", BODY, SECRET, now=old)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(BODY, headers, SECRET)
    # the same delivery checked at its own time passes
    verify_webhook(BODY, headers, SECRET, now=old + 1)


def test_wrong_secret_is_refused() -> None:
    headers = webhook_headers("wh_6", BODY, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, headers, generate_secret())
    with pytest.raises(WebhookVerificationError, match="base64"):
        verify_webhook(BODY, headers, "whsec_***")


def test_plain_string_secret_like_openai() -> None:
    headers = webhook_headers("wh_7", BODY, "plain-secret")
    verify_webhook(BODY, headers, "plain-secret")
    openai.OpenAI(api_key="x").webhooks.verify_signature(BODY, headers, secret="plain-secret")
