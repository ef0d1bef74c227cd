"""Receive ``realtime.call.incoming`` webhooks in an aiohttp app: verify, parse, hand the call over.

```python
async def on_call(call: IncomingCall) -> None:
    await calls.accept(call.call_id, build_initial_config(instructions="..."))

app = web.Application()
add_webhook_route(app, "/webhook", secret="whsec_...", on_call=on_call)
```

The handler answers 401 to a delivery whose signature, timestamp or secret does not check out, 400
to a body that is not a webhook event, and 200 otherwise (other event types are acknowledged and
ignored). ``on_call`` runs as a task after the 200 is sent, so a slow app never makes the service
retry the delivery; its exceptions are logged, never lost silently.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..exceptions import WebhookVerificationError
from ..protocol import codec
from ..protocol.webhooks import DEFAULT_TOLERANCE, verify_webhook

__all__ = ["IncomingCall", "add_webhook_route", "parse_incoming_call"]

logger = logging.getLogger("rtlayer.transports.sip")

INCOMING = "realtime.call.incoming"


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """One ringing call, as the webhook announced it."""

    call_id: str
    """The ``rtc_...`` id for ``CallsClient`` and ``SIPTransport.connect(call_id=...)``."""
    sip_headers: tuple[tuple[str, str], ...]
    """The INVITE's headers as the service forwarded them, in order."""
    event_id: str
    created_at: int
    event: dict[str, Any] = field(repr=False)

    def header(self, name: str) -> str | None:
        """The first SIP header of that name (case-insensitive), e.g. ``From`` for the caller."""
        low = name.lower()
        return next((v for k, v in self.sip_headers if k.lower() == low), None)


def parse_incoming_call(
    body: str | bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> IncomingCall | None:
    """Verify a delivery and parse it; None for a verified event of another type.

    Raises ``WebhookVerificationError`` (bad signature) or ``ValueError`` (not an incoming-call event).
    """
    verify_webhook(body, headers, secret, tolerance, now=now)
    try:
        event = codec.loads(body)  # ValueError for what is not JSON or nests past MAX_DEPTH
    except ValueError:
        raise ValueError("the webhook body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ValueError("the webhook body is not an event object")
    if event["type"] != INCOMING:
        return None
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("call_id"), str) or not data["call_id"]:
        raise ValueError("realtime.call.incoming without data.call_id")
    raw_headers = data.get("sip_headers") or []
    pairs = tuple(
        (str(h.get("name", "")), str(h.get("value", ""))) for h in raw_headers if isinstance(h, dict)
    )
    return IncomingCall(
        call_id=data["call_id"],
        sip_headers=pairs,
        event_id=str(event.get("id", "")),
        created_at=_created_at(event.get("created_at")),
        event=event,
    )


OnCall = Callable[[IncomingCall], Awaitable[None] | None]


def add_webhook_route(
    app: web.Application,
    path: str,
    *,
    secret: str | bytes,
    on_call: OnCall,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Install ``POST path`` on ``app``: verified incoming calls go to ``on_call``."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(call: IncomingCall) -> None:
        try:
            result = on_call(call)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("on_call failed for %s", call.call_id)

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            call = parse_incoming_call(body, request.headers, secret, tolerance=tolerance)
        except WebhookVerificationError as exc:
            # said here too: the sender only sees a 401, the app's operator would otherwise see nothing
            # (a wrong secret refuses every call); the message names no secret
            logger.warning("refused a webhook delivery to %s: %s", path, exc)
            return web.json_response({"error": {"message": str(exc)}}, status=401)
        except ValueError as exc:
            logger.warning("refused a webhook delivery to %s: %s", path, exc)
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        if call is not None:
            task = asyncio.get_running_loop().create_task(run(call))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return web.json_response({}, status=200)

    app.router.add_post(path, handler)


def _created_at(value: Any) -> int:
    """The event's ``created_at`` (seconds), 0 when absent; ``ValueError`` for anything but a number."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"created_at is not a number: {type(value).__name__}")
    return int(value)  # finite: the parsers refuse numbers past a double
