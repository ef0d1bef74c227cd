"""A transport written by a third party against rtlayer's public contract.

``InMemoryTransport`` carries the protocol over no network at all: it is wired straight to a server session
(``ServerSession`` run by a ``SessionRunner`` with the echo responder) in the same process. It reuses the
pieces every rtlayer transport is made of: ``EventEmitter`` (``on``/``off``/``once``/``events()``),
``ClientSession`` (response sequencing, audio items, interruption and truncation, mute) and the typed events;
it only supplies the medium. Code written for ``RealtimeTransportLayer`` (``ask`` below) runs on it unchanged,
as it does on ``WebSocketTransport``.

    python examples/custom_transport.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from rtlayer.client.session import ClientSession
from rtlayer.exceptions import ConnectionClosedError
from rtlayer.protocol.codec import dumps, loads
from rtlayer.server.core.session import ServerSession
from rtlayer.server.responders import EchoResponder
from rtlayer.server.runner import SessionRunner
from rtlayer.transport import (
    ConnectionChangeEvent,
    EventEmitter,
    EventStream,
    FunctionCallEvent,
    RealtimeTransportLayer,
    TransportStatus,
    TurnDoneEvent,
)
from rtlayer.transports import WebSocketTransport


class InMemoryTransport(EventEmitter):
    """The whole contract, with a server session in the same process as the medium."""

    def __init__(self) -> None:
        super().__init__()
        self.session = ClientSession(emit=self.emit, send=self._send)
        self._runner: SessionRunner | None = None
        self._status = TransportStatus.DISCONNECTED
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def status(self) -> TransportStatus:
        return self._status

    @property
    def muted(self) -> bool | None:
        return self.session.muted

    def _set_status(self, status: TransportStatus) -> None:
        self._status = status
        self.emit("connection_change", ConnectionChangeEvent(status))

    async def connect(
        self,
        url: str | None = None,
        api_key: str | Callable[[], str | Awaitable[str]] | None = None,
        model: str | None = None,
        call_id: str | None = None,
        initial_session_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._set_status(TransportStatus.CONNECTING)
        # The server session's clock is wall time (session expiry is an epoch time, as the service reports).
        server_session = ServerSession(EchoResponder(), now=time.time())
        self._runner = SessionRunner(server_session, EchoResponder(), audio_pacing=0)
        # Server -> client: each serialized event is parsed and fed to the client state, on the next loop turn.
        self._runner.add_sink(self._from_server)
        self._runner.start()
        self._set_status(TransportStatus.CONNECTED)
        self._send(self.session.session_update(initial_session_config or {}, model or "gpt-realtime"))

    def _from_server(self, text: str) -> None:
        assert self._loop is not None
        self._loop.call_soon(self._deliver, text)  # sinks must not block: deliver on the next loop turn

    def _deliver(self, text: str) -> None:
        if self._loop is not None:
            self.session.receive_event(loads(text), self._loop.time())

    def _send(self, event: dict[str, Any]) -> None:
        if self._runner is None:
            raise ConnectionClosedError("not connected")
        self._runner.receive_text(dumps(event))

    def events(self, names: Iterable[str] = ("*",), maxsize: int = 10_000) -> EventStream:
        return super().events(names, maxsize)

    def send_event(self, event: Mapping[str, Any]) -> None:
        self.session.send_event(event)

    def send_message(
        self,
        message: str | Mapping[str, Any],
        other_event_data: Mapping[str, Any] | None = None,
        *,
        trigger_response: bool = True,
    ) -> None:
        self.session.send_message(message, other_event_data, trigger_response=trigger_response)

    def add_image(self, image: str, *, trigger_response: bool = True) -> None:
        self.session.add_image(image, trigger_response=trigger_response)

    async def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None:
        assert self._runner is not None
        self._runner.receive_text(self.session.encode_audio(data))
        if commit:
            self.send_event({"type": "input_audio_buffer.commit"})

    def update_session_config(self, config: Mapping[str, Any]) -> None:
        self._send(self.session.session_update(config))

    def send_function_call_output(
        self, call: FunctionCallEvent, output: str, start_response: bool = True
    ) -> None:
        self.session.send_function_call_output(call, output, start_response)

    def request_response(self, response: Mapping[str, Any] | None = None) -> None:
        self.session.request_response(response)

    def interrupt(self, cancel_ongoing_response: bool = True) -> None:
        assert self._loop is not None
        self.session.interrupt(self._loop.time(), cancel_ongoing_response)

    def mute(self, muted: bool) -> None:
        self.session.mute(muted)

    def reset_history(self, old_history: list[dict[str, Any]], new_history: list[dict[str, Any]]) -> None:
        self.session.reset_history(old_history, new_history)

    async def close(self) -> None:
        if self._runner is None:
            return
        self._set_status(TransportStatus.DISCONNECTING)
        self._runner.close()
        self._runner = None
        self.session.connection_lost()
        self._set_status(TransportStatus.DISCONNECTED)
        self.close_listeners()


async def ask(transport: RealtimeTransportLayer, question: str) -> str:
    """Code written against the contract: works on any transport."""
    done: asyncio.Future[TurnDoneEvent] = asyncio.get_running_loop().create_future()

    def on_turn_done(turn: TurnDoneEvent) -> None:
        if not done.done():
            done.set_result(turn)

    transport.on("turn_done", on_turn_done)
    text: list[str] = []
    transport.on("output_text_delta", lambda delta: text.append(delta.delta))
    await transport.connect(initial_session_config={"output_modalities": ["text"]})
    transport.send_message(question)
    await asyncio.wait_for(done, 10)
    await transport.close()
    return "".join(text)


async def main() -> None:
    in_memory = InMemoryTransport()
    assert isinstance(in_memory, RealtimeTransportLayer)  # the contract is a runtime-checkable Protocol
    print("in memory :", await ask(in_memory, "Hello through memory"))
    print("websocket :", await ask(WebSocketTransport(), "Hello through a socket"))


if __name__ == "__main__":
    asyncio.run(main())
