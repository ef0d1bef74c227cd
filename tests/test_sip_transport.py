"""The app's side of SIP: ``build_initial_config`` (formats dropped), ``SIPTransport``'s refusals, ``CallsClient`` errors
and timeouts, and the webhook receiver's answers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from sip_helpers import SECRET

from rtlayer.exceptions import ConnectError, ConnectTimeout, LocalProtocolError, UnsupportedOperation
from rtlayer.protocol.webhooks import webhook_headers
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.transports.calls import CallsAPIError, CallsClient
from rtlayer.transports.sip import SIPTransport, build_initial_config
from rtlayer.transports.sip_webhooks import IncomingCall, add_webhook_route, parse_incoming_call

pytestmark = pytest.mark.timeout(20)


def test_build_initial_config_shape() -> None:
    config = build_initial_config(
        model="gpt-realtime",
        instructions="Answer the phone.",
        voice="marin",
        turn_detection={"type": "server_vad", "silence_duration_ms": 400},
        config={"output_modalities": ["audio"]},
    )
    assert config == {
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "Answer the phone.",
        "output_modalities": ["audio"],
        "audio": {
            "output": {"voice": "marin"},
            "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 400}},
        },
    }
    assert build_initial_config() == {"type": "realtime"}


@pytest.mark.parametrize(
    ("config", "dropped"),
    [
        (
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "noise_reduction": None}}},
            "audio.input.format=audio/pcm",
        ),
        (
            {"audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "ash"}}},
            "audio.output.format=audio/pcmu",
        ),
        ({"input_audio_format": "pcm16"}, "audio.input.format=pcm16"),  # the legacy flat name is caught too
    ],
)
def test_formats_are_dropped_with_one_warning(
    config: dict[str, object], dropped: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rtlayer.transports.sip")
    built = build_initial_config(config=config, instructions="Hi")
    assert "format" not in json.dumps(built)
    assert built["instructions"] == "Hi"
    assert [r.getMessage() for r in caplog.records] == [
        f"build_initial_config: dropping {dropped}: a SIP call's audio is the caller's codec, negotiated over SIP"
    ]


async def test_sdk_payload_for_an_agent_is_a_valid_accept_body(caplog: pytest.LogCaptureFixture) -> None:
    """The Agents SDK's own payload (a pydantic model with ``audio/pcm`` formats) and rtlayer's
    agent-aware builder give the same body, formats dropped, the agent's instructions and tools kept."""
    from agents import function_tool
    from agents.realtime import RealtimeAgent
    from agents.realtime.openai_realtime import OpenAIRealtimeSIPModel

    from rtlayer.integrations.openai_agents import build_initial_config as from_agent

    @function_tool
    def lookup_order(order_id: str) -> str:
        """Look an order up."""
        return f"order {order_id} shipped"

    billing: RealtimeAgent[None] = RealtimeAgent(name="billing", instructions="You do billing.")
    agent: RealtimeAgent[None] = RealtimeAgent(
        name="triage", instructions="You triage.", tools=[lookup_order], handoffs=[billing]
    )
    caplog.set_level(logging.WARNING, logger="rtlayer.transports.sip")
    payload = await OpenAIRealtimeSIPModel.build_initial_session_payload(agent)
    assert payload.audio is not None and payload.audio.input is not None and payload.audio.input.format
    body = build_initial_config(config=payload)
    assert body == await from_agent(agent)
    assert body["instructions"] == "You triage."
    assert sorted(t["name"] for t in body["tools"]) == ["lookup_order", "transfer_to_billing"]
    assert "format" not in json.dumps(body)
    assert len(caplog.records) == 2  # one warning for each build, naming both formats
    assert "audio.input.format=audio/pcm, audio.output.format=audio/pcm" in caplog.records[0].getMessage()
    async with RealtimeServer(sip_port=0) as server:
        # the body is one the server validates (a missing call is the only complaint)
        async with CallsClient(base_url=server.url + "/v1", api_key="k") as calls:
            with pytest.raises(CallsAPIError, match="not found"):
                await calls.accept("rtc_nope", payload)


async def test_sip_transport_refusals() -> None:
    transport = SIPTransport()
    with pytest.raises(LocalProtocolError, match="call_id"):
        await transport.connect(url="ws://127.0.0.1:9/v1/realtime", api_key="x")
    with pytest.raises(UnsupportedOperation, match="RTP"):
        await transport.send_audio(b"\x00\x00")
    await transport.close()


