"""Phone calls from sipp (a real SIP peer) into the embedded server, controlled by an app.

The app is what a Realtime service customer runs: it receives the signed ``realtime.call.incoming``
webhook, accepts or rejects with ``CallsClient``, and attaches ``SIPTransport`` to the call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import websockets
from sip_helpers import SIPP, Phone, PhoneApp, link_pcaps, open_phone, run_sipp, until

import rtlayer_native
from rtlayer.exceptions import UnsupportedOperation
from rtlayer.transports.calls import CallsAPIError
from rtlayer.transports.sip import SIPTransport, build_initial_config
from rtlayer.transports.webrtc import WebRTCTransport

pytestmark = pytest.mark.timeout(60)

# A missing peer is a failure, not a skip: scripts/install-test-deps installs Debian's sip-tester.
assert SIPP is not None, "sipp is missing: run scripts/install-test-deps (Debian package sip-tester)"


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    async with open_phone(tmp_path) as opened:
        yield opened


async def test_pcmu_call_accept_converse_app_hangs_up(phone: Phone) -> None:
    sipp, call = await phone.ring("uac_pcmu_app_hangup")
    assert call.call_id.startswith("rtc_")
    assert "sipp" in (call.header("From") or "")

    # the delivery verifies with the official client too
    body, headers = phone.app.deliveries[0]
    event = openai.OpenAI(api_key="x", webhook_secret=phone.app.secret).webhooks.unwrap(body, headers)
    assert event.type == "realtime.call.incoming" and event.data.call_id == call.call_id

    client = phone.app.client
    assert client is not None
    await client.accept(call.call_id, build_initial_config(instructions="Answer the phone."))
    transport = SIPTransport()
    events: list[dict[str, Any]] = []
    transport.on("*", events.append)
    await transport.connect(url=phone.server.ws_url, api_key="test-key", call_id=call.call_id)
    with pytest.raises(UnsupportedOperation, match="RTP"):
        await transport.send_audio(b"\x00\x00")
    # what the session said before the socket attached is replayed to it, in order
    await until(lambda: bool(events), 5, "the first event")
    assert events[0]["type"] == "session.created"
    assert events[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    # a second control socket learns the session too (the backlog went to the first one)
    async with websockets.connect(
        f"{phone.server.ws_url}?call_id={call.call_id}", additional_headers={"Authorization": "Bearer k"}
    ) as second:
        greeting = json.loads(await asyncio.wait_for(second.recv(), 5))
    assert greeting["type"] == "session.created"
    assert greeting["session"]["id"] == events[0]["session"]["id"]

    def seen(kind: str) -> bool:
        return any(e.get("type") == kind for e in events)

    await until(lambda: seen("input_audio_buffer.speech_started"), 10, "speech_started")
    await until(lambda: seen("response.output_audio_transcript.done"), 15, "the response's transcript")
    await until(lambda: seen("response.done"), 15, "response.done")
    # the answer's audio went out as RTP to the port the caller's SDP named
    await until(lambda: len(phone.sink.packets) >= 100, 10, "100 RTP packets of the answer")
    types = {p[1] for p in phone.sink.packets}
    assert types == {0}
    assert all(len(p[5]) == 160 for p in phone.sink.packets)
    seqs = [p[2] for p in phone.sink.packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert phone.sink.packets[0][4]  # marker on the first packet of the talk spurt
    level = rtlayer_native.rms_dbfs(rtlayer_native.ulaw_decode(phone.sink.payload()))
    assert level > -40.0, level
    transcript = next(e for e in events if e.get("type") == "response.output_audio_transcript.done")
    assert transcript["transcript"]

    await client.hangup(call.call_id)
    code, log = await sipp.wait()
    assert code == 0, log
    # the call's end closes its control socket
    await until(lambda: phone.server.state.connections == 0, 5, "the server to close the control socket")
    await until(lambda: transport.status.value == "disconnected", 5, "the transport to see the close")
    assert call.call_id not in phone.server.state.calls
    await transport.close()


async def _connect(phone: Phone, call_id: str) -> tuple[SIPTransport, list[dict[str, Any]]]:
    transport = SIPTransport()
    events: list[dict[str, Any]] = []
    transport.on("*", events.append)
    await transport.connect(url=phone.server.ws_url, api_key="test-key", call_id=call_id)
    return transport, events


@pytest.mark.skipif(os.geteuid() != 0, reason="sipp's play_pcap_audio needs root (raw socket)")
async def test_pcma_30ms_dtmf_and_the_caller_hangs_up(phone: Phone) -> None:
    sent_packets = link_pcaps(phone.workdir)
    sipp, call = await phone.ring("uac_pcma_dtmf_caller_bye")
    # accepted with the official client this time; no turn detection, so the app leads
    oai = openai.AsyncOpenAI(api_key="test-key", base_url=phone.server.url + "/v1", max_retries=0)
    await oai.realtime.calls.accept(
        call.call_id,
        type="realtime",
        instructions="Greet the caller.",
        audio={"input": {"turn_detection": None}},
    )
    transport, events = await _connect(phone, call.call_id)
    transport.send_event({"type": "response.create"})

    def digits() -> list[str]:
        return [e["event"] for e in events if e.get("type") == "input_audio_buffer.dtmf_event_received"]

    await until(lambda: digits() == ["1", "5"], 10, "DTMF 1 then 5")
    code, log = await sipp.wait()
    assert code == 0, log  # sipp sent BYE and got its 200
    await until(lambda: phone.server.state.connections == 0, 5, "the control socket to close")
    await until(lambda: transport.status.value == "disconnected", 5, "the transport to see the close")
    assert call.call_id not in phone.server.state.calls

    front = phone.server.sip
    stats = front.rtp_stats()
    # the pcap's audio arrived (a packet or two may be cut by the caller's BYE)
    assert sent_packets - 3 <= stats["rtp_received"] <= sent_packets, stats
    assert stats["rtp_invalid"] == 0 and stats["rtp_duplicates"] == 0
    # our answer went out as PCMA in 30 ms packets, 240 samples apart
    packets = phone.sink.packets
    assert len(packets) >= 20
    assert {p[1] for p in packets} == {8} and {len(p[5]) for p in packets} == {240}
    steps = {(b[3] - a[3]) & 0xFFFFFFFF for a, b in itertools.pairwise(packets) if not b[4]}
    assert steps == {240}
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(packets))
    assert 0.025 < gaps[len(gaps) // 2] < 0.035  # paced at the packet time, not in bursts
    level = rtlayer_native.rms_dbfs(rtlayer_native.alaw_decode(phone.sink.payload()))
    assert level > -40.0, level
    await transport.close()
    await oai.close()


async def test_app_rejects_with_603(phone: Phone) -> None:
    sipp, call = await phone.ring("uac_expect_603")
    oai = openai.AsyncOpenAI(api_key="test-key", base_url=phone.server.url + "/v1", max_retries=0)
    await oai.realtime.calls.reject(call.call_id)  # status_code defaults to 603 on the server
    code, log = await sipp.wait()
    assert code == 0, log
    assert call.call_id not in phone.server.state.calls
    # a decision on a call that is gone is a clear 404, with the server's message
    with pytest.raises(openai.NotFoundError, match="not found"):
        await oai.realtime.calls.accept(call.call_id, type="realtime")
    await oai.close()


async def test_an_accept_body_forcing_another_format_is_answered_with_the_sip_codec_and_a_warning(
    phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    """The official client can put any format in the accept body (``build_initial_config`` refuses
    them): the phone's codec wins, and the server says it ignored the rest."""
    caplog.set_level(logging.WARNING, logger="rtlayer.server.sip")
    sipp, call = await phone.ring("uac_pcmu_app_hangup")
    oai = openai.AsyncOpenAI(api_key="test-key", base_url=phone.server.url + "/v1", max_retries=0)
    await oai.realtime.calls.accept(
        call.call_id,
        type="realtime",
        audio={
            "output": {"format": {"type": "audio/pcm", "rate": 24000}},
            "input": {"format": {"type": "audio/pcmu"}},
        },
    )
    warnings = [r.getMessage() for r in caplog.records if call.call_id in r.getMessage()]
    assert warnings == [
        f"SIP call {call.call_id}: ignoring audio.output.format=audio/pcm in the accept body: "
        "the call's audio is audio/pcmu, as SIP negotiated"
    ]
    transport, events = await _connect(phone, call.call_id)
    await until(lambda: bool(events), 5, "session.created")
    audio = events[0]["session"]["audio"]
    assert audio["input"]["format"] == audio["output"]["format"] == {"type": "audio/pcmu"}
    await oai.realtime.calls.hangup(call.call_id)
    code, log = await sipp.wait()
    assert code == 0, log
    await transport.close()
    await oai.close()


