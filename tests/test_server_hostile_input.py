"""Hostile input over real sockets: refused up front with a clear error, and nothing of it stays registered.

Deep-but-valid JSON (orjson parses ~1024 levels but serialises ~254), sizes at and past the limits, sideband
sockets with the wrong key, and pages of other origins. Each case checks what the client is told and that
no session, call or peer connection outlives the offending client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection
from helpers import eventually, open_peer_connections
from websockets.asyncio.client import ClientConnection

from rtlayer._ice import host_policy
from rtlayer.protocol import codec
from rtlayer.server import RealtimeServer, ServerLimits
from rtlayer.server.webrtc import front_of

pytestmark = pytest.mark.timeout(30)

AUTH = {"Authorization": "Bearer x"}
KEY = "sk-test-server-key"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def tool_with_parameters(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "name": "f", "parameters": parameters}


async def until(ws: ClientConnection, event_type: str, limit: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(limit):
        while True:
            event: dict[str, Any] = json.loads(await ws.recv())
            if event["type"] == event_type:
                return event


async def text_turn(ws: ClientConnection, text: str = "still here") -> None:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
    await ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
    done = await until(ws, "response.done")
    assert done["response"]["status"] == "completed"


async def offer_sdp() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("oai-events")
    with host_policy("loopback_only"):
        await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


@pytest.fixture
async def keyed_server() -> AsyncIterator[RealtimeServer]:
    async with RealtimeServer(api_key=KEY, allow_origins=["https://app.example"]) as server:
        yield server


# -- deep JSON -------------------------------------------------------------------------------------------


async def test_a_deep_session_update_is_an_error_naming_the_field_and_the_session_goes_on(server):
    async with websockets.connect(server.ws_url, additional_headers=AUTH) as ws:
        await until(ws, "session.created")
        deep = {"tools": [tool_with_parameters(nested(300))]}
        await ws.send(json.dumps({"type": "session.update", "event_id": "deep", "session": deep}))
        error = (await until(ws, "error"))["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_value"
        assert error["param"] == "session" and "nested deeper than 64 levels" in error["message"]
        # Just inside the bound: accepted, and session.updated carries it back.
        fits = {"tools": [tool_with_parameters(nested(codec.MAX_DEPTH - 6))]}
        await ws.send(json.dumps({"type": "session.update", "session": fits}))
        updated = await until(ws, "session.updated")
        assert updated["session"]["tools"][0]["name"] == "f"
        await text_turn(ws)


async def test_deep_values_anywhere_in_an_event_are_refused_before_the_session_acts(server):
    async with websockets.connect(server.ws_url, additional_headers=AUTH) as ws:
        await until(ws, "session.created")
        deep_response = {"type": "response.create", "response": {"metadata": nested(200)}}
        await ws.send(json.dumps(deep_response))
        error = (await until(ws, "error"))["error"]
        assert (error["code"], error["param"]) == ("invalid_value", "response")
        await text_turn(ws)
    await eventually(lambda: not server.state.runners)


async def test_a_frame_of_a_hundred_thousand_brackets_is_an_error_not_a_crash(server):
    """orjson 3.8 parses nesting without a limit and segfaults past ~50,000 levels: one 200 kB frame took
    the whole server down. Such a text goes to the stdlib parser, which stops it."""
    async with websockets.connect(server.ws_url, additional_headers=AUTH) as ws:
        await until(ws, "session.created")
        for frame in (
            "[" * 100_000 + "]" * 100_000,
            '{"type":"session.update","session":' + '{"a":' * 100_000,
        ):
            await ws.send(frame)
            error = (await until(ws, "error"))["error"]
            assert error["code"] in ("invalid_value", "invalid_json")
        await text_turn(ws)


async def test_a_deep_ephemeral_key_session_is_refused_when_minted(server):
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=5) as http:
        body = {"session": {"type": "realtime", "tracing": nested(300)}}
        response = await http.post("/v1/realtime/client_secrets", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_value" and error["param"] == "session"
        # A raw body deeper than the parser's own limit: the same clear refusal, never a 500.
        raw = '{"session":' + "[" * 5000 + "]" * 5000 + "}"
        response = await http.post("/v1/realtime/client_secrets", content=raw)
        assert response.status_code == 400


async def test_clients_that_vanish_mid_session_leave_no_session_behind():
    """Under ``max_sessions=3``, ten clients that open a session and drop their connection (no close
    frame) each free their session: an eleventh client still gets one."""
    async with RealtimeServer(limits=ServerLimits(max_sessions=3)) as server:
        for _ in range(10):
            ws = await websockets.connect(server.ws_url, additional_headers=AUTH)
            await until(ws, "session.created")
            ws.transport.abort()
            await eventually(lambda: not server.state.runners, within=5)
        async with websockets.connect(server.ws_url, additional_headers=AUTH) as ws:
            await until(ws, "session.created")
            await text_turn(ws)


async def test_a_deep_webrtc_session_part_is_a_400_and_leaves_no_call_session_or_peer(server):
    files = {
        "sdp": (None, await offer_sdp(), "application/sdp"),
        "session": (None, json.dumps({"type": "realtime", "tracing": nested(300)}), "application/json"),
    }
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as http:
        for _ in range(3):
            response = await http.post("/v1/realtime/calls", files=files)
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["code"] == "invalid_value" and error["param"] == "session"
    front = front_of(server.state)
    assert front is not None
    assert not server.state.calls and not server.state.runners and not front.peers and not front.calls
    assert not open_peer_connections()


# -- sizes -----------------------------------------------------------------------------------------------


async def test_a_message_of_exactly_the_limit_is_accepted_one_byte_more_closes_with_1009():
    limit = 64 * 1024
    async with RealtimeServer(limits=ServerLimits(max_message_bytes=limit)) as server:

        def item_of_size(size: int) -> str:
            frame = {"type": "conversation.item.create", "item": {"type": "message", "role": "user"}}
            frame["item"]["content"] = [{"type": "input_text", "text": ""}]
            text = json.dumps(frame, separators=(",", ":"))
            frame["item"]["content"][0]["text"] = "x" * (size - len(text))
            out = json.dumps(frame, separators=(",", ":"))
            assert len(out.encode()) == size
            return out

        async with websockets.connect(server.ws_url, additional_headers=AUTH) as ws:
            await until(ws, "session.created")
            await ws.send(item_of_size(limit))
            added = await until(ws, "conversation.item.added")
            assert len(added["item"]["content"][0]["text"]) > limit - 200
            await ws.send(item_of_size(limit + 1))
            with pytest.raises(websockets.ConnectionClosed):
                await until(ws, "never")
            assert ws.close_code == 1009


async def test_a_20_mb_offer_is_a_413_not_a_500(server):
    body = b"v=0\r\n" + b"a=x\r\n" * (20 * 1024 * 1024 // 5)
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as http:
        response = await http.post(
            "/v1/realtime/calls", headers={"Content-Type": "application/sdp"}, content=body
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: cut off while reading
            for _ in range(20):
                yield b"a" * (1024 * 1024)

        response = await http.post(
            "/v1/realtime/calls", headers={"Content-Type": "application/sdp"}, content=chunked()
        )
        assert response.status_code == 413
    assert not server.state.calls and not server.state.runners


async def test_an_item_larger_than_the_conversation_bound_is_refused_older_items_are_dropped_and_counted():
    limits = ServerLimits(max_conversation_bytes=200_000)
    async with RealtimeServer(limits=limits) as server:
        async with websockets.connect(server.ws_url, additional_headers=AUTH, max_size=None) as ws:
            await until(ws, "session.created")
            runner = next(iter(server.state.runners.values()))

            def item(text: str) -> str:
                content = [{"type": "input_text", "text": text}]
                return json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {"type": "message", "role": "user", "content": content},
                    }
                )

            await ws.send(item("x" * 300_000))
            error = (await until(ws, "error"))["error"]
            assert (error["code"], error["param"]) == ("invalid_value", "item")
            for _ in range(10):
                await ws.send(item("y" * 50_000))
                await until(ws, "conversation.item.done")
            stats = runner.stats()
            assert stats.conversation_bytes <= 200_000
            assert stats.items_dropped == 7 and stats.item_bytes_dropped > 7 * 50_000
            await text_turn(ws)


# -- sideband sockets ------------------------------------------------------------------------------------


async def _post_call(server: RealtimeServer, key: str) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.post(
            "/v1/realtime/calls",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"},
            content=await offer_sdp(),
        )
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


async def _mint(server: RealtimeServer) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        response = await http.post(
            "/v1/realtime/client_secrets", headers={"Authorization": f"Bearer {KEY}"}, json={}
        )
    value: str = response.json()["value"]
    return value


async def test_every_sideband_socket_on_a_call_is_greeted_with_session_created(keyed_server):
    call_id = await _post_call(keyed_server, KEY)
    url = keyed_server.ws_url + f"?call_id={call_id}"
    session_ids = set()
    for _ in range(3):
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
            session_ids.add((await until(ws, "session.created", 3))["session"]["id"])
    assert len(session_ids) == 1
    await keyed_server.state.calls.get(call_id).hangup()


async def test_a_sideband_socket_needs_the_server_key_or_the_ephemeral_key_that_opened_the_call(keyed_server):
    opener = await _mint(keyed_server)
    call_id = await _post_call(keyed_server, opener)
    other = await _mint(keyed_server)
    url = keyed_server.ws_url + f"?call_id={call_id}"
    for key, status in ((other, 403), ("", 401), ("sk-wrong", 401)):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, additional_headers=headers)
        assert refused.value.response.status_code == status
    # An ek_ key for some other call cannot even learn whether a call exists.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            keyed_server.ws_url + "?call_id=rtc_nope", additional_headers={"Authorization": f"Bearer {other}"}
        )
    assert refused.value.response.status_code == 403
    for key in (opener, KEY):
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            await until(ws, "session.created", 3)
            await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "from the app"}}))
            assert (await until(ws, "session.updated"))["session"]["instructions"] == "from the app"
    await keyed_server.state.calls.get(call_id).hangup()


# -- origins ---------------------------------------------------------------------------------------------


async def test_pages_of_other_origins_are_refused_before_anything_happens(server):
    """No key configured: without the check, any page open on the machine could use the server."""
    evil = {"Origin": "http://evil.example"}
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        call_id = await _post_call(server, "x")
        hangup = await http.post(
            f"/v1/realtime/calls/{call_id}/hangup",
            headers={**evil, "Content-Type": "text/plain"},
            content=b"",
        )
        assert hangup.status_code == 403 and hangup.json()["error"]["code"] == "origin_not_allowed"
        assert call_id in server.state.calls  # the call is untouched
        preflight = await http.options(
            "/v1/realtime/client_secrets",
            headers={
                **evil,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
        rebinding = {"Origin": f"http://evil.example:{server.port}", "Host": f"evil.example:{server.port}"}
        assert (await http.get("/healthz", headers=rebinding)).status_code == 403
        # Its own page, any loopback name of it, and clients that are no browser (no Origin) are fine.
        for origin in (server.url, f"http://localhost:{server.port}", f"http://[::1]:{server.port}"):
            response = await http.get("/healthz", headers={"Origin": origin})
            assert response.status_code == 200 and response.headers["access-control-allow-origin"] == origin
        assert (await http.get("/healthz")).status_code == 200
        await server.state.calls.get(call_id).hangup()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            server.ws_url,
            origin="http://evil.example",
            subprotocols=["realtime", "openai-insecure-api-key.x"],
        )
    assert refused.value.response.status_code == 403
    assert not server.state.runners and server.state.counters.origins_refused == 4


async def test_listed_origins_get_deliberate_cors_answers(keyed_server):
    page = {"Origin": "https://app.example"}
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=5) as http:
        preflight = await http.options(
            "/v1/realtime/calls",
            headers={
                **page,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert preflight.headers["vary"] == "Origin"
        minted = await http.post(
            "/v1/realtime/client_secrets", headers={**page, "Authorization": f"Bearer {KEY}"}, json={}
        )
        assert (
            minted.status_code == 200
            and minted.headers["access-control-allow-origin"] == "https://app.example"
        )
        refused = await http.post("/v1/realtime/client_secrets", headers=page, json={})
        assert refused.status_code == 401  # the origin is allowed; the key is still required
    async with websockets.connect(
        keyed_server.ws_url,
        origin="https://app.example",
        subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"],
    ) as ws:
        await until(ws, "session.created")


def test_the_config_check_bounds_depth_for_configs_built_in_code_too():
    """A config that never went through the codec (an in-process ``config=``, a SIP accept body) is
    checked by ``merge_session`` itself, naming the field."""
    from rtlayer.exceptions import RequestRefused
    from rtlayer.protocol.session_config import default_session, merge_session

    with pytest.raises(RequestRefused) as refused:
        merge_session(default_session(), {"tracing": nested(100)})
    assert refused.value.param == "session.tracing" and refused.value.code == "invalid_value"
    with pytest.raises(RequestRefused):
        merge_session(default_session(), {"tracing": nested(5000)})  # past Python's recursion limit too


async def test_every_control_socket_on_a_sip_call_gets_session_created_the_first_one_its_backlog():
    """A SIP call keeps what its session said before anyone attached and replays it to the first control
    socket (``session.created`` first); every later one is greeted with the session as it is now."""
    from sip_helpers import answered_call, free_udp_port, sip_rig

    async with sip_rig() as (server, app):
        caller, call_id, _rtp = await answered_call(server, app, free_udp_port())
        try:
            url = server.ws_url + f"?call_id={call_id}"
            for n in range(3):
                async with websockets.connect(url, additional_headers=AUTH) as ws:
                    created = await until(ws, "session.created", 3)
                    assert created["session"]["id"].startswith("sess_"), n
        finally:
            caller.close()


async def test_a_deep_calls_api_accept_is_a_400_and_the_call_can_still_be_accepted():
    from sip_helpers import Caller, free_udp_port, sip_rig

    async with sip_rig() as (server, app):
        caller = Caller(server.sip.port)
        await caller.start()
        try:
            caller.invite(free_udp_port())
            call = await app.next_call()
            async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as http:
                accept = f"/v1/realtime/calls/{call.call_id}/accept"
                deep = await http.post(accept, json={"type": "realtime", "tracing": nested(300)})
                assert deep.status_code == 400
                assert (deep.json()["error"]["code"], deep.json()["error"]["param"]) == (
                    "invalid_value",
                    "tracing",
                )
                assert not server.state.runners
                fine = await http.post(accept, json={"type": "realtime", "instructions": "ok"})
                assert fine.status_code == 200
            await caller.expect(200)
        finally:
            caller.close()


async def test_responses_in_progress_are_bounded_per_session():
    from rtlayer.server.core.session import MAX_RESPONSES_IN_PROGRESS

    async with RealtimeServer(audio_pacing=1.0) as server:  # answers take real time: they pile up
        async with websockets.connect(server.ws_url, additional_headers=AUTH, max_size=None) as ws:
            await until(ws, "session.created")
            for n in range(MAX_RESPONSES_IN_PROGRESS + 1):
                create = {
                    "type": "response.create",
                    "event_id": f"r{n}",
                    "response": {"conversation": "none"},
                }
                await ws.send(json.dumps(create))
            error = (await until(ws, "error"))["error"]
            assert (error["code"], error["event_id"]) == (
                "too_many_active_responses",
                f"r{MAX_RESPONSES_IN_PROGRESS}",
            )


async def test_a_data_channel_too_far_behind_hangs_the_call_up_and_leaves_nothing_registered():
    """A WebRTC caller's events pile up in the data channel past ``max_queued_bytes``: the call is hung up,
    the cut-off counted in the session's stats, and no call, session or peer connection stays."""
    from rtlayer.transports.webrtc import WebRTCTransport

    async with RealtimeServer(limits=ServerLimits(max_queued_bytes=20_000)) as server:
        transport = WebRTCTransport()
        await transport.connect(url=server.url)
        call = front_of(server.state).calls[transport.call_id]
        runner = call.runner
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "word " * 20_000}],
        }
        transport.send_event({"type": "conversation.item.create", "item": item})
        transport.send_event({"type": "response.create", "response": {"output_modalities": ["text"]}})
        await eventually(lambda: not server.state.calls, within=10)
        stats = runner.stats()
        assert stats.readers_cut_off == 1 and stats.events_dropped >= 1
        await eventually(lambda: not server.state.runners and not front_of(server.state).peers)
        await transport.close()
    assert not open_peer_connections()


