"""Hang-up and transfer through a telephony provider's REST API: optional helpers behind ``CallControl``.

A media stream carries audio only; ending or moving the call is the provider's REST API. These helpers
implement ``CallControl`` (``hangup(call)``, ``transfer(call, target)``) for Twilio, Telnyx, Plivo, Exotel
and Vonage, each from the provider's REST documentation; ``target`` is what the provider transfers to (a number or
SIP URI for Twilio, Telnyx, Exotel and Vonage; for Plivo, whose transfer redirects the call, the URL of the
Plivo XML that dials onward);
``MediaStreamTransport(call_control=...)`` uses one for ``hangup()`` and ``transfer()``. ``base_url`` points
them elsewhere (tests use a local double: nothing here is ever run against a real provider by the tests).
Every request has a timeout; a refusal raises ``CallControlError`` with the provider's status and message;
credentials go in the ``Authorization`` header and never into a message or a log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import httpx

from ...exceptions import ConnectError, ConnectTimeout, LocalProtocolError, RtlayerError
from ...protocol import codec
from .events import CallStart

__all__ = [
    "CallControlError",
    "ExotelCallControl",
    "PlivoCallControl",
    "TelnyxCallControl",
    "TwilioCallControl",
    "VonageCallControl",
]


class CallControlError(RtlayerError):
    """The provider refused a call-control request; ``status`` and ``body`` keep what it said."""

    def __init__(self, message: str, *, status: int, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class _RestCallControl:
    def __init__(self, base_url: str, timeout: float, http_client: httpx.AsyncClient | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> None:
        url = self.base_url + path
        try:
            response = await self._http.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException:
            raise ConnectTimeout(f"no answer from {self.base_url} within {self.timeout} s") from None
        except httpx.HTTPError as exc:
            raise ConnectError(f"cannot reach {self.base_url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            body = response.text[:2000]
            raise CallControlError(
                f"{method} {path}: HTTP {response.status_code}: {_message(body)}",
                status=response.status_code,
                body=body,
            )


def _call_id(call: CallStart) -> str:
    if not call.call_id:
        raise LocalProtocolError(f"the {call.provider} start message had no call id")
    return quote(call.call_id, safe="")


class TwilioCallControl(_RestCallControl):
    """Twilio's Calls resource: ``Status=completed`` hangs up; ``Twiml=<Dial>`` transfers."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, timeout, http_client)
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._path = f"/2010-04-01/Accounts/{quote(account_sid, safe='')}/Calls/"

    async def hangup(self, call: CallStart) -> None:
        await self._request(
            "POST", f"{self._path}{_call_id(call)}.json", data={"Status": "completed"}, auth=self._auth
        )

    async def transfer(self, call: CallStart, target: str) -> None:
        twiml = f"<Response><Dial>{escape(target)}</Dial></Response>"
        await self._request(
            "POST", f"{self._path}{_call_id(call)}.json", data={"Twiml": twiml}, auth=self._auth
        )


class TelnyxCallControl(_RestCallControl):
    """Telnyx Call Control: ``actions/hangup`` and ``actions/transfer`` on the call's ``call_control_id``."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.telnyx.com",
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, timeout, http_client)
        self._headers = {"Authorization": f"Bearer {api_key}"}

    async def hangup(self, call: CallStart) -> None:
        await self._request(
            "POST", f"/v2/calls/{_call_id(call)}/actions/hangup", json={}, headers=self._headers
        )

    async def transfer(self, call: CallStart, target: str) -> None:
        await self._request(
            "POST", f"/v2/calls/{_call_id(call)}/actions/transfer", json={"to": target}, headers=self._headers
        )


class PlivoCallControl(_RestCallControl):
    """Plivo's Call resource: ``DELETE`` hangs up; ``POST`` with ``aleg_url`` transfers the caller's leg.

    Plivo transfers by fetching new Plivo XML for the leg, so ``target`` is that XML's URL (a ``<Dial>`` there).
    """

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        *,
        base_url: str = "https://api.plivo.com",
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, timeout, http_client)
        self._auth = httpx.BasicAuth(auth_id, auth_token)
        self._path = f"/v1/Account/{quote(auth_id, safe='')}/Call/"

    async def hangup(self, call: CallStart) -> None:
        await self._request("DELETE", f"{self._path}{_call_id(call)}/", auth=self._auth)

    async def transfer(self, call: CallStart, target: str) -> None:
        body = {"legs": "aleg", "aleg_url": target, "aleg_method": "POST"}
        await self._request("POST", f"{self._path}{_call_id(call)}/", json=body, auth=self._auth)


class ExotelCallControl(_RestCallControl):
    """Exotel's Legs API (the one its AgentStream media streams run on): ``actions/hangup`` ends the leg; an
    ExoML ``<Dial>`` action transfers it. The call id of the stream's ``start`` is the leg's sid."""

    def __init__(
        self,
        account_sid: str,
        api_key: str,
        api_token: str,
        *,
        base_url: str = "https://cpaas-api.exotel.com",
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, timeout, http_client)
        self._auth = httpx.BasicAuth(api_key, api_token)
        self._path = f"/v2/accounts/{quote(account_sid, safe='')}/legs/"

    async def hangup(self, call: CallStart) -> None:
        await self._request("POST", f"{self._path}{_call_id(call)}/actions/hangup", json={}, auth=self._auth)

    async def transfer(self, call: CallStart, target: str) -> None:
        exoml = f'<?xml version="1.0" encoding="UTF-8"?><Flow><Dial>{escape(target)}</Dial></Flow>'
        await self._request(
            "POST", f"{self._path}{_call_id(call)}/actions", json={"exoml": exoml}, auth=self._auth
        )


class VonageCallControl(_RestCallControl):
    """Vonage's Voice API: ``PUT /v1/calls/{uuid}`` with ``action: hangup`` or ``action: transfer`` to an NCCO
    that connects the caller to a number (``+`` dropped, as Vonage spells numbers) or a ``sip:`` URI.

    Vonage authenticates with a JWT signed by the application's private key; ``jwt`` is that token, or a
    function returning a fresh one per request (they expire). The call id is the ``uuid`` the app put in the
    stream's ``websocket:connected`` headers (Vonage's answer NCCO passes it).
    """

    def __init__(
        self,
        jwt: str | Callable[[], str],
        *,
        base_url: str = "https://api.nexmo.com",
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, timeout, http_client)
        self._jwt = jwt

    def _headers(self) -> dict[str, str]:
        token = self._jwt() if callable(self._jwt) else self._jwt
        return {"Authorization": f"Bearer {token}"}

    async def hangup(self, call: CallStart) -> None:
        await self._request(
            "PUT", f"/v1/calls/{_call_id(call)}", json={"action": "hangup"}, headers=self._headers()
        )

    async def transfer(self, call: CallStart, target: str) -> None:
        endpoint = (
            {"type": "sip", "uri": target}
            if target.startswith("sip:")
            else {"type": "phone", "number": target.lstrip("+")}
        )
        ncco = [{"action": "connect", "endpoint": [endpoint]}]
        body = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
        await self._request("PUT", f"/v1/calls/{_call_id(call)}", json=body, headers=self._headers())


def _message(body: str) -> str:
    """The provider's own message from a JSON error body (Twilio ``message``, Telnyx ``errors[0].detail``,
    Plivo ``error``, Vonage ``title``/``detail``)."""
    try:
        data = codec.loads(body)
    except ValueError:
        return body[:300] or "(empty body)"
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "title"):
            if isinstance(data.get(key), str):
                return str(data[key])
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("detail") or errors[0].get("title") or body[:300])
    return body[:300]
