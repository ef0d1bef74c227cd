"""``CallsClient``: the Calls API of a SIP call (accept, reject, refer, hang up) over httpx.

```python
async with CallsClient(base_url=server.url + "/v1", api_key="sk-...") as calls:
    await calls.accept(call_id, build_initial_config(instructions="Be brief."))
    ...
    await calls.hangup(call_id)
```

Every request has a timeout (``ConnectTimeout`` when nothing answers); an HTTP error raises
:class:`CallsAPIError` whose text is the server's own ``error.message`` and which keeps the status and
body. The API key goes in the ``Authorization`` header and never into a message.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from ..exceptions import ConnectError, ConnectTimeout, RtlayerError
from ..protocol import codec
from ..protocol.session_config import without_formats

__all__ = ["DEFAULT_API_BASE", "CallsAPIError", "CallsClient", "sip_session_config", "warn_dropped_formats"]

logger = logging.getLogger("rtlayer.transports.sip")

DEFAULT_API_BASE = "https://api.openai.com/v1"


def sip_session_config(config: Any, where: str) -> dict[str, Any]:
    """``config`` (a dict in the GA or legacy shape, or a pydantic model such as the Agents SDK's
    ``RealtimeSessionCreateRequest``) in the GA shape, with its audio formats dropped and one warning
    saying which.

    A SIP call's audio is the caller's codec, fixed by the SDP answer (PCMU or PCMA); the service converts
    for the model, so a format in the session means nothing there. SDKs build configs with formats
    (``audio/pcm`` 24 kHz), so dropping them keeps their configs usable on a phone call. The three SIP
    layers (``build_initial_config``, ``CallsClient.accept`` and ``SIPTransport``) agree on this, and
    the embedded server treats an accept body the same way.
    """
    session, dropped = without_formats(config)
    warn_dropped_formats(where, dropped)
    return session


def warn_dropped_formats(where: str, dropped: list[str]) -> None:
    """The one warning for the formats ``without_formats`` took out of a SIP call's config."""
    if dropped:
        logger.warning(
            "%s: dropping %s: a SIP call's audio is the caller's codec, negotiated over SIP",
            where,
            ", ".join(dropped),
        )


class CallsAPIError(RtlayerError):
    """The server refused a Calls API request; ``status``, ``code`` and ``body`` keep what it said."""

    def __init__(self, message: str, *, status: int, code: str | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


class CallsClient:
    """Controls SIP calls through ``POST {base_url}/realtime/calls/{call_id}/...``."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_API_BASE).rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def accept(self, call_id: str, session_config: Mapping[str, Any] | Any) -> None:
        """Answer the call; ``session_config`` is the GA session (see ``build_initial_config``), a dict
        or a pydantic model (the Agents SDK's payload); audio formats are dropped with one warning."""
        body = sip_session_config(session_config, f"CallsClient.accept {call_id}")
        body.setdefault("type", "realtime")
        await self._post(call_id, "accept", body)

    async def reject(self, call_id: str, status_code: int = 603) -> None:
        """Decline the call with a SIP status (603 Decline by default)."""
        await self._post(call_id, "reject", {"status_code": status_code})

    async def refer(self, call_id: str, target_uri: str) -> None:
        """Transfer the call to a ``sip:`` or ``tel:`` URI."""
        await self._post(call_id, "refer", {"target_uri": target_uri})

    async def hangup(self, call_id: str) -> None:
        """End the call (the server sends BYE)."""
        await self._post(call_id, "hangup", None)

    async def _post(self, call_id: str, action: str, body: dict[str, Any] | None) -> None:
        if not call_id:
            raise ValueError("call_id must be a non-empty string")
        url = f"{self.base_url}/realtime/calls/{quote(call_id, safe='')}/{action}"
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        content = json.dumps(body).encode() if body is not None else b""
        try:
            resp = await self._http.post(url, content=content, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            raise ConnectTimeout(f"{action} {call_id}: no answer within {self.timeout} s") from None
        except httpx.HTTPError as exc:
            raise ConnectError(f"{action} {call_id}: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            text = resp.text
            message, code = _error_of(text)
            raise CallsAPIError(
                f"{action} {call_id} failed: HTTP {resp.status_code}: {message}",
                status=resp.status_code,
                code=code,
                body=text,
            )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> CallsClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _error_of(text: str) -> tuple[str, str | None]:
    """The server's ``error.message`` (and ``code``) from a JSON error body, else the body itself."""
    try:
        data: Any = codec.loads(text)
    except ValueError:
        return (text[:500] or "(empty body)"), None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        return str(err.get("message", text[:500])), err.get("code")
    return text[:500], None