async def test_a_session_update_with_formats_on_a_sip_call_keeps_the_callers_codec(
    phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    """An app not using rtlayer attaches with the official client's ``realtime.connect(call_id=...)`` and
    updates the session with PCM formats (as an SDK's session builder does): the rest of the update applies,
    the formats are dropped with one warning, and ``session.updated`` shows the call's real format."""
    caplog.set_level(logging.WARNING, logger="rtlayer.server")
    sipp, call = await phone.ring("uac_pcmu_app_hangup")
    oai = openai.AsyncOpenAI(api_key="test-key", base_url=phone.server.url + "/v1", max_retries=0)
    await oai.realtime.calls.accept(call.call_id, type="realtime")
    pcm24k: Any = {"type": "audio/pcm", "rate": 24000}
    async with oai.realtime.connect(call_id=call.call_id) as conn:
        for instructions in ("You are the billing desk.", "You are the billing desk, still."):
            await conn.session.update(
                session={
                    "type": "realtime",
                    "instructions": instructions,
                    "audio": {"input": {"format": pcm24k}, "output": {"format": pcm24k, "voice": "coral"}},
                }
            )
        async with asyncio.timeout(5):
            created, updated, again = [await conn.recv() for _ in range(3)]
    assert created.type == "session.created"
    for event, instructions in (
        (updated, "You are the billing desk."),
        (again, "You are the billing desk, still."),
    ):
        assert event.type == "session.updated"
        session: Any = event.session.to_dict()
        assert session["instructions"] == instructions  # the rest of the update applies
        audio = session["audio"]
        assert audio["output"]["voice"] == "coral"
        assert audio["input"]["format"] == audio["output"]["format"] == {"type": "audio/pcmu"}
    runner = phone.server.state.runners[created.session.id]  # type: ignore[union-attr]
    assert runner.session.formats_dropped == 2
    warnings = [r.getMessage() for r in caplog.records if "session.update" in r.getMessage()]
    assert warnings == [
        f"session {created.session.id}: ignoring audio.input/output.format in session.update: "  # type: ignore[union-attr]
        "this call's audio is audio/pcmu"
    ]
    await oai.realtime.calls.hangup(call.call_id)
    code, log = await sipp.wait()
    assert code == 0, log
    await oai.close()


async def test_bad_decisions_get_clear_errors_and_the_call_still_rings(phone: Phone) -> None:
    sipp, call = await phone.ring("uac_expect_603")
    base = f"/v1/realtime/calls/{call.call_id}"
    async with httpx.AsyncClient(base_url=phone.server.url, timeout=5) as http:
        auth = {"Authorization": "Bearer test-key"}
        bad = [
            ("/accept", b"{not json", "invalid_json", "could not parse the JSON body"),
            ("/accept", b"[1, 2]", "invalid_json", "must be a JSON object"),
            ("/accept", b'{"audio": {"output": {"voice": 7}}}', "invalid_value", ""),
            ("/reject", b'{"status_code": 200}', "invalid_value", "between 400 and 699"),
            ("/reject", b'{"status_code": true}', "invalid_value", "between 400 and 699"),
            ("/refer", b'{"target_uri": "http://example.com"}', "invalid_value", "sip:, sips: or tel:"),
            ("/refer", b'{"target_uri": "sip:a\\r\\nVia: x"}', "invalid_value", "sip:, sips: or tel:"),
        ]
        for action, body, code, message in bad:
            response = await http.post(base + action, content=body, headers=auth)
            assert response.status_code == 400, (action, body, response.text)
            error = response.json()["error"]
            assert error["code"] == code and message in error["message"], (action, body, error)
        # a WebRTC call is not decided over REST
        webrtc = WebRTCTransport()
        await webrtc.connect(url=phone.server.url)
        response = await http.post(f"/v1/realtime/calls/{webrtc.call_id}/accept", json={}, headers=auth)
        await webrtc.close()
        assert response.status_code == 400 and response.json()["error"]["code"] == "not_sip"
        # none of that decided the call: it still rings, and a good decision goes through
        response = await http.post(base + "/reject", json={}, headers=auth)
        assert response.status_code == 200, response.text
    exit_code, log = await sipp.wait()
    assert exit_code == 0, log  # sipp saw the 603 and nothing else


async def test_app_refers_a_ringing_call_with_302(phone: Phone) -> None:
    sipp, call = await phone.ring("uac_expect_302")
    oai = openai.AsyncOpenAI(api_key="test-key", base_url=phone.server.url + "/v1", max_retries=0)
    await oai.realtime.calls.refer(call.call_id, target_uri="tel:+14155550123")
    code, log = await sipp.wait()
    assert code == 0, log
    await oai.close()


async def test_call_never_accepted_times_out_with_408(phone: Phone) -> None:
    phone.server.sip.ring_timeout = 1.0
    sipp, call = await phone.ring("uac_expect_408")  # the app hears about it and does nothing
    code, log = await sipp.wait()
    assert code == 0, log
    assert phone.server.sip.counters.calls_timed_out == 1
    assert call.call_id not in phone.server.state.calls
    with pytest.raises(CallsAPIError, match="not found") as info:
        assert phone.app.client is not None
        await phone.app.client.accept(call.call_id, build_initial_config())
    assert info.value.status == 404


async def test_rtlayer_serve_with_sip_flags(tmp_path: Path) -> None:
    """`rtlayer serve --sip-port --webhook-url --webhook-secret`: the command line, as a user runs it."""
    app = PhoneApp(server_url="")
    await app.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtlayer.cli", "serve", "--port", "0", "--sip-port", "0",
        "--webhook-url", app.url, "--webhook-secret", app.secret,
        stderr=asyncio.subprocess.PIPE, cwd=str(Path(__file__).parent.parent),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = sip = ""
        async with asyncio.timeout(15):
            while not (url and sip):
                line = (await proc.stderr.readline()).decode()
                assert line, "rtlayer serve exited early"
                if "listening on " in line:
                    url = line.split("listening on ")[1].split()[0]
                if "SIP on udp " in line:
                    sip = line.rsplit(":", 1)[1].strip()
        assert app.client is not None
        app.client.base_url = url + "/v1"
        sipp = await run_sipp("uac_expect_603", int(sip), tmp_path, keys={"rtp_sink": "9"})
        call = await app.next_call()
        await app.client.reject(call.call_id)
        code, log = await sipp.wait()
        assert code == 0, log
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        await app.close()


async def test_openai_agents_sip_model_takes_the_call(phone: Phone, caplog: pytest.LogCaptureFixture) -> None:
    """The Agents SDK's own SIP path: ``build_initial_session_payload`` to accept, then
    ``OpenAIRealtimeSIPModel`` attached with ``call_id``; it hears the caller's turn and the answer."""
    from agents.realtime import RealtimeAgent, RealtimeRunner
    from agents.realtime.openai_realtime import OpenAIRealtimeSIPModel

    caplog.set_level(logging.ERROR, logger="openai.agents")
    sipp, call = await phone.ring("uac_pcmu_app_hangup")
    agent: RealtimeAgent[Any] = RealtimeAgent(name="operator", instructions="Answer the phone.")
    payload = await OpenAIRealtimeSIPModel.build_initial_session_payload(agent)
    assert phone.app.client is not None
    await phone.app.client.accept(call.call_id, payload.model_dump(exclude_none=True))
    runner = RealtimeRunner(agent, model=OpenAIRealtimeSIPModel())
    session = await runner.run(
        model_config={
            "call_id": call.call_id,
            "url": f"{phone.server.ws_url}?call_id={call.call_id}",
            "api_key": "x",
        }
    )
    kinds: list[str] = []
    async with session:
        async with asyncio.timeout(20):
            async for event in session:
                kinds.append(event.type)
                assert event.type != "error", event
                if event.type == "agent_end":
                    break
        await phone.app.client.hangup(call.call_id)
        code, log = await sipp.wait()
    assert code == 0, log
    assert "agent_start" in kinds and "agent_end" in kinds
    failures = [r.getMessage() for r in caplog.records if "Failed to validate server event" in r.getMessage()]
    assert not failures, failures


@pytest.mark.skipif(os.geteuid() != 0, reason="sipp's play_pcap_audio needs root (raw socket)")
async def test_sipps_builtin_uac_pcap_scenario(phone: Phone) -> None:
    """sipp's own ``uac_pcap`` (``-sn uac_pcap``), unchanged: PCMA offered without a ptime (we answer
    20 ms) while it sends 30 ms packets, then RFC 2833 digit 1, then BYE. A stack must take both."""
    sent = link_pcaps(phone.workdir)  # uac_pcap reads pcap/g711a.pcap and pcap/dtmf_2833_1.pcap
    sipp = await run_sipp("", phone.sip_port, phone.workdir, extra=["-sn", "uac_pcap"])
    call = await phone.app.next_call()
    assert phone.app.client is not None
    await phone.app.client.accept(
        call.call_id, build_initial_config(config={"audio": {"input": {"turn_detection": None}}})
    )
    transport, events = await _connect(phone, call.call_id)
    transport.send_event({"type": "response.create"})  # an answer goes out while the caller talks
    code, log = await sipp.wait(within=25)
    assert code == 0, log
    digits = [e["event"] for e in events if e.get("type") == "input_audio_buffer.dtmf_event_received"]
    assert digits == ["1"]
    stats = phone.server.sip.rtp_stats()
    assert stats["rtp_received"] == sent and stats["rtp_lost"] == 0 and stats["rtp_sent"] > 20
    await transport.close()
