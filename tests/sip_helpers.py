"""Helpers for the SIP tests: a phone app (webhook receiver + Calls API), an RTP sink, and sipp.

- :class:`PhoneApp` is what an app on the Realtime service looks like: an aiohttp server receiving
  ``realtime.call.incoming`` (verified with ``rtlayer``'s receiver, the raw deliveries kept for a
  second check with ``openai``), and a :class:`CallsClient` to decide.
- :class:`RtpSink` is the media port the caller advertises in its SDP: it records every RTP packet
  the server sends (sipp itself cannot report what it received).
- :class:`Caller` is a badly behaved caller sipp cannot play (a few lines of Python on UDP);
  :func:`sip_rig` a server with its SIP front and the app deciding its calls; :func:`answered_call`
  a caller the app has answered; :func:`until` waits for a condition, with a deadline.
- :func:`run_sipp` runs one sipp scenario from ``tests/sip_scenarios`` with the options that keep it
  on loopback and bounded (``-m 1 -i 127.0.0.1 -mi 127.0.0.1 -nostdin -timeout 20s -timeout_error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import struct
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import rtlayer_native
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.server.responders import Responder
from rtlayer.server.sip.message import SipParseError, SipRequest, SipResponse, parse_message
from rtlayer.server.sip.sdp import parse_offer
from rtlayer.transports.calls import CallsClient
from rtlayer.transports.sip import build_initial_config
from rtlayer.transports.sip_webhooks import IncomingCall, add_webhook_route

SCENARIOS = Path(__file__).parent / "sip_scenarios"
DATA = Path(__file__).parent / "data"
SIPP = shutil.which("sipp")
SECRET = "whsec_cnRsYXllci1zaXAtdGVzdHMtc2VjcmV0LWtleQ=="


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def g711_speech(codec: str, silence_s: float = 1.5) -> bytes:
    """tests/data/hello_24k.wav through rtlayer_native to 8 kHz G.711, then silence (so the turn ends)."""
    with wave.open(str(DATA / "hello_24k.wav"), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    tx = rtlayer_native.Transcoder("pcm16", 24000, codec, 8000)
    body = tx.process(pcm) + tx.flush()
    quiet = b"\xff" if codec == "pcmu" else b"\xd5"
    return body + quiet * int(8000 * silence_s)


@dataclass
class RtpSink:
    """A UDP port that records RTP packets: (arrival time, payload type, seq, ts, marker, payload)."""

    port: int = 0
    packets: list[tuple[float, int, int, int, bool, bytes]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sink = self

        class _Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if len(data) >= 12:
                    _b0, b1, seq, ts = struct.unpack_from("!BBHI", data)
                    sink.packets.append((loop.time(), b1 & 0x7F, seq, ts, bool(b1 & 0x80), data[12:]))

        self.transport, _ = await loop.create_datagram_endpoint(_Proto, local_addr=("127.0.0.1", 0))
        self.port = int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def payload(self) -> bytes:
        return b"".join(p[5] for p in self.packets)


@dataclass
class PhoneApp:
    """The app side: webhook receiver on 127.0.0.1 and a Calls API client."""

    server_url: str
    secret: str = SECRET
    calls: asyncio.Queue[IncomingCall] = field(default_factory=asyncio.Queue)
    deliveries: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    url: str = ""
    client: CallsClient | None = None
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        @web.middleware
        async def keep_raw(request: web.Request, handler: Any) -> web.StreamResponse:
            self.deliveries.append((await request.read(), dict(request.headers)))
            return await handler(request)  # type: ignore[no-any-return]

        app = web.Application(middlewares=[keep_raw])
        add_webhook_route(app, "/webhook", secret=self.secret, on_call=self.calls.put_nowait)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/webhook"
        self.client = CallsClient(base_url=self.server_url + "/v1", api_key="test-key", timeout=5.0)

    async def next_call(self, within: float = 10.0) -> IncomingCall:
        return await asyncio.wait_for(self.calls.get(), within)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class SippRun:
    process: asyncio.subprocess.Process
    workdir: Path

    async def wait(self, within: float = 30.0) -> tuple[int, str]:
        """sipp's exit code (0: the scenario passed) and its error log."""
        try:
            await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        errors = "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))
        out = await self.process.stdout.read() if self.process.stdout else b""
        return int(self.process.returncode or 0), errors + out.decode(errors="replace")[-3000:]


