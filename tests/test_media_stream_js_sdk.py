"""Cross-check with foreign code: the JS Agents SDK's ``TwilioRealtimeTransportLayer`` (a Twilio bridge we
did not write), bridged to the embedded server and called by our Twilio simulator, holds a turn and a
barge-in. It shows the simulator behaves like Twilio to someone else's bridge.

Needs Node and the packages of ``tests/js/package.json`` (``scripts/install-test-deps`` runs ``npm install
--prefix tests/js``; or a folder named by ``RTLAYER_JS_AGENTS_DIR``); a missing peer fails the test, it is
never skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from helpers import EmittedEvents, eventually
from media_stream_helpers import hello_sentence

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.testing.phone import PhoneSimulator

JS_DIR = Path(os.environ.get("RTLAYER_JS_AGENTS_DIR") or Path(__file__).parent / "js")
SCRIPT = Path(__file__).parent / "js" / "twilio_bridge.mjs"

pytestmark = [pytest.mark.timeout(60)]


def test_the_js_peer_is_installed() -> None:
    assert shutil.which("node") is not None, "node is a test requirement (scripts/install-test-deps)"
    assert (JS_DIR / "node_modules" / "@openai" / "agents-extensions").is_dir(), (
        f"run `npm install --prefix {JS_DIR}` (scripts/install-test-deps does)"
    )


async def test_the_js_sdks_twilio_bridge_holds_a_turn_and_a_barge_in_with_our_simulator(
    server: RealtimeServer, server_events: EmittedEvents
) -> None:
    script = JS_DIR / SCRIPT.name
    if script.resolve() != SCRIPT.resolve():
        shutil.copy(SCRIPT, script)  # ES modules resolve packages from the script's own folder
    node = await asyncio.create_subprocess_exec(
        "node", str(script), server.ws_url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        assert node.stdout is not None
        line = (await asyncio.wait_for(node.stdout.readline(), 20)).decode()
        assert "listening on " in line, line
        async with PhoneSimulator("twilio", line.split("listening on ")[1].strip()) as phone:
            phone.say(hello_sentence(), 24000)
            first = await phone.wait_for_answer_end(1, within=15)
            phone.say(hello_sentence(), 24000)
            await phone.wait_answer(2, min_played_ms=200, within=15)
            phone.say(hello_sentence(), 24000)  # barge in
            await phone.wait_for(lambda: phone.clears, within=5)
            await eventually(lambda: server_events.of_type("conversation.item.truncated"), within=3)
        out = (await asyncio.wait_for(node.stdout.read(), 10)).decode()
        await asyncio.wait_for(node.wait(), 10)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    assert first.played_ms >= 500
    clear = phone.clears[0]
    truncated = server_events.of_type("conversation.item.truncated")[0]["audio_end_ms"]
    assert truncated <= clear.played_ms  # never past what the caller heard
    assert phone.problems == []  # every frame it sent is one Twilio takes
    assert "audio interrupted" in out and "error" not in out
    print(
        f"JS SDK: truncated at {truncated} ms, played {clear.played_ms} ms, discarded {clear.discarded_ms} ms"
    )
