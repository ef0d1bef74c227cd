"""Headless Chromium talks to the embedded server through the talk page; prints what both sides saw.

Run INSIDE a loopback-only network namespace (``tests/test_browser_talk.py`` does this with
``unshare -n``): Chromium looks up Google hosts and joins mDNS even with every flag below, and the
namespace makes sure nothing of that leaves the machine.

    unshare -n sh -c 'ip link set lo up && exec "$@"' sh python tests/browser_talk_driver.py OUT_DIR

It starts a ``RealtimeServer`` (127.0.0.1, a free port) whose responder records the user audio of
each turn and answers with 1.5 s of a 440 Hz tone at amplitude 0.3; launches Chromium with a fake
microphone fed from a WAV (1 s of silence, ``hello_24k.wav``, 6 s of silence; Chromium loops it);
opens ``/?autostart=1``; waits (bounded) for the first answer to finish playing; samples
``getStats()`` while it plays; sends a text turn with the page's button and interrupts it with
another; saves a screenshot; hangs up with the page's button; and prints
one JSON object (the last line of stdout) for the test to check.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from helpers import event_problems, load_wav, tone
from playwright.async_api import Page, async_playwright

import rtlayer_native
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import AudioPart, ResponsePart, ResponseRequest, TextPart
from rtlayer.server.webrtc import front_of

CHROMIUM = "/usr/bin/chromium"
DEADLINE_S = 30.0
# The page's own session defaults are under test (input transcription on, and a silence long enough
# that hello_24k.wav's two sentences stay one turn); ?session= only names a voice on top.
SESSION = {"audio": {"output": {"voice": "cedar"}}}

# Playwright's own --disable-features list (chromiumSwitches.ts): a second --disable-features flag
# replaces the first, so ours must repeat it, plus WebRtcHideLocalIpsWithMdns (loopback candidates
# as plain 127.0.0.1 instead of mDNS names).
PLAYWRIGHT_DISABLED_FEATURES = [
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
]


def chromium_args(fake_wav: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-dev-shm-usage",
        "--allow-loopback-in-peer-connection",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-features=" + ",".join([*PLAYWRIGHT_DISABLED_FEATURES, "WebRtcHideLocalIpsWithMdns"]),
    ]


def loud_stats(pcm: bytes, rate: int) -> dict[str, float]:
    """Duration, loud duration (20 ms frames above -50 dBFS) and RMS of the loud frames."""
    step = rate // 50 * 2
    frames = [pcm[i : i + step] for i in range(0, len(pcm) - step + 1, step)]
    loud = [f for f in frames if rtlayer_native.rms_dbfs(f) > -50]
    return {
        "duration_ms": len(pcm) / (rate * 2) * 1000,
        "loud_ms": len(loud) * 20.0,
        "loud_rms": rtlayer_native.rms(b"".join(loud)) if loud else 0.0,
    }


class RecordingResponder:
    """Records each turn's user audio; answers with 1.5 s of a 440 Hz tone at amplitude 0.3; "transcribes"
    every turn as the WAV's words."""

    words = "Hello there, how are you today?"

    def __init__(self) -> None:
        self.answer = tone(1500)
        self.turns: list[dict[str, float]] = []

    async def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]:
        if request.user_audio:
            self.turns.append(loud_stats(request.user_audio, 24000))
        yield TextPart("a tone")
        for offset in range(0, len(self.answer), 4800):
            yield AudioPart(self.answer[offset : offset + 4800])

    async def transcribe(self, pcm16_24k: bytes) -> str | None:
        return self.words


def fake_microphone(out_dir: Path) -> tuple[Path, bytes]:
    speech, rate = load_wav("hello_24k")
    path = out_dir / "fake_mic.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(rate * 2) + speech + bytes(rate * 2 * 6))
    return path, speech


async def wait_until(page: Page, expression: str, deadline: float) -> None:
    while not await page.evaluate(expression):
        if time.monotonic() > deadline:
            state = await page.evaluate(
                "JSON.stringify({status: talk.status, error: talk.error, events: talk.events})"
            )
            raise TimeoutError(f"timed out waiting for {expression}; page: {state}")
        await asyncio.sleep(0.05)