async def test_calls_client_errors_carry_the_servers_message() -> None:
    async with RealtimeServer(sip_port=0) as server:
        async with CallsClient(base_url=server.url + "/v1", api_key="k") as calls:
            for action in (
                calls.hangup("rtc_nope"),
                calls.reject("rtc_nope"),
                calls.refer("rtc_nope", "tel:1"),
            ):
                with pytest.raises(CallsAPIError, match="Call 'rtc_nope' not found") as info:
                    await action
                assert info.value.status == 404 and info.value.code == "call_not_found"
            with pytest.raises(ValueError, match="call_id"):
                await calls.accept("", {})


async def test_calls_client_with_a_wrong_key_is_refused_before_anything_else() -> None:
    async with RealtimeServer(sip_port=0, api_key="sk-right") as server:
        async with CallsClient(base_url=server.url + "/v1", api_key="sk-wrong") as calls:
            for action in (
                calls.accept("rtc_nope", {}),
                calls.reject("rtc_nope"),
                calls.refer("rtc_nope", "tel:1"),
            ):
                with pytest.raises(CallsAPIError, match="Incorrect API key") as info:
                    await action
                assert info.value.status == 401 and "sk-wrong" not in str(info.value)
        async with CallsClient(base_url=server.url + "/v1", api_key="sk-right") as calls:
            with pytest.raises(CallsAPIError, match="not found"):
                await calls.reject("rtc_nope")


async def test_calls_client_timeout_and_refused() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # read the request and never answer
        await asyncio.sleep(5)
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with CallsClient(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", timeout=0.3) as calls:
        with pytest.raises(ConnectTimeout, match=r"no answer within 0\.3 s"):
            await calls.hangup("rtc_1")
    listener.close()
    await listener.wait_closed()
    async with CallsClient(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", timeout=1) as calls:
        with pytest.raises(ConnectError):
            await calls.hangup("rtc_1")


def _delivery(event_type: str = "realtime.call.incoming") -> tuple[str, dict[str, str]]:
    body = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": event_type,
            "created_at": int(time.time()),
            "data": {
                "call_id": "rtc_abc",
                "sip_headers": [{"name": "From", "value": "<sip:+1555@127.0.0.1>"}],
            },
        }
    )
    return body, webhook_headers("wh_1", body, SECRET)


def test_parse_incoming_call() -> None:
    body, headers = _delivery()
    call = parse_incoming_call(body, headers, SECRET)
    assert call is not None and call.call_id == "rtc_abc"
    assert call.header("from") == "<sip:+1555@127.0.0.1>" and call.header("To") is None
    assert parse_incoming_call(*_delivery("batch.completed"), SECRET) is None


@pytest.mark.parametrize(
    "body",
    [
        '{"type": "realtime.call.incoming", "data": {"call_id": "rtc_1"}, "created_at": [1]}',
        '{"type": "realtime.call.incoming", "data": {"call_id": "rtc_1"}, "created_at": "soon"}',
        '{"type": "realtime.call.incoming", "data": {"call_id": "rtc_1"}, "created_at": 1e400}',
        '{"type": "realtime.call.incoming", "data": {"call_id": "rtc_1"}, "x": '
        + "[" * 5000
        + "]" * 5000
        + "}",
    ],
    ids=["list", "text", "overflow", "deep"],
)
def test_a_signed_but_malformed_delivery_is_a_value_error(body: str) -> None:
    """Only the documented errors, whatever the signed body holds (a RecursionError, TypeError or
    OverflowError escaped before)."""
    with pytest.raises(ValueError):
        parse_incoming_call(body, webhook_headers("wh_1", body, SECRET), SECRET)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[IncomingCall]]]:
    got: list[IncomingCall] = []
    app = web.Application()
    add_webhook_route(app, "/hook", secret=SECRET, on_call=got.append)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", got
    await runner.cleanup()


async def test_receiver_answers(
    receiver: tuple[str, list[IncomingCall]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rtlayer.transports.sip")
    url, got = receiver
    async with httpx.AsyncClient(timeout=5) as http:
        body, headers = _delivery()
        assert (await http.post(url, content=body, headers=headers)).status_code == 200
        tampered = body.replace("rtc_abc", "rtc_evil")
        bad = await http.post(url, content=tampered, headers=headers)
        assert bad.status_code == 401 and "signature" in bad.json()["error"]["message"]
        junk_headers = webhook_headers("wh_2", "not json", SECRET)
        assert (await http.post(url, content="not json", headers=junk_headers)).status_code == 400
        other, other_headers = _delivery("batch.completed")
        assert (await http.post(url, content=other, headers=other_headers)).status_code == 200
    await asyncio.sleep(0.05)  # on_call runs as a task after the 200
    assert [c.call_id for c in got] == ["rtc_abc"]
    # the refusals are logged for the app's operator, without the secret
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused a webhook")]
    assert len(refusals) == 2 and "signature" in refusals[0], refusals
    assert all(SECRET not in m and SECRET.removeprefix("whsec_") not in m for m in refusals)