async def run_sipp(
    scenario: str,
    sip_port: int,
    workdir: Path,
    *,
    keys: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> SippRun:
    """Start sipp on ``scenario`` (a file of tests/sip_scenarios; "" for a built-in one named by
    ``extra=["-sn", NAME]``) against 127.0.0.1:``sip_port``, working in ``workdir``."""
    assert SIPP is not None
    args = [SIPP, "-sf", str(SCENARIOS / f"{scenario}.xml")] if scenario else [SIPP]  # "": -sn in extra
    args += [
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-mp",
        str(free_udp_port()),
        "-nostdin",
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_err",
        "-s",
        "rtlayer",
    ]
    for key, value in (keys or {}).items():
        args += ["-key", key, value]
    args += [*(extra or []), f"127.0.0.1:{sip_port}"]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=str(workdir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    return SippRun(proc, workdir)


PCAP_DIR = Path("/usr/share/sip-tester")


def link_pcaps(workdir: Path, audio_packets: int = 86) -> int:
    """``workdir/pcap/``: the first ``audio_packets`` packets of sipp's g711a.pcap (PCMA, 30 ms each),
    and links to its RFC 2833 DTMF pcaps. Returns how many audio packets the cut holds."""
    out = workdir / "pcap"
    out.mkdir(exist_ok=True)
    data = (PCAP_DIR / "g711a.pcap").read_bytes()
    offset, kept = 24, 0  # pcap global header, then (16-byte record header + packet) each
    while offset < len(data) and kept < audio_packets:
        (incl,) = struct.unpack_from("<I", data, offset + 8)
        offset += 16 + incl
        kept += 1
    (out / "g711a.pcap").write_bytes(data[:offset])
    for dtmf in PCAP_DIR.glob("dtmf_2833_*.pcap"):
        link = out / dtmf.name
        if not link.exists():
            link.symlink_to(dtmf)
    return kept


@dataclass
class Phone:
    """A phone line into an embedded server: the app (webhook + Calls API), the caller's RTP sink, and
    ``ring`` to have sipp call."""

    server: RealtimeServer
    app: PhoneApp
    sink: RtpSink
    workdir: Path
    runs: list[SippRun] = field(default_factory=list)

    @property
    def sip_port(self) -> int:
        return int(self.server.sip.port)

    async def ring(self, scenario: str) -> tuple[SippRun, IncomingCall]:
        """sipp calls with ``scenario`` (its SDP naming our RTP sink); the app's incoming call."""
        sipp = await run_sipp(scenario, self.sip_port, self.workdir, keys={"rtp_sink": str(self.sink.port)})
        self.runs.append(sipp)
        return sipp, await self.app.next_call()


@contextlib.asynccontextmanager
async def open_phone(workdir: Path, responder: Responder | None = None) -> AsyncIterator[Phone]:
    """A server with a SIP front and a webhook to a fresh app; ``workdir/speech.pcmu`` holds what the
    PCMU scenarios' caller says."""
    app = PhoneApp(server_url="")
    await app.start()
    server = RealtimeServer(sip_port=0, webhook_url=app.url, webhook_secret=app.secret, responder=responder)
    await server.start()
    app.server_url = server.url
    assert app.client is not None
    app.client.base_url = server.url + "/v1"
    sink = RtpSink()
    await sink.start()
    (workdir / "speech.pcmu").write_bytes(g711_speech("pcmu"))
    phone = Phone(server, app, sink, workdir)
    try:
        yield phone
    finally:
        for run in phone.runs:  # a test that failed half-way leaves its caller on the line
            if run.process.returncode is None:
                run.process.kill()
                await run.process.wait()
        sink.close()
        await server.close()
        await app.close()


class Caller:
    """A minimal UAC on 127.0.0.1: sends requests, collects what comes back."""

    def __init__(self, server_port: int, host: str = "127.0.0.1", server_host: str | None = None) -> None:
        """A caller on ``host`` calling the server at ``server_host`` (default: ``host``)."""
        self.host = host
        self.server = (server_host or host, server_port)
        self.inbox: asyncio.Queue[SipRequest | SipResponse] = asyncio.Queue()
        self.call_id = secrets.token_hex(8) + "@127.0.0.1"
        self.tag = secrets.token_hex(4)
        self.cseq = 1
        self.to_tag = ""
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        inbox = self.inbox

        class _Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                inbox.put_nowait(_read_reply(data))

        self.transport, _ = await loop.create_datagram_endpoint(_Proto, local_addr=(self.host, 0))
        self.port = int(self.transport.get_extra_info("sockname")[1])

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.server)

    def request(self, method: str, body: bytes = b"", cseq: int | None = None) -> SipRequest:
        to = "<sip:agent@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        headers = [
            ("Via", f"SIP/2.0/UDP {self.hostport};branch=z9hG4bK{secrets.token_hex(4)};rport"),
            ("From", f"<sip:caller@{self.hostport}>;tag={self.tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq or self.cseq} {method}"),
            ("Contact", f"<sip:caller@{self.hostport}>"),
            ("Max-Forwards", "70"),
        ]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return SipRequest(headers=headers, body=body, method=method, uri="sip:agent@127.0.0.1")

    def invite(self, media_port: int, pts: str = "0 101") -> SipRequest:
        ip = "IP6" if ":" in self.host else "IP4"
        sdp = (
            f"v=0\r\no=- 1 1 IN {ip} {self.host}\r\ns=-\r\nc=IN {ip} {self.host}\r\nt=0 0\r\n"
            f"m=audio {media_port} RTP/AVP {pts}\r\na=rtpmap:101 telephone-event/8000\r\n"
        ).encode()
        req = self.request("INVITE", sdp)
        self.send_raw(req.to_bytes())
        return req

    async def expect(self, want: int | str, within: float = 5.0) -> SipRequest | SipResponse:
        """The next message that is response ``want`` or request ``want``; provisional ones skipped."""
        async with asyncio.timeout(within):
            while True:
                msg = await self.inbox.get()
                if isinstance(msg, SipResponse) and msg.status == want:
                    if msg.cseq[1] == "INVITE":
                        tag = (msg.get("To") or "").partition(";tag=")[2]
                        self.to_tag = tag or self.to_tag
                    return msg
                if isinstance(msg, SipRequest) and msg.method == want:
                    return msg

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _read_reply(data: bytes) -> SipRequest | SipResponse:
    """What the caller got. A reply to a malformed request echoes the bad header (a 400 copies the
    request's CSeq and Call-ID, RFC 3261 8.2.6.2), so the caller may not parse it whole: then it keeps
    the status line, and a CSeq that says so."""
    try:
        return parse_message(data)
    except SipParseError:
        start = data.split(b"\r\n", 1)[0].decode(errors="replace").split(" ", 2)
        if start[0] != "SIP/2.0" or len(start) < 2 or not start[1].isascii() or not start[1].isdigit():
            raise
        return SipResponse(headers=[("CSeq", "0 UNREADABLE")], status=int(start[1]), reason=start[-1])


