"""The official ``openai`` client against the embedded server, over a real socket.

``AsyncOpenAI(base_url=server.url + "/v1").realtime.connect(model=...)`` is exactly what an app
writes against the service; every event it receives is also validated by the conftest fixture.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import openai
import pytest
import websockets
from helpers import load_wav, silence, stream_pcm
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import ClientSecretCreateResponse

from rtlayer.server import RealtimeServer

pytestmark = pytest.mark.timeout(30)


async def events_until(conn: AsyncRealtimeConnection, last: str, limit: float = 10.0) -> list[Any]:
    """Every event up to and including the first of type ``last`` (bounded in time)."""
    seen: list[Any] = []
    async with asyncio.timeout(limit):
        async for event in conn:
            seen.append(event)
            if event.type == last:
                return seen
    raise AssertionError(f"connection ended before {last}: {[e.type for e in seen]}")


def client_for(server: RealtimeServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=server.url + "/v1")


async def test_session_update_answers_with_the_whole_session(server: RealtimeServer) -> None:
    async with client_for(server).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={"type": "realtime", "instructions": "Be brief.", "audio": {"output": {"voice": "cedar"}}}
        )
        events = await events_until(conn, "session.updated")
    created, updated = events[0], events[-1]
    assert created.type == "session.created"
    assert created.session.model == "gpt-realtime"
    session = updated.session
    assert session.instructions == "Be brief."
    assert session.audio.output.voice == "cedar"
    # The untouched rest of the session comes back too, at the service's defaults.
    assert session.audio.input.format.type == "audio/pcm"
    assert session.audio.input.turn_detection.type == "server_vad"
    assert session.output_modalities == ["audio"]
    assert session.tools == []


async def test_text_turn_gets_a_text_answer(server: RealtimeServer) -> None:
    async with client_for(server).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello there"}],
            }
        )
        await conn.response.create()
        events = await events_until(conn, "response.done")
    types = [e.type for e in events]
    assert types.index("conversation.item.added") < types.index("response.created")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert done.status == "completed"
    assert "hello there" in text
    assert done.output[0].content[0].text == text


async def test_audio_turn_is_detected_committed_and_echoed_with_matching_length(
    server: RealtimeServer,
) -> None:
    pcm, rate = load_wav("hello_24k")
    assert rate == 24000
    async with client_for(server).realtime.connect(model="gpt-realtime") as conn:
        # espeak pauses ~300 ms between phrases: a 500 ms end-of-turn silence keeps it one turn.
        await conn.session.update(
            session={
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}},
            }
        )

        async def append(chunk: bytes) -> None:
            await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())

        # 20 ms chunks, 8x real time: server VAD counts audio time, not wall time.
        await stream_pcm(append, pcm + silence(1000), chunk_ms=20, speed=8.0)
        events = await events_until(conn, "response.done")

    types = [e.type for e in events]
    order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.created",
        "response.output_audio.done",
        "response.done",
    ]
    assert [types.index(t) for t in order] == sorted(types.index(t) for t in order), types
    started = next(e for e in events if e.type == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e.type == "input_audio_buffer.speech_stopped")
    # espeak's "hello" speech starts within the first half second and ends before the WAV does.
    assert 0 <= started.audio_start_ms < 500
    assert 2500 < stopped.audio_end_ms <= 3200 + 1000
    answer = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
    answer_ms = len(answer) / 48
    heard_ms = stopped.audio_end_ms - started.audio_start_ms
    # The echo says back what it heard: as long as the detected speech, within 300 ms (padding).
    assert abs(answer_ms - heard_ms) <= 300, (answer_ms, heard_ms)
    assert events[-1].response.status == "completed"


async def test_connection_with_a_wrong_key_is_refused_with_401() -> None:
    async with RealtimeServer(api_key="sk-right") as server:
        client = openai.AsyncOpenAI(api_key="sk-wrong", base_url=server.url + "/v1")
        with pytest.raises(Exception) as caught:
            async with client.realtime.connect(model="gpt-realtime"):
                pass
        assert "401" in str(caught.value)
        async with openai.AsyncOpenAI(api_key="sk-right", base_url=server.url + "/v1").realtime.connect(
            model="gpt-realtime"
        ) as conn:
            assert (await conn.recv()).type == "session.created"


async def test_client_secrets_through_the_official_client_open_a_session(server: RealtimeServer) -> None:
    client = client_for(server)
    raw = await client.realtime.client_secrets.with_raw_response.create(
        expires_after={"anchor": "created_at", "seconds": 120},
        session={"type": "realtime", "instructions": "Whisper.", "output_modalities": ["text"]},
    )
    # Strict validation of the whole answer (the client itself only constructs, never validates).
    secret = ClientSecretCreateResponse.model_validate(raw.http_response.json())
    assert secret.value.startswith("ek_") and secret.session.type == "realtime"
    ephemeral = openai.AsyncOpenAI(api_key=secret.value, base_url=server.url + "/v1")
    async with ephemeral.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
    assert created.type == "session.created"
    assert created.session.instructions == "Whisper."
    assert created.session.output_modalities == ["text"]


async def test_barge_in_cancels_the_answer_still_streaming() -> None:
    joke, _ = load_wav("joke_24k")
    hello, _ = load_wav("hello_24k")
    async with RealtimeServer(audio_pacing=1.0) as server:  # the answer streams at real time
        async with client_for(server).realtime.connect(model="gpt-realtime") as conn:

            async def append(chunk: bytes) -> None:
                await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())

            await stream_pcm(append, joke + silence(400), speed=0)
            first = await events_until(conn, "response.output_audio.delta")
            # The user talks over the answer: server VAD's interrupt_response cancels it.
            await stream_pcm(append, hello[: 24000 * 2], speed=0)
            rest = await events_until(conn, "response.done")
    response_id = next(e for e in first if e.type == "response.created").response.id
    done = rest[-1].response
    assert done.id == response_id
    assert done.status == "cancelled" and done.status_details.reason == "turn_detected"
    types = [e.type for e in rest]
    assert "input_audio_buffer.speech_started" in types
    assert types.index("input_audio_buffer.speech_started") < types.index("response.done")
    # A cancelled response still closes what it opened.
    assert "response.output_audio.done" in types and "response.output_item.done" in types


class Clock:
    """The server's wall clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_an_ephemeral_key_from_the_official_client_expires() -> None:
    clock = Clock()
    async with RealtimeServer(api_key="sk-real", clock=clock) as server:
        admin = openai.AsyncOpenAI(api_key="sk-real", base_url=server.url + "/v1")
        secret = await admin.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 10}, session={"type": "realtime"}
        )
        assert secret.value.startswith("ek_") and secret.expires_at == pytest.approx(clock() + 10, abs=2)
        ephemeral = openai.AsyncOpenAI(api_key=secret.value, base_url=server.url + "/v1")
        clock.offset = 8.0  # still valid shortly before it expires (expires_at is whole seconds)
        async with ephemeral.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
        clock.offset = 10.5  # expired: the handshake is refused with the service's 401
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with ephemeral.realtime.connect(model="gpt-realtime") as conn:
                await conn.recv()
        assert refused.value.response.status_code == 401
        assert b"invalid_api_key" in refused.value.response.body
        # The real key still works.
        async with admin.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"


async def test_idle_timeout_prompts_after_the_answer(server: RealtimeServer) -> None:
    async with client_for(server).realtime.connect(model="gpt-realtime") as conn:
        # Text answers: no playback to wait for, so the timeout counts from response.done.
        await conn.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 300}}},
            }
        )
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await conn.response.create()
        await events_until(conn, "response.done")
        # Nobody speaks: the server commits the (empty) input and answers on its own.
        events = await events_until(conn, "response.done", limit=5.0)
    types = [e.type for e in events]
    assert types[:2] == ["input_audio_buffer.timeout_triggered", "input_audio_buffer.committed"], types
    assert events[-1].response.status == "completed"
