"""The app side of a phone call: verify the webhook, accept the call, converse over its control socket.

A phone call reaches the Realtime service through a SIP trunk; the service posts a signed
``realtime.call.incoming`` webhook to this app, which verifies it (``add_webhook_route`` checks the
Standard Webhooks signature in constant time and refuses stale or tampered deliveries), accepts the call
with ``CallsClient`` and a session config (``build_initial_config``: no audio formats, SIP fixed them),
then attaches ``SIPTransport`` (the WebSocket opened with ``?call_id=``) and logs the conversation.
The caller's voice and the answer travel as G.711 over RTP between the phone and the server, never
through this app.

Locally, the embedded server plays the service, with its SIP front on UDP, and sipp plays the phone::

    python examples/sip_phone_app.py --port 8080 --secret whsec_cnRsYXllci1waG9uZS1hcHAtc2VjcmV0 &
    rtlayer serve --sip-port 5070 --webhook-url http://127.0.0.1:8080/webhook \\
        --webhook-secret whsec_cnRsYXllci1waG9uZS1hcHAtc2VjcmV0 &
    sipp -sn uac -d 5000 -m 1 -i 127.0.0.1 -mi 127.0.0.1 -s rtlayer 127.0.0.1:5070

(``tests/sip_scenarios/uac_pcmu_app_hangup.xml`` is a scenario that also streams speech, as
``tests/test_examples_media.py`` runs it.) Against the service itself: ``--url https://api.openai.com``,
OPENAI_API_KEY set, the webhook secret from the platform's webhook settings, and this app reachable
from the internet.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from aiohttp import web

from rtlayer.exceptions import RtlayerError
from rtlayer.transports.calls import CallsAPIError, CallsClient
from rtlayer.transports.sip import SIPTransport, build_initial_config
from rtlayer.transports.sip_webhooks import IncomingCall, add_webhook_route

log = logging.getLogger("phone_app")


class PhoneApp:
    """Answers every incoming call; optionally hangs up after a number of answers."""

    def __init__(self, url: str, api_key: str, *, hangup_after: int, calls: int) -> None:
        self.ws_url = "ws" + url.removeprefix("http") + "/v1/realtime"
        self.client = CallsClient(base_url=url + "/v1", api_key=api_key, timeout=10.0)
        self.api_key = api_key
        self.hangup_after = hangup_after
        self.remaining = calls
        self.done = asyncio.Event()

    async def on_call(self, call: IncomingCall) -> None:
        """Called for each verified ``realtime.call.incoming`` delivery."""
        log.info("%s: incoming call from %s", call.call_id, call.header("From"))
        try:
            await self.client.accept(
                call.call_id,
                build_initial_config(
                    instructions="You answer the phone for rtlayer. Be brief.",
                    transcription={"model": "gpt-4o-transcribe"},
                    # one turn per sentence, even with short pauses inside it
                    turn_detection={"type": "server_vad", "silence_duration_ms": 500},
                ),
            )
        except CallsAPIError as exc:
            log.error("%s: accept failed: %s", call.call_id, exc)
            return
        log.info("%s: accepted", call.call_id)
        try:
            await self.converse(call.call_id)
        except RtlayerError as exc:  # e.g. the caller hung up before the socket attached: 404
            log.warning("%s: %s", call.call_id, exc)
        finally:
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()

    async def converse(self, call_id: str) -> None:
        """Attach to the call and log what is said until the call ends."""
        transport = SIPTransport()
        ended = asyncio.Event()
        answers = 0

        def on_event(event: dict[str, Any]) -> None:
            nonlocal answers
            kind = event.get("type")
            if kind == "input_audio_buffer.speech_started":
                log.info("%s: caller speaking", call_id)
            elif kind == "conversation.item.input_audio_transcription.completed":
                log.info("%s: caller said: %s", call_id, event.get("transcript"))
            elif kind == "input_audio_buffer.dtmf_event_received":
                log.info("%s: caller pressed %s", call_id, event.get("event"))
            elif kind == "response.output_audio_transcript.done":
                log.info("%s: agent said: %s", call_id, event.get("transcript"))
            elif kind == "error":
                log.warning("%s: server error: %s", call_id, event["error"].get("message"))
            elif kind == "output_audio_buffer.stopped":
                # the answer has left on RTP: the phone has heard it
                answers += 1
                if answers == self.hangup_after:
                    log.info("%s: hanging up after %d answer(s)", call_id, answers)
                    asyncio.get_running_loop().create_task(self.hangup(call_id))

        def on_change(change: Any) -> None:
            if change.status.value == "disconnected":
                ended.set()

        transport.on("*", on_event)
        transport.on("connection_change", on_change)
        await transport.connect(url=self.ws_url, api_key=self.api_key, call_id=call_id)
        try:
            await ended.wait()  # the server closes the control socket when the call ends
        finally:
            await transport.close()
        log.info("%s: call ended", call_id)

    async def hangup(self, call_id: str) -> None:
        try:
            await self.client.hangup(call_id)
        except CallsAPIError as exc:
            log.warning("%s: hangup failed: %s", call_id, exc)


async def main(args: argparse.Namespace) -> None:
    phone = PhoneApp(args.url.rstrip("/"), args.api_key, hangup_after=args.hangup_after, calls=args.calls)
    app = web.Application()
    add_webhook_route(app, "/webhook", secret=args.secret, on_call=phone.on_call)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    host, port = runner.addresses[0][:2]
    log.info("webhook receiver on http://%s:%d/webhook", host, port)
    try:
        await phone.done.wait()
    finally:
        await phone.client.aclose()
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8765", help="the Realtime server's base URL")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "sk-local"))
    parser.add_argument("--secret", default=os.environ.get("OPENAI_WEBHOOK_SECRET"), help="whsec_... secret")
    parser.add_argument("--host", default="127.0.0.1", help="address of the webhook receiver")
    parser.add_argument("--port", type=int, default=8080, help="port of the webhook receiver (0: any free)")
    parser.add_argument("--hangup-after", type=int, default=0, help="hang up after N answers (0: never)")
    parser.add_argument("--calls", type=int, default=0, help="exit after N calls (0: run until stopped)")
    args = parser.parse_args()
    if not args.secret:
        parser.error("--secret (or OPENAI_WEBHOOK_SECRET) is required: unsigned calls are refused")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per REST call is noise here
    asyncio.run(main(args))
