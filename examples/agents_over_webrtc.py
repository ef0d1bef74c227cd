"""An ``openai-agents`` RealtimeAgent over WebRTC, which the Agents Python SDK cannot do by itself.

``RtlayerRealtimeModel(transport=WebRTCTransport())`` is handed to the SDK's ``RealtimeRunner``: the agent, its
tool and its session run unchanged, the conversation travels as a WebRTC call (events on the data channel,
speech as Opus on the audio tracks). With no --url, the embedded server runs in-process with a scripted
responder that calls ``get_weather`` when asked about the weather and answers speech with a sentence; against
a real model, pass its URL (``https://api.openai.com/v1``) and set OPENAI_API_KEY.

    python examples/agents_over_webrtc.py [--url http://HOST:PORT] [--wav SPEECH_24K_MONO.wav]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import wave
from pathlib import Path
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession

from rtlayer.integrations.openai_agents import RtlayerRealtimeModel
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import ScriptedResponder
from rtlayer.transports import WebRTCTransport

RULES = {
    "rules": [
        {
            "when": {"text_contains": "weather"},
            "call": {"name": "get_weather", "arguments": {"city": "Paris"}},
        },
        {"after_function_output": "get_weather", "say": "It is sunny and 21 degrees in Paris."},
        {"when": {"audio": True}, "say": "I heard you loud and clear."},
    ]
}
SPEECH = Path(__file__).resolve().parents[1] / "tests" / "data" / "hello_24k.wav"
# One user turn for a whole sentence, even with short pauses inside it.
SETTINGS: Any = {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny and 21 degrees in {city}"


async def answer(session: RealtimeSession, limit: float = 20.0) -> None:
    """Prints what the agent does until its answer has been played out on the call."""
    said_before = len(transcripts(session))
    audio_ms = 0.0
    async with asyncio.timeout(limit):
        async for event in session:
            if event.type == "error":
                raise RuntimeError(f"error: {event.error}")
            if event.type == "tool_start":
                print(f"tool: {event.tool.name}({event.arguments})")
            elif event.type == "tool_end":
                print(f"tool returned: {event.output}")
            elif event.type == "audio":
                audio_ms += len(event.audio.data) / 48  # PCM16 24 kHz
            elif event.type == "raw_model_event" and event.data.type == "raw_server_event":
                # WebRTC: the answer plays on the call after its response.done; this marks its end.
                if event.data.data.get("type") == "output_audio_buffer.stopped":
                    break
    spoken = " ".join(transcripts(session)[said_before:])
    print(f"agent said: {spoken} ({audio_ms:.0f} ms of its audio received over WebRTC)")


def transcripts(session: RealtimeSession) -> list[str]:
    """The agent's answers in the session's history."""
    out = []
    for item in session._history:
        if item.type == "message" and item.role == "assistant":
            for part in item.content:
                text = getattr(part, "transcript", None) or getattr(part, "text", None)
                if text:
                    out.append(text)
    return out


async def converse(url: str, api_key: str | None, wav: Path | None) -> None:
    agent: RealtimeAgent[Any] = RealtimeAgent(
        name="weather", instructions="Answer briefly; use get_weather for the weather.", tools=[get_weather]
    )
    model = RtlayerRealtimeModel(transport=WebRTCTransport())
    runner = RealtimeRunner(agent, model=model)
    config: Any = {"url": url, "initial_model_settings": SETTINGS}
    if api_key:
        config["api_key"] = api_key
    async with await runner.run(model_config=config) as session:
        print(f"call {getattr(model.transport, 'call_id', None)} connected")
        print("user says: What is the weather like in Paris?")
        await session.send_message("What is the weather like in Paris?")
        await answer(session)
        if wav is not None:
            with wave.open(str(wav), "rb") as f:
                pcm, rate = f.readframes(f.getnframes()), f.getframerate()
            print(f"user speaks: {wav.name} ({len(pcm) / (2 * rate):.1f} s)")
            await session.send_audio(pcm + bytes(2 * rate))  # and a second of silence ends the turn
            await answer(session)


async def main(url: str | None, wav: Path | None) -> None:
    if url is not None:
        await converse(url, os.environ.get("OPENAI_API_KEY"), wav)
        return
    async with RealtimeServer(responder=ScriptedResponder(RULES)) as server:
        await converse(server.url, None, wav)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="the server's HTTP base (default: an embedded server)")
    parser.add_argument("--wav", type=Path, default=SPEECH if SPEECH.exists() else None)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.wav))
