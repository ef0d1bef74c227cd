"""One spoken turn over WebRTC: a WAV goes out as the microphone, the spoken answer comes back.

``WebRTCTransport`` places a WebRTC call (aiortc: an Opus audio track each way and the ``oai-events``
data channel), ``send_audio`` feeds it PCM at the WAV's own rate (rtlayer resamples and paces it as
20 ms 48 kHz frames), and the answer arrives as ``audio`` events in the app's format (PCM16 24 kHz),
which the Agents JS SDK does not give on WebRTC. With no --url, the embedded server runs in-process (its
default echo responder answers speech with the speech itself and a transcript that describes it); against
a real model, pass its URL (``https://api.openai.com/v1``) and set OPENAI_API_KEY.

    python examples/webrtc_call.py [--url http://HOST:PORT] [--wav SPEECH.wav] [--out ANSWER.wav]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import wave
from pathlib import Path
from typing import Any

import rtlayer_native
from rtlayer.audio import AudioFormat
from rtlayer.transport import AudioEvent
from rtlayer.transports import WebRTCTransport

SPEECH = Path(__file__).resolve().parents[1] / "tests" / "data" / "hello_24k.wav"
# One user turn for a whole sentence, even with short pauses inside it.
SETTINGS: dict[str, Any] = {
    "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}
}


async def spoken_turn(url: str | None, api_key: str | None, wav: Path, out: Path | None) -> None:
    """Speak ``wav`` on a WebRTC call to ``url`` (None: the embedded server) and print what came back."""
    try:
        with wave.open(str(wav), "rb") as f:
            if f.getsampwidth() != 2 or f.getnchannels() != 1:
                raise SystemExit(f"{wav}: expected 16-bit mono PCM")
            pcm, rate = f.readframes(f.getnframes()), f.getframerate()
    except (OSError, wave.Error) as exc:
        raise SystemExit(f"{wav}: {exc}") from None
    answer = bytearray()
    said: list[str] = []
    played = asyncio.Event()

    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            print("server: speech started")
        elif kind == "input_audio_buffer.speech_stopped":
            print("server: speech stopped")
        elif kind == "response.output_audio_transcript.done":
            said.append(event["transcript"])
        elif kind == "error":
            print(f"server error: {event['error'].get('message')}")
        elif kind == "output_audio_buffer.stopped":
            # on WebRTC the answer plays on the call after response.done: this marks its end
            played.set()

    def on_audio(event: AudioEvent) -> None:
        answer.extend(event.data)

    # input_format: the WAV's own rate, resampled by rtlayer to the 48 kHz track
    transport = WebRTCTransport(input_format=AudioFormat("pcm16", rate))
    transport.on("*", on_event)
    transport.on("audio", on_audio)
    await transport.connect(url=url, api_key=api_key, initial_session_config=SETTINGS)
    try:
        print(f"call {transport.call_id} connected")
        print(f"you say: {wav.name} ({len(pcm) / (2 * rate):.1f} s at {rate} Hz)")
        await transport.send_audio(pcm + bytes(2 * rate))  # and a second of silence ends the turn
        async with asyncio.timeout(30):
            await played.wait()
    finally:
        await transport.close()
    level = rtlayer_native.rms_dbfs(bytes(answer)) if answer else float("-inf")
    print(f"heard: {len(answer) / 48:.0f} ms of answer audio at {level:.1f} dBFS")
    print(f"heard said: {' '.join(said) or '(no transcript)'}")
    if out is not None:
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(24000)
            w.writeframes(bytes(answer))
        print(f"answer written to {out}")


async def main(url: str | None, wav: Path, out: Path | None) -> None:
    # no URL and no key: WebRTCTransport starts the embedded server in-process, and stops it at close()
    await spoken_turn(url, os.environ.get("OPENAI_API_KEY") if url else None, wav, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="the server's HTTP base (default: an embedded server)")
    parser.add_argument("--wav", type=Path, default=SPEECH, help="16-bit mono speech, any rate")
    parser.add_argument("--out", type=Path, default=None, help="write the answer here (PCM16 24 kHz WAV)")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.wav, args.out))
