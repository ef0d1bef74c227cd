"""The embedded server's HTTP side: keys, ephemeral keys, errors as JSON, health, binding rules."""

from __future__ import annotations

import time

import httpx
import pytest
import websockets

from rtlayer.server import RealtimeServer, ServerState

pytestmark = pytest.mark.timeout(30)


async def test_health_endpoint_counts_sessions(server: RealtimeServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        before = (await http.get("/healthz")).json()
        async with websockets.connect(
            server.ws_url + "?model=gpt-realtime", additional_headers={"Authorization": "Bearer x"}
        ) as ws:
            await ws.recv()  # session.created
            during = (await http.get("/healthz")).json()
    assert before["status"] == "ok" and before["sessions"] == 0
    assert during["sessions"] == 1 and during["connections"] == 1


async def test_wrong_key_is_a_401_with_the_service_json_error() -> None:
    async with RealtimeServer(api_key="sk-right") as server, httpx.AsyncClient(base_url=server.url) as http:
        wrong = await http.post(
            "/v1/realtime/client_secrets", json={}, headers={"Authorization": "Bearer sk-wrong"}
        )
        missing = await http.post("/v1/realtime/client_secrets", json={})
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(server.ws_url, additional_headers={"Authorization": "Bearer sk-wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert wrong.json()["error"]["type"] == "invalid_request_error"
    assert "sk-wrong" not in wrong.text  # a key is never echoed back
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert refused.value.response.status_code == 401
    assert b"invalid_api_key" in refused.value.response.body


async def test_ephemeral_key_opens_a_session_with_its_config_and_expires() -> None:
    async with RealtimeServer(api_key="sk-right") as server, httpx.AsyncClient(base_url=server.url) as http:
        minted = await http.post(
            "/v1/realtime/client_secrets",
            headers={"Authorization": "Bearer sk-right"},
            json={
                "expires_after": {"anchor": "created_at", "seconds": 60},
                "session": {"type": "realtime", "instructions": "Speak like a pirate."},
            },
        )
        assert minted.status_code == 200, minted.text
        secret = minted.json()
        assert secret["value"].startswith("ek_")
        assert abs(secret["expires_at"] - (time.time() + 60)) < 5
        assert secret["session"]["instructions"] == "Speak like a pirate."
        assert secret["session"]["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}

        # A browser's way in: the key as a subprotocol; the server must answer "realtime".
        async with websockets.connect(
            server.ws_url + "?model=gpt-realtime",
            subprotocols=["realtime", f"openai-insecure-api-key.{secret['value']}"],  # type: ignore[list-item]
        ) as ws:
            assert ws.subprotocol == "realtime"
            created = __import__("json").loads(await ws.recv())
        assert created["type"] == "session.created"
        assert created["session"]["instructions"] == "Speak like a pirate."

        # The ephemeral key cannot mint keys itself, and it stops working once expired.
        nested = await http.post(
            "/v1/realtime/client_secrets", json={}, headers={"Authorization": f"Bearer {secret['value']}"}
        )
        assert nested.status_code == 401
        assert server.state.check_key(secret["value"], now=time.time())
        assert not server.state.check_key(secret["value"], now=time.time() + 61)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"expires_after": {"anchor": "created_at", "seconds": 5}}, "expires_after.seconds"),
        ({"expires_after": {"anchor": "created_at", "seconds": 7201}}, "expires_after.seconds"),
        ({"expires_after": {"anchor": "last_used", "seconds": 60}}, "expires_after.anchor"),
        ({"session": {"type": "realtime", "output_modalities": ["video"]}}, "session.output_modalities"),
    ],
)
async def test_client_secret_request_with_a_bad_value_names_the_field(
    server: RealtimeServer, body: dict[str, object], param: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post(
            "/v1/realtime/client_secrets", json=body, headers={"Authorization": "Bearer x"}
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


async def test_unknown_paths_and_calls_answer_json_errors(server: RealtimeServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": "Bearer x"}) as http:
        nowhere = await http.get("/v1/nowhere")
        hangup = await http.post("/v1/realtime/calls/rtc_unknown/hangup")
        with pytest.raises(websockets.InvalidStatus) as attach:
            await websockets.connect(
                server.ws_url + "?call_id=rtc_unknown", additional_headers={"Authorization": "Bearer x"}
            )
    assert nowhere.status_code == 404 and "error" in nowhere.json()
    assert hangup.status_code == 404 and hangup.json()["error"]["param"] == "call_id"
    assert attach.value.response.status_code == 404


async def test_openai_beta_header_is_accepted_and_ignored(server: RealtimeServer) -> None:
    async with websockets.connect(
        server.ws_url + "?model=gpt-realtime",
        additional_headers={"Authorization": "Bearer x", "OpenAI-Beta": "realtime=v1"},
    ) as ws:
        assert __import__("json").loads(await ws.recv())["type"] == "session.created"


async def test_it_binds_loopback_by_default() -> None:
    from rtlayer.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    async with RealtimeServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert [address[0] for address in server.addresses] == ["127.0.0.1"]
    assert server.addresses == []


def test_binding_off_loopback_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="without an API key"):
        RealtimeServer(host="0.0.0.0")
    with pytest.raises(ValueError, match="without an API key"):
        ServerState(host="192.0.2.1")
    for public in ("::", "example.com", "10.0.0.1"):
        with pytest.raises(ValueError, match="without an API key"):
            RealtimeServer(host=public)
    with pytest.raises(ValueError, match="empty"):  # an empty key is no key
        RealtimeServer(host="0.0.0.0", api_key="")
    # With a key it is allowed (nothing is bound until start()).
    assert RealtimeServer(host="0.0.0.0", api_key="sk-real").state.requires_key


async def test_ipv6_loopback_url_is_bracketed() -> None:
    async with RealtimeServer(host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        async with httpx.AsyncClient() as http:
            assert (await http.get(server.url + "/healthz")).json()["status"] == "ok"