async def run(out_dir: Path) -> dict[str, Any]:
    fake_wav, speech = fake_microphone(out_dir)
    responder = RecordingResponder()
    deadline = time.monotonic() + DEADLINE_S
    result: dict[str, Any] = {"wav": loud_stats(speech, 24000)}
    emitted: list[dict[str, Any]] = []
    async with RealtimeServer(responder=responder) as server, async_playwright() as pw:
        server.state.add_event_observer(lambda _session_id, event: emitted.append(event))
        front = front_of(server.state)
        assert front is not None
        with tempfile.TemporaryDirectory(prefix="rtlayer-chromium-") as profile:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=chromium_args(fake_wav),
                ignore_default_args=["--mute-audio"],
                viewport={"width": 1000, "height": 900},
            )
            try:
                page = await context.new_page()
                console: list[str] = []
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                await page.goto(f"{server.url}/?autostart=1&session={quote(json.dumps(SESSION))}")
                await wait_until(page, "talk.status === 'connected' || talk.status === 'error'", deadline)
                result["connected"] = await page.evaluate("talk.status")
                await wait_until(
                    page, "(talk.eventCounts['output_audio_buffer.started'] || 0) >= 1", deadline
                )
                # Sample the receiver's stats while the answer plays (audioLevel is instantaneous).
                levels: list[float] = []
                while not await page.evaluate("(talk.eventCounts['output_audio_buffer.stopped'] || 0) >= 1"):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the answer never finished playing")
                    inbound = (await page.evaluate("talk.stats()"))["inbound"] or {}
                    levels.append(float(inbound.get("audioLevel") or 0.0))
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.3)  # the tail of the answer (jitter buffer)
                result["browser"] = await page.evaluate("talk.stats()")
                result["browser"]["maxAudioLevel"] = max(levels, default=0.0)
                result["browser"]["outputLevelMax"] = await page.evaluate("talk.outputLevelMax")
                result["call_id"] = await page.evaluate("talk.callId")
                call = front.calls[result["call_id"]]
                result["server"] = {
                    "turns": list(responder.turns),
                    "heard_ms": call.input.duration_ms,
                    "heard_loud_ms": call.input.loud_ms,
                    "answer_frames_sent": call.track.audio_frames_sent,
                }
                # The page's own buttons, over the data channel: a text turn, interrupted while it plays.
                await page.click("#send")
                await wait_until(
                    page, "(talk.eventCounts['output_audio_buffer.started'] || 0) >= 2", deadline
                )
                await page.click("#interrupt")
                await wait_until(
                    page, "(talk.eventCounts['output_audio_buffer.cleared'] || 0) >= 1", deadline
                )
                result["events"] = await page.evaluate("talk.eventCounts")
                await wait_until(page, "talk.transcript.filter((e) => e.final).length >= 4", deadline)
                result["transcript"] = await page.evaluate(
                    "talk.transcript.map((e) => ({role: e.role, text: e.text, final: e.final}))"
                )
                result["transcript_text"] = await page.inner_text("#transcript")
                result["log_folded"] = not await page.evaluate("document.getElementById('events').open")
                result["log_visible"] = await page.is_visible("#log")
                await page.screenshot(path=str(out_dir / "browser_talk.png"), full_page=True)
                await page.click("#hangup")
                await wait_until(page, "talk.status === 'closed'", deadline)
                for _ in range(100):  # the server sees the peer leave within a few frames
                    if not server.state.calls:
                        break
                    await asyncio.sleep(0.05)
                result["calls_left"] = len(server.state.calls)
                result["peers_left"] = len(front.peers)
                result["console_errors"] = [c for c in console if c.startswith("error")]
                result["invalid_events"] = [problem for event in emitted for problem in event_problems(event)]
            finally:
                await context.close()
    return result


def main() -> int:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(run(out_dir))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