@contextlib.asynccontextmanager
async def sip_rig(**server_options: Any) -> AsyncIterator[tuple[RealtimeServer, PhoneApp]]:
    """An embedded server with its SIP front on 127.0.0.1, and the app that gets its webhooks."""
    app = PhoneApp(server_url="")
    await app.start()
    server = RealtimeServer(sip_port=0, webhook_url=app.url, webhook_secret=app.secret, **server_options)
    await server.start()
    assert app.client is not None
    app.client.base_url = server.url + "/v1"
    try:
        yield server, app
    finally:
        await server.close()
        await app.close()


async def until(predicate: Callable[[], bool], within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def answered_call(
    server: RealtimeServer, app: PhoneApp, media_port: int
) -> tuple[Caller, str, tuple[str, int]]:
    """A caller whose SDP names ``media_port``, answered by the app: (caller, call id, our RTP address)."""
    caller = Caller(server.sip.port)
    await caller.start()
    caller.invite(media_port)
    call = await app.next_call()
    assert app.client is not None
    await app.client.accept(call.call_id, build_initial_config(turn_detection=None))
    ok = await caller.expect(200)
    caller.send_raw(caller.request("ACK", cseq=1).to_bytes())
    return caller, call.call_id, ("127.0.0.1", parse_offer(ok.body).port)


def rss_mb() -> float:
    """This process's resident memory, in MB (the embedded server runs in it)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class LoopLag:
    """A ticker on the running loop: ``worst`` is the longest it was late (a blocked loop), in s."""

    period: float = 0.005
    worst: float = 0.0
    _task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, loop.time() - start - self.period)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
