"""Capture the wire fixtures of ``tests/data/wire/`` from the real code paths (a developer's tool, not a test).

    python tests/capture_wire.py

- ``sip_call/``: every SIP datagram of one call, in order, as it crossed the embedded server's UDP socket:
  sipp (``uac_pcmu_caller_bye``) calls, the app accepts through the Calls API, sipp streams speech and hangs
  up. Named ``NN-in|out-METHOD|STATUS.sip``.
- ``rtp/``: the first RTP packets of that call each way: ``caller-NN.bin`` (sipp's, as received by the call's
  socket) and ``server-NN.bin`` (the answer's first packets, as the native pacer sent them to the caller's
  port).
- ``turn_websocket_echo.jsonl``: every server event of one full turn over the WebSocket (``session.update``
  to 800 ms of silence ending a turn, hello_24k.wav and silence streamed in, server VAD, the echo
  responder's spoken answer to its end), one JSON object per line.

``tests/test_wire_fixtures.py`` round-trips them. Recapture when the wire really changes, and say why in
the commit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).parent))  # tests/ (helpers)
sys.path.insert(0, str(Path(__file__).parent.parent))  # this checkout first, not an installed rtlayer
from helpers import append_event, chunks, silence, wav
from sip_helpers import PhoneApp, g711_speech, run_sipp

from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.sip.call import SipCall
from rtlayer.server.sip.front import SipFront
from rtlayer.server.sip.message import SipRequest, parse_message

WIRE = Path(__file__).parent / "data" / "wire"
RTP_KEPT = 6


async def capture_turn() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with RealtimeServer() as server, websockets.connect(server.ws_url) as ws:
        # a pause in the greeting is not the end of the turn: one turn, one complete answer
        update = {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}}}
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", **update}}))
        pcm = wav("hello_24k") + silence(1500)
        for chunk in chunks(pcm):
            await ws.send(json.dumps(append_event(chunk)))
        while not events or events[-1]["type"] != "response.done":
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
    return events


async def capture_call() -> tuple[list[tuple[str, bytes]], list[bytes], list[bytes]]:
    sip: list[tuple[str, bytes]] = []
    caller_rtp: list[bytes] = []
    received = SipFront.datagram_received
    sent = SipFront._send
    rtp_in = SipCall.receive_rtp

    def tap_in(front: SipFront, data: bytes, addr: tuple[str, int]) -> None:
        sip.append(("in", data))
        received(front, data, addr)

    def tap_out(front: SipFront, data: bytes, addr: tuple[str, int]) -> None:
        sip.append(("out", data))
        sent(front, data, addr)

    def tap_rtp(call: SipCall, data: bytes, addr: tuple[str, int]) -> None:
        if len(caller_rtp) < RTP_KEPT:
            caller_rtp.append(data)
        rtp_in(call, data, addr)

    SipFront.datagram_received = tap_in  # type: ignore[method-assign]
    SipFront._send = tap_out  # type: ignore[method-assign]
    SipCall.receive_rtp = tap_rtp  # type: ignore[method-assign]
    server_rtp: list[bytes] = []
    loop = asyncio.get_running_loop()

    class Sink(asyncio.DatagramProtocol):
        """Keeps the first packets of the answer (the RTP clock runs in silence before it starts)."""

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if len(server_rtp) < RTP_KEPT and (server_rtp or any(b != 0xFF for b in data[12:])):
                server_rtp.append(data)

    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    app = PhoneApp(server_url="")
    await app.start()
    server = RealtimeServer(sip_port=0, webhook_url=app.url, webhook_secret=app.secret)
    await server.start()
    assert app.client is not None and server.sip is not None
    app.client.base_url = server.url + "/v1"
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "speech.pcmu").write_bytes(g711_speech("pcmu"))
        port = str(sink.get_extra_info("sockname")[1])
        sipp = await run_sipp(
            "uac_pcmu_caller_bye", int(server.sip.port), Path(workdir), keys={"rtp_sink": port}
        )
        try:
            call = await app.next_call()
            await app.client.accept(call.call_id, {"type": "realtime", "instructions": "Answer the phone."})
            code, log = await sipp.wait()
            assert code == 0, log
            await asyncio.sleep(0.2)  # the last retransmission absorbed
        finally:
            sink.close()
            await server.close()
            await app.close()
    return sip, caller_rtp, server_rtp


def _name(index: int, direction: str, data: bytes) -> str:
    message = parse_message(data)
    what = message.method if isinstance(message, SipRequest) else str(message.status)
    return f"{index:02d}-{direction}-{what}.sip"


async def main() -> None:
    (WIRE / "sip_call").mkdir(parents=True, exist_ok=True)
    (WIRE / "rtp").mkdir(parents=True, exist_ok=True)
    events = await capture_turn()
    with (WIRE / "turn_websocket_echo.jsonl").open("w") as out:
        for event in events:
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
    sip, caller_rtp, server_rtp = await capture_call()
    for old in (WIRE / "sip_call").glob("*.sip"):
        old.unlink()
    for i, (direction, data) in enumerate(sip, 1):
        (WIRE / "sip_call" / _name(i, direction, data)).write_bytes(data)
    for old in (WIRE / "rtp").glob("*.bin"):
        old.unlink()
    for who, packets in (("caller", caller_rtp), ("server", server_rtp)):
        for i, data in enumerate(packets, 1):
            (WIRE / "rtp" / f"{who}-{i:02d}.bin").write_bytes(data)
    print(f"{len(events)} events, {len(sip)} SIP datagrams, {len(caller_rtp)}+{len(server_rtp)} RTP packets")


if __name__ == "__main__":
    asyncio.run(main())
