"""Hang-up and transfer through a provider's REST API, against a local double of the provider's API
(a real aiohttp server on 127.0.0.1 that records what it got; never a real provider)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from media_stream_helpers import websockets_bridge

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.testing.phone import PhoneSimulator
from rtlayer.transports.media_stream import (
    CallControl,
    CallControlError,
    ExotelCallControl,
    PlivoCallControl,
    TelnyxCallControl,
    TwilioCallControl,
    VonageCallControl,
)


class ProviderApiDouble:
    """Records requests; answers like the provider (200, or the given error)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, dict[str, Any]]] = []
        self.fail_with: tuple[int, str] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = (
            dict(await request.post())
            if request.content_type.endswith("form-urlencoded")
            else await request.json()
            if request.can_read_body
            else {}
        )
        self.requests.append((request.method, request.path, request.headers.get("Authorization", ""), body))
        if self.fail_with is not None:
            status, text = self.fail_with
            return web.Response(status=status, text=text, content_type="application/json")
        return web.json_response({"ok": True})


@pytest.fixture
async def provider_api() -> AsyncIterator[tuple[str, ProviderApiDouble]]:
    double = ProviderApiDouble()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", double.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", double
    await runner.cleanup()


async def test_the_app_hangs_up_a_twilio_call_through_the_rest_api_and_the_stream_ends(
    server: RealtimeServer, provider_api: tuple[str, ProviderApiDouble]
) -> None:
    base, double = provider_api
    control = TwilioCallControl("AC123", "secret-token", base_url=base)
    async with websockets_bridge("twilio", server.ws_url, call_control=control) as app:
        async with PhoneSimulator("twilio", app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
            await app.transports[0].transfer("+15550009999")
            await app.transports[0].hangup()
            await phone.wait_closed(within=5)
    await control.aclose()
    call_sid = phone.call.call_id
    auth = "Basic " + base64.b64encode(b"AC123:secret-token").decode()
    assert double.requests == [
        ("POST", f"/2010-04-01/Accounts/AC123/Calls/{call_sid}.json", auth,
         {"Twiml": "<Response><Dial>+15550009999</Dial></Response>"}),
        ("POST", f"/2010-04-01/Accounts/AC123/Calls/{call_sid}.json", auth, {"Status": "completed"}),
    ]  # fmt: skip


async def test_telnyx_call_control_and_the_providers_refusal(
    server: RealtimeServer, provider_api: tuple[str, ProviderApiDouble]
) -> None:
    base, double = provider_api
    control = TelnyxCallControl("KEY-secret", base_url=base)
    async with websockets_bridge("telnyx", server.ws_url, call_control=control) as app:
        async with PhoneSimulator("telnyx", app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
            transport = app.transports[0]
            await transport.transfer("sip:desk@example.invalid")
            double.fail_with = (422, '{"errors": [{"detail": "Call has already ended"}]}')
            with pytest.raises(CallControlError, match="Call has already ended") as refused:
                await transport.hangup()
            assert refused.value.status == 422 and "KEY-secret" not in str(refused.value)
    await control.aclose()
    call_id = phone.call.call_id
    assert double.requests[0] == (
        "POST", f"/v2/calls/{call_id}/actions/transfer", "Bearer KEY-secret", {"to": "sip:desk@example.invalid"}
    )  # fmt: skip
    assert double.requests[1][1] == f"/v2/calls/{call_id}/actions/hangup"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def plivo(base: str) -> tuple[CallControl, str]:
    return PlivoCallControl("MA123", "plivo-token", base_url=base), "https://app.example.invalid/dial.xml"


def exotel(base: str) -> tuple[CallControl, str]:
    return ExotelCallControl("acme1", "exo-key", "exo-token", base_url=base), "+919876543210"


def vonage(base: str) -> tuple[CallControl, str]:
    return VonageCallControl(lambda: "jwt-1", base_url=base), "+447700900000"


def expected_requests(provider: str, call_id: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """What each provider's REST documentation specifies: transfer first, then hang-up."""
    if provider == "plivo":
        path, auth = f"/v1/Account/MA123/Call/{call_id}/", basic("MA123", "plivo-token")
        transfer: dict[str, Any] = {
            "legs": "aleg",
            "aleg_url": "https://app.example.invalid/dial.xml",
            "aleg_method": "POST",
        }
        return [("POST", path, auth, transfer), ("DELETE", path, auth, {})]
    if provider == "exotel":
        path, auth = f"/v2/accounts/acme1/legs/{call_id}/actions", basic("exo-key", "exo-token")
        exoml = '<?xml version="1.0" encoding="UTF-8"?><Flow><Dial>+919876543210</Dial></Flow>'
        return [("POST", path, auth, {"exoml": exoml}), ("POST", path + "/hangup", auth, {})]
    path, auth = f"/v1/calls/{call_id}", "Bearer jwt-1"
    ncco = [{"action": "connect", "endpoint": [{"type": "phone", "number": "447700900000"}]}]
    transfer = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
    return [("PUT", path, auth, transfer), ("PUT", path, auth, {"action": "hangup"})]


@pytest.mark.parametrize("make_control", [plivo, exotel, vonage], ids=lambda f: f.__name__)
async def test_transfer_and_hangup_send_the_request_each_providers_api_documents(
    server: RealtimeServer,
    provider_api: tuple[str, ProviderApiDouble],
    make_control: Callable[[str], tuple[CallControl, str]],
) -> None:
    base, double = provider_api
    provider = make_control.__name__
    control, target = make_control(base)
    async with websockets_bridge(provider, server.ws_url, call_control=control) as app:
        async with PhoneSimulator(provider, app.url) as phone:
            await phone.wait_for(lambda: app.transports and app.transports[0].status.value == "connected")
            await app.transports[0].transfer(target)
            await app.transports[0].hangup()
            await phone.wait_closed(within=5)
    assert phone.call.call_id
    assert double.requests == expected_requests(provider, phone.call.call_id)


async def test_a_vonage_refusal_carries_its_title_and_never_the_token(
    provider_api: tuple[str, ProviderApiDouble],
) -> None:
    from rtlayer.audio import PCM16_16K
    from rtlayer.transports.media_stream.events import CallStart, ProviderFormat

    base, double = provider_api
    double.fail_with = (
        404,
        '{"type": "https://developer.nexmo.com/api-errors#not-found", "title": "Not Found"}',
    )
    control = VonageCallControl("secret-jwt", base_url=base)
    call = CallStart("vonage", "aaaa-bbbb", None, None, None, {}, ProviderFormat(PCM16_16K), {})
    with pytest.raises(CallControlError, match="HTTP 404: Not Found") as refused:
        await control.hangup(call)
    assert refused.value.status == 404 and "secret-jwt" not in str(refused.value)
    await control.aclose()


async def test_an_unreachable_provider_api_is_a_connect_error() -> None:
    from rtlayer.audio import PCMU
    from rtlayer.exceptions import ConnectError
    from rtlayer.transports.media_stream.events import CallStart, ProviderFormat

    call = CallStart("twilio", "CA1", "MZ1", None, None, {}, ProviderFormat(PCMU), {})
    control = TwilioCallControl("AC1", "t", base_url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(ConnectError):
        await control.hangup(call)
    await control.aclose()
    await asyncio.sleep(0)