async def test_the_input_audio_buffer_is_bounded_in_bytes_and_what_it_drops_is_counted():
    import base64

    limits = ServerLimits(max_input_buffer_bytes=96_000)  # 2 s of PCM16 24 kHz
    async with RealtimeServer(limits=limits) as server:
        async with websockets.connect(server.ws_url, additional_headers=AUTH) as ws:
            await until(ws, "session.created")
            runner = next(iter(server.state.runners.values()))
            await ws.send(
                json.dumps(
                    {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}
                )
            )
            await until(ws, "session.updated")
            second = base64.b64encode(b"\x10\x00" * 24_000).decode()
            for _ in range(5):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": second}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            committed = await until(ws, "input_audio_buffer.committed")
            await eventually(lambda: runner.stats().input_bytes_dropped == 3 * 48_000)
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": committed["item_id"]}))
            retrieved = await until(ws, "conversation.item.retrieved")
            assert len(base64.b64decode(retrieved["item"]["content"][0]["audio"])) == 96_000


def test_the_origin_policy_on_loopback_and_off_it():
    from rtlayer.server.origins import OriginPolicy, normalize_origin

    assert normalize_origin("HTTPS://App.Example:443") == "https://app.example"
    assert normalize_origin("http://[::1]:8765") == "http://[::1]:8765"
    loopback = OriginPolicy(["https://app.example"])
    loopback.set_base_url("http://127.0.0.1:8765")
    assert (
        loopback.allows(None)
        and loopback.allows("http://localhost:8765")
        and loopback.allows("https://app.example")
    )
    # DNS rebinding: the Host header says evil.example too, and it is still not the server's own page.
    assert not loopback.allows("http://evil.example:8765", "evil.example:8765")
    assert not loopback.allows("null") and not loopback.allows("not an origin")
    public = OriginPolicy(loopback=False)
    public.set_base_url("http://0.0.0.0:8765")  # bound to every address: its names are not known in advance
    assert public.allows("http://voice.example:8765", "voice.example:8765")
    assert not public.allows("http://evil.example:8765", "voice.example:8765")
    assert OriginPolicy(["*"]).allows("http://anything.example")
