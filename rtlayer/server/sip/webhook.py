"""Announce an incoming call to the app: the signed ``realtime.call.incoming`` webhook.

The body is the service's event (``{id, object: "event", type, created_at, data: {call_id,
sip_headers}}``, the INVITE's headers in order, Vias left out); with a secret, the Standard Webhooks
headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) sign it, so that the app's
verifier (``rtlayer.protocol.webhooks.verify_webhook`` or ``openai``'s ``webhooks.unwrap``) accepts it.
"""

from __future__ import annotations

import json
import time

import aiohttp

from rtlayer.protocol.ids import new_id
from rtlayer.protocol.webhooks import webhook_headers
from rtlayer.server.sip.message import SipRequest

__all__ = ["WebhookSender", "incoming_call_event"]


def incoming_call_event(call_id: str, invite: SipRequest, now: float) -> dict[str, object]:
    return {
        "id": new_id("evt"),
        "object": "event",
        "type": "realtime.call.incoming",
        "created_at": int(now),
        "data": {
            "call_id": call_id,
            "sip_headers": [{"name": k, "value": v} for k, v in invite.headers if k.lower() != "via"],
        },
    }


class WebhookSender:
    """Posts webhooks to one URL over one HTTP client session, with a total timeout per delivery."""

    def __init__(self, url: str, secret: str | None, timeout: float) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    async def deliver(self, event: dict[str, object]) -> tuple[bool, str]:
        """(delivered, what happened): a 2xx is delivered; anything else says why not."""
        body = json.dumps(event, separators=(",", ":"))
        headers = {"Content-Type": "application/json", "User-Agent": "rtlayer-sip"}
        if self.secret:
            headers.update(webhook_headers(new_id("evt"), body, self.secret, now=time.time()))
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._http.post(self.url, data=body.encode(), headers=headers) as resp:
                await resp.read()
                return 200 <= resp.status < 300, f"HTTP {resp.status}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            return False, f"{type(exc).__name__}: {exc}"

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
