"""Every transport behaves the same where the contract says so: one test, parametrised over all of them.

WebSocket, fetch-upgrade and WebRTC open their own session; SIP attaches to a call by ``call_id``, so it
takes part where that is meaningful (closing, URL forms that fail before connecting, refusals). The points:
where ``connect()`` goes (no URL and no key: the embedded server; a key and no URL: the hosted service),
``url`` and ``embedded_server`` afterwards, the error of a second ``connect()``, every URL form, failures
as rtlayer's own exceptions (a name lookup that fails names the host; an HTML refusal is quoted short),
and ``close()`` (idempotent, always ``disconnected``, no task left).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from rtlayer.exceptions import ConnectError, HandshakeError, InvalidURL, LocalProtocolError, RtlayerError
from rtlayer.server.realtime_server import RealtimeServer
from rtlayer.transport import TransportStatus
from rtlayer.transports import BaseRealtimeTransport, WebSocketTransport
from rtlayer.transports._shell import ClientShell
from rtlayer.transports.fetch_upgrade import FetchUpgradeTransport
from rtlayer.transports.sip import SIPTransport
from rtlayer.transports.webrtc import WebRTCTransport

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Kind:
    """One transport, and what differs in using it: how it is made, its endpoint, whether it needs a call."""

    name: str
    make: Callable[..., ClientShell]
    endpoint: Callable[[str], str]  # from the server's base URL (http://127.0.0.1:PORT)
    call_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def opens_a_session(self) -> bool:
        return self.call_id is None

    async def connect(self, t: ClientShell, **kwargs: Any) -> None:
        await t.connect(call_id=self.call_id, **kwargs)


def _ws_endpoint(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"


WEBSOCKET = Kind("websocket", WebSocketTransport, _ws_endpoint)
FETCH_UPGRADE = Kind("fetch-upgrade", lambda **o: FetchUpgradeTransport(trust_env=False, **o), _ws_endpoint)
WEBRTC = Kind("webrtc", WebRTCTransport, lambda base: base + "/v1/realtime/calls")
SIP = Kind(
    "sip", SIPTransport, lambda base: base.replace("http://", "ws://") + "/v1/realtime?call_id=rtc_x", "rtc_x"
)

ALL = pytest.mark.parametrize("kind", [WEBSOCKET, FETCH_UPGRADE, WEBRTC, SIP], ids=lambda k: k.name)
SESSIONS = pytest.mark.parametrize("kind", [WEBSOCKET, FETCH_UPGRADE, WEBRTC], ids=lambda k: k.name)


async def _tasks_left(within: float = 2.0) -> list[asyncio.Task[Any]]:
    """Tasks still running once the in-process server has had ``within`` seconds to end its side too."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if not left or loop.time() > deadline:
            return left
        await asyncio.sleep(0.02)


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@SESSIONS
async def test_no_url_and_no_key_connects_to_the_embedded_server(
    kind: Kind, no_env_key: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "rtlayer.transports")
    t = kind.make()
    assert t.url is None and t.embedded_server is None
    await kind.connect(t)
    server = t.embedded_server
    assert server is not None
    assert t.url == kind.endpoint(server.url)
    assert t.status is TransportStatus.CONNECTED
    assert "the embedded server: no URL and no key given" in caplog.text
    await t.close()
    assert t.embedded_server is None and t.status is TransportStatus.DISCONNECTED


@SESSIONS
async def test_a_key_and_no_url_goes_to_the_hosted_service(
    kind: Kind, no_env_key: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The hosted service is played by a local server that requires the key (``hosted_url`` points there)."""
    caplog.set_level(logging.INFO, "rtlayer.transports")
    async with RealtimeServer(api_key="sk-hosted") as hosted:
        monkeypatch.setattr(ClientShell, "hosted_url", hosted.url + "/v1")
        t = kind.make(api_key="sk-hosted")
        await kind.connect(t)
        assert t.embedded_server is None
        assert t.url == kind.endpoint(hosted.url)
        assert "the hosted service: a key and no URL given" in caplog.text
        assert "sk-hosted" not in caplog.text
        await t.close()

        monkeypatch.setenv("OPENAI_API_KEY", "sk-hosted")  # the key from the environment: the same rule
        t = kind.make()
        await kind.connect(t)
        assert t.embedded_server is None and t.url == kind.endpoint(hosted.url)
        await t.close()


@pytest.fixture
async def server() -> AsyncIterator[RealtimeServer]:
    async with RealtimeServer() as s:
        yield s


@SESSIONS
async def test_every_url_form_reaches_the_same_endpoint(kind: Kind, server: RealtimeServer) -> None:
    host_port = server.url.removeprefix("http://")
    forms = [
        server.url,
        server.url + "/v1",
        server.url + "/v1/realtime",
        server.url.replace("http://", "ws://") + "/v1/realtime",
        host_port,
        host_port + "/v1",
    ]
    for form in forms:
        t = kind.make(url=form)
        await kind.connect(t)
        assert t.url == kind.endpoint(server.url), form
        assert t.embedded_server is None
        await t.close()


@SESSIONS
async def test_a_second_connect_raises_the_same_error_everywhere(kind: Kind, server: RealtimeServer) -> None:
    t = kind.make(url=server.url)
    await kind.connect(t)
    with pytest.raises(LocalProtocolError, match=r"connect\(\) while connected"):
        await kind.connect(t)
    assert t.status is TransportStatus.CONNECTED  # the first connection is untouched
    await t.close()


@ALL
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://127.0.0.1:1/v1", "unsupported scheme 'ftp'"),
        ("http://", "no host"),
        ("127.0.0.1:99999", "bad port"),
    ],
)
async def test_an_unreadable_url_is_an_invalid_url_error(kind: Kind, url: str, says: str) -> None:
    t = kind.make(url=url)
    with pytest.raises(InvalidURL, match=says) as caught:
        await kind.connect(t, api_key="k")
    assert isinstance(caught.value, RtlayerError)
    assert t.status is TransportStatus.DISCONNECTED and await _tasks_left() == []


@pytest.fixture
def resolver_without_the_host(monkeypatch: pytest.MonkeyPatch) -> str:
    """The system resolver, except that one name does not exist (the test never leaves the machine)."""
    host = "realtime.unresolvable.test"
    real = socket.getaddrinfo

    def getaddrinfo(name: Any, *args: Any, **kwargs: Any) -> Any:
        if name == host:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return host


@ALL
async def test_a_failed_name_lookup_names_the_host(kind: Kind, resolver_without_the_host: str) -> None:
    t = kind.make(url=f"https://{resolver_without_the_host}/v1")
    with pytest.raises(ConnectError, match=f"cannot resolve the host '{resolver_without_the_host}'"):
        await kind.connect(t, api_key="k")
    assert t.status is TransportStatus.DISCONNECTED


BIG_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>" + "<p>upstream down</p>" * 5000


async def _refused(kind: Kind, status: int, body: str, content_type: str) -> HandshakeError:
    """What ``connect`` raises against a server on 127.0.0.1 that answers every request with ``body``."""

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        t = kind.make(url=f"127.0.0.1:{runner.addresses[0][1]}")
        with pytest.raises(HandshakeError) as caught:
            await kind.connect(t, api_key="k")
        return caught.value
    finally:
        await runner.cleanup()


@ALL
async def test_an_html_refusal_is_quoted_short(kind: Kind) -> None:
    refused = await _refused(kind, 502, BIG_PAGE, "text/html")
    assert refused.status == 502
    assert "502 Bad Gateway upstream down" in str(refused)
    assert len(str(refused)) < 600 and "<p>" not in str(refused)


@ALL
@pytest.mark.parametrize(
    "body",
    [
        '{"error": {"message": ' + "[" * 5000 + "]" * 5000 + "}}",  # past any parser's recursion
        '{"error": {"message": 1e400}}',  # past a double
        '{"error": {"message": "' + "x" * 20_000 + '"}}',
    ],
    ids=["deep", "overflow", "long"],
)
async def test_a_hostile_json_refusal_is_quoted_short_never_raised_as_something_else(
    kind: Kind, body: str
) -> None:
    refused = await _refused(kind, 400, body, "application/json")
    assert refused.status == 400 and len(str(refused)) < 1000


@ALL
async def test_close_is_idempotent_and_always_ends_disconnected(kind: Kind, server: RealtimeServer) -> None:
    t = kind.make(url=server.url)
    await t.close()  # before connect: nothing to do
    if kind.opens_a_session:
        await kind.connect(t)
    else:
        with pytest.raises(ConnectError):  # no such call on this server: refused, and closed again
            await kind.connect(t)
    changes: list[TransportStatus] = []
    t.on("connection_change", lambda c: changes.append(c.status))
    await t.close()
    await t.close()
    assert t.status is TransportStatus.DISCONNECTED
    assert changes == (
        [TransportStatus.DISCONNECTING, TransportStatus.DISCONNECTED] if kind.opens_a_session else []
    )
    assert await _tasks_left() == []


async def test_sip_needs_a_call_id() -> None:
    with pytest.raises(LocalProtocolError, match="call_id"):
        await SIPTransport(url="127.0.0.1:1").connect()


def test_every_transport_uses_the_one_shell() -> None:
    for cls in (WebSocketTransport, FetchUpgradeTransport, WebRTCTransport, SIPTransport):
        assert issubclass(cls, ClientShell)
    assert issubclass(WebSocketTransport, BaseRealtimeTransport)
    for name in ("connect", "close", "__aenter__", "__aiter__", "_resolve_target", "_shutdown"):
        owners = {
            cls.__name__ for cls in WebRTCTransport.__mro__ + WebSocketTransport.__mro__ if name in vars(cls)
        }
        assert owners <= {"ClientShell", "WebRTCTransport"}, (name, owners)


@SESSIONS
async def test_the_implicit_embedded_server_answers_with_the_responder_given(
    kind: Kind, no_env_key: None
) -> None:
    from rtlayer.server.responders import ScriptedResponder

    t = kind.make(responder=ScriptedResponder({"rules": [], "default": {"say": "Scripted hello."}}))
    done: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    t.on("response.done", done.put_nowait)
    await kind.connect(t, initial_session_config={"output_modalities": ["text"]})
    assert t.embedded_server is not None and t.embedded_server.state.responder is t.responder
    t.send_message("Hi")
    response = (await asyncio.wait_for(done.get(), 10))["response"]
    texts = [c.get("text") for item in response["output"] for c in item.get("content", [])]
    assert "Scripted hello." in texts
    await t.close()


@pytest.mark.parametrize("form", ["host:port", "http://host:port", "host:port/v1", "bad"])
async def test_rtlayer_events_takes_every_url_form(form: str, server: RealtimeServer, capsys: Any) -> None:
    """``rtlayer events --url``: the forms the transports take, and one line (exit 2) for one they cannot."""
    import argparse
    import io

    from rtlayer.cli.events import events

    host_port = server.url.removeprefix("http://")
    url = {
        "host:port": host_port,
        "http://host:port": server.url,
        "host:port/v1": host_port + "/v1",
        "bad": "ftp://" + host_port,
    }[form]
    args = argparse.Namespace(url=url, api_key=None, model="gpt-realtime", quiet_ms=50, timeout=5.0)
    out = io.StringIO()
    status = await events(args, stdin=io.StringIO('{"type": "input_audio_buffer.clear"}\n'), stdout=out)
    if form == "bad":
        assert status == 2
        assert capsys.readouterr().err.strip() == (
            f"rtlayer events: unsupported scheme 'ftp' in the server URL 'ftp://{host_port}': "
            "give http(s)://, ws(s):// or host:port"
        )
    else:
        assert status == 0
        assert '"type":"session.created"' in out.getvalue()
        assert '"type":"input_audio_buffer.cleared"' in out.getvalue()
