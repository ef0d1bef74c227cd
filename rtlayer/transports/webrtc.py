"""``WebRTCTransport``: the Realtime protocol over a WebRTC call, on aiortc.

```python
transport = WebRTCTransport()                        # no URL, no key: the embedded server, in-process
transport.on("audio", lambda e: play(e.data))        # the answer, PCM16 24 kHz (or output_format)
await transport.connect(url=server.url, initial_session_config={"instructions": "..."})
await transport.send_audio(pcm16_24k)                # any rate: paced out as 20 ms 48 kHz frames
transport.interrupt()                                # response.cancel + output_audio_buffer.clear
await transport.close()
```

The same contract as the WebSocket transport (``rtlayer.transport.RealtimeTransportLayer``) and the
same ``ClientSession`` underneath; only the medium differs:

- events travel as JSON text on the ``oai-events`` data channel;
- the microphone is an audio track: ``send_audio`` PCM (any rate) is resampled and framed by
  ``rtlayer_native`` onto a track paced in real time, or the app hands over its own aiortc track;
- the answer arrives on the remote track (Opus, 48 kHz) and is downmixed and resampled to the app's
  format, then emitted as ``audio`` events between ``output_audio_buffer.started`` and ``.stopped``
  (the JS SDK emits none on WebRTC);
- interrupting sends ``response.cancel`` and ``output_audio_buffer.clear``: the server knows what was
  played, so no truncate (unless a ``playback_tracker`` says the app plays behind the stream: see the class).

Where to connect is decided as on every transport (``ClientShell``): no URL and no key -> the embedded
server, in-process; a key and no URL -> the hosted service; any URL form of the server works (``http(s)``,
``ws(s)``, bare ``host:port``, with or without ``/v1``): the ``/v1/realtime/calls`` endpoint is derived.

``connect`` resolves once the session is confirmed on the data channel (``session.created``, then
``session.updated`` when an initial config was sent), fails with the server's own message when the
call is refused (``HandshakeError``), and with ``ConnectTimeout`` when ICE or the data channel do not
come up in time. Loopback ICE candidates are used automatically when the server is on this machine
(``allow_loopback=None``); ``True`` also offers 127.0.0.1 to a remote server, ``False`` never.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any, Unpack

import rtlayer_native
from rtlayer._extras import missing_extra

try:
    from aiortc import RTCIceServer
    from aiortc.mediastreams import MediaStreamTrack
    from av import AudioFrame
except ModuleNotFoundError as exc:  # pip install rtlayer has no aiortc: name the extra
    raise missing_extra(exc, "webrtc", "WebRTCTransport") from None

from rtlayer._rtc_audio import FRAME_MS, frame_pcm16
from rtlayer.audio import PCM16_24K, AudioConverter, AudioFormat
from rtlayer.client.session import ClientSession
from rtlayer.exceptions import (
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    InvalidAudioError,
    UnsupportedOperation,
)
from rtlayer.protocol import codec
from rtlayer.transport import AudioEvent, AudioInterruptedEvent, ErrorEvent, TransportStatus
from rtlayer.transports._connect import calls_url
from rtlayer.transports._shell import ClientShell, ShellOptions
from rtlayer.transports._webrtc_output import OutputGate
from rtlayer.transports._webrtc_peer import SignallingForm, WebRTCPeer

__all__ = ["WebRTCTransport"]

_SILENT_PEAK = 4 / 32768
"""A decoded frame whose peak is below this is the server's idle silence (Opus leaves a few LSB)."""
_MAX_PENDING_EVENTS = 1000


class WebRTCTransport(ClientShell):
    """A Realtime session over WebRTC (see the module docstring).

    Options beyond the WebSocket transport's: ``audio_track`` (the app's own aiortc audio track
    instead of ``send_audio``), ``allow_loopback`` (ICE candidates on 127.0.0.1; None: only when
    the server is on this machine), ``ice_servers`` (STUN/TURN; none by default),
    ``signalling`` (``"sdp"`` like the Agents JS SDK, ``"multipart"`` like openai-python),
    ``disconnected_grace`` (seconds a ``disconnected`` connection may take to come back before
    the transport reports an error and closes), ``max_input_ms`` (microphone audio queued ahead of
    real time; the oldest is dropped past it and counted in ``peer.input_queue.dropped_frames``).
    ``audio`` events carry 20 ms frames in ``output_format`` (``output_frame_ms``, the WebSocket transport's
    option, may only say so).

    With a ``playback_tracker``, the app plays behind what the server streamed (its own buffer, or a phone
    provider's: ``MediaStreamTransport``), so an interruption also sends ``conversation.item.truncate`` at
    what the tracker says was heard; the server alone cut the item at what it had sent.
    """

    def __init__(
        self,
        *,
        input_format: AudioFormat = PCM16_24K,
        output_format: AudioFormat = PCM16_24K,
        output_frame_ms: int | None = None,
        audio_track: MediaStreamTrack | None = None,
        allow_loopback: bool | None = None,
        ice_servers: list[RTCIceServer] | None = None,
        signalling: SignallingForm = "sdp",
        disconnected_grace: float = 5.0,
        max_input_ms: int = 60_000,
        **options: Unpack[ShellOptions],
    ) -> None:
        if output_frame_ms not in (None, FRAME_MS):
            raise ValueError(
                f"a WebRTC transport's audio events carry {FRAME_MS} ms frames, not {output_frame_ms}"
            )
        super().__init__(**options)
        self.input_format = input_format
        self.output_format = output_format
        self.audio_track = audio_track
        self.allow_loopback = allow_loopback
        self.ice_servers = ice_servers
        self.signalling: SignallingForm = signalling
        self.disconnected_grace = disconnected_grace
        self.max_input_ms = max_input_ms
        self.peer: WebRTCPeer | None = None
        self.call_id: str | None = None
        self.session: ClientSession | None = None
        self.gate = OutputGate(FRAME_MS)
        self._muted = False
        self._pending: list[str] = []
        self._confirmed: asyncio.Future[None] | None = None
        self._wanted_update = False
        self._in_conv: AudioConverter | None = None
        self._grace: asyncio.TimerHandle | None = None
        self.first_audio_at: float | None = None
        """``time.perf_counter()`` of the first answer frame handed to the app (for benchmarks)."""

    # -- status -----------------------------------------------------------------------------------

    @property
    def muted(self) -> bool | None:
        """Whether our microphone track sends silence (None with the app's own track)."""
        return None if self.audio_track is not None else self._muted

    # -- connecting -------------------------------------------------------------------------------

    def _check_connect(self, call_id: str | None, config: Mapping[str, Any]) -> None:
        if call_id is not None:
            raise UnsupportedOperation(
                "a WebRTC transport opens its own call; attach to an existing call with a WebSocket "
                "transport and call_id (the sideband socket)"
            )

    def _endpoint(self, base: str, call_id: str | None) -> str:
        return calls_url(base)

    async def _open_session(
        self, endpoint: str, key: str | None, call_id: str | None, config: Mapping[str, Any]
    ) -> None:
        loop = asyncio.get_running_loop()
        session = ClientSession(
            input_format=self.input_format,
            output_format=self.output_format,
            tracker=self.tracker,
            emit=self.emit,
            send=self._send_dict,
        )
        self.session = session
        self.gate = OutputGate(FRAME_MS)
        self._confirmed = loop.create_future()
        self._wanted_update = False
        self._pending.clear()
        self._in_conv = None
        if self.input_format.codec != "pcm16":
            self._in_conv = AudioConverter(self.input_format, AudioFormat("pcm16", self.input_format.rate))
        peer = WebRTCPeer(
            output_format=self.output_format,
            input_rate=self.input_format.rate,
            on_message=self._on_message,
            on_audio=self._on_audio,
            on_state=self._on_peer_state,
            input_track=self.audio_track,
            allow_loopback=self.allow_loopback,
            ice_servers=self.ice_servers,
            max_input_ms=self.max_input_ms,
        )
        self.peer = peer
        wanted: dict[str, Any] | None = None
        if config:
            wanted = session.session_update(config, None)["session"]
        headers = dict(self.headers or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            async with asyncio.timeout(self.connect_timeout):
                self.call_id = await peer.open(
                    endpoint, headers, session=wanted, model=self.model, form=self.signalling
                )
                await peer.channel_open.wait()
                if wanted is not None and self.signalling == "sdp":
                    # The plain-SDP form carries no session: configure it like the JS SDK does.
                    self._wanted_update = True
                    session.update_session_config(wanted)
                self._flush_pending()
                await self._confirmed
        except TimeoutError:
            raise ConnectTimeout(
                f"WebRTC connection to {endpoint} not established within {self.connect_timeout:g} s "
                f"({peer.describe()})"
            ) from None
        self._set_status(TransportStatus.CONNECTED)

    # -- events from the server -------------------------------------------------------------------

    def _on_message(self, text: str) -> None:
        session = self.session
        if session is None:
            return
        try:
            event = codec.loads(text)
        except ValueError as exc:
            self.emit("error", ErrorEvent(f"undecodable data channel message: {exc}", "invalid_json"))
            return
        if not isinstance(event, dict):
            self.emit("error", ErrorEvent("data channel message is not a JSON object", "invalid_event"))
            return
        kind = event.get("type")
        if kind in ("output_audio_buffer.cleared",) and self.gate.playing:
            self._emit_interrupted(self.gate.interrupt())
        self.gate.server_event(event)
        session.receive_event(event, time.monotonic())
        confirmed = self._confirmed
        if confirmed is not None and not confirmed.done():
            if kind == ("session.updated" if self._wanted_update else "session.created"):
                confirmed.set_result(None)
            elif kind == "error" and self._wanted_update:
                message = str((event.get("error") or {}).get("message", "session.update refused"))
                confirmed.set_exception(ConnectError(f"the server refused the session config: {message}"))

    def _on_audio(self, pcm: bytes, frame: AudioFrame) -> None:
        silent = rtlayer_native.peak(frame_pcm16(frame)) < _SILENT_PEAK
        for gated in self.gate.frame(pcm, silent):
            if self.first_audio_at is None:
                self.first_audio_at = time.perf_counter()
            self.emit("audio", AudioEvent(gated.data, gated.response_id, gated.item_id, 0))

    def _on_peer_state(self, state: str) -> None:
        # aiortc 1.x reports no "disconnected": a lost path ends once aioice's consent checks have
        # failed for about 30 s, which the peer reports as "failed" (aiortc itself says "closed"); the
        # grace period is there for peer connections that do report "disconnected", like browsers'.
        if state == "connected":
            if self._grace is not None:
                self._grace.cancel()
                self._grace = None
        elif state == "disconnected":
            if self._grace is None and self._status == TransportStatus.CONNECTED:
                loop = asyncio.get_running_loop()
                self._grace = loop.call_later(self.disconnected_grace, self._grace_expired)
        elif state == "failed":
            self.emit("error", ErrorEvent("the WebRTC connection failed (ICE or DTLS)", "connection_failed"))
            self._spawn(self._close_from_peer("connection failed"))
        elif state == "closed" and self._status in (TransportStatus.CONNECTING, TransportStatus.CONNECTED):
            self._spawn(self._close_from_peer("the call ended"))

    def _grace_expired(self) -> None:
        self._grace = None
        self.emit(
            "error",
            ErrorEvent(
                f"the WebRTC connection stayed disconnected for {self.disconnected_grace:g} s", "disconnected"
            ),
        )
        self._spawn(self._close_from_peer("disconnected"))

    # -- app side ---------------------------------------------------------------------------------

    def _send_dict(self, event: dict[str, Any]) -> None:
        text = codec.dumps(event)
        peer = self.peer
        if peer is not None and not self._pending and peer.send(text):
            return
        if self._status in (TransportStatus.CONNECTING, TransportStatus.CONNECTED) and peer is not None:
            if len(self._pending) >= _MAX_PENDING_EVENTS:
                self.emit(
                    "error", ErrorEvent("too many events queued before the data channel opened", "queue_full")
                )
                return
            self._pending.append(text)
            self._flush_pending()
            return
        self.emit("error", ErrorEvent(f"not connected: {event.get('type')} not sent", "not_connected"))

    def _flush_pending(self) -> None:
        peer = self.peer
        while self._pending and peer is not None and peer.send(self._pending[0]):
            self._pending.pop(0)

    def _require_session(self) -> ClientSession:
        if self.session is None or self._status not in (
            TransportStatus.CONNECTING,
            TransportStatus.CONNECTED,
        ):
            raise ConnectionClosedError("the transport is not connected")
        return self.session

    async def send_audio(self, data: bytes | bytearray | memoryview, *, commit: bool = False) -> None:
        """Queue microphone audio (``input_format``, any rate) on the paced track.

        ``commit=True`` sends ``input_audio_buffer.commit`` once the queued audio has gone out
        (manual turns; with server VAD the server commits by itself).
        """
        self._require_session()
        peer = self.peer
        assert peer is not None
        if self.audio_track is not None:
            raise UnsupportedOperation(
                "this transport sends the app's own audio track; send_audio is not used"
            )
        if self.input_format.codec == "pcm16" and len(data) % 2:
            raise InvalidAudioError(f"PCM16 data must have an even number of bytes, got {len(data)}")
        if not self._muted and len(data):
            pcm = self._in_conv.convert(data) if self._in_conv is not None else data
            peer.input_queue.push(pcm)
        if commit:
            self._spawn(self._commit_after(peer.input_queue.buffered_ms))
        await asyncio.sleep(0)

    async def _commit_after(self, ms: int) -> None:
        # The audio is still queued on the paced track: commit once it has gone out.
        await asyncio.sleep(ms / 1000 + 2 * FRAME_MS / 1000)
        if self._status == TransportStatus.CONNECTED:
            self._send_dict({"type": "input_audio_buffer.commit"})

    def mute(self, muted: bool) -> None:
        """Mute the microphone: our track sends silence and ``send_audio`` audio is dropped."""
        self._muted = bool(muted)
        if self.session is not None:
            self.session.mute(self._muted)
        if self.peer is not None:
            self.peer.set_muted(self._muted)

    def interrupt(self, cancel_ongoing_response: bool = True) -> None:
        """Stop the answer: ``response.cancel`` (if one runs) and ``output_audio_buffer.clear``."""
        session = self._require_session()
        if cancel_ongoing_response and session.active_response_id is not None:
            session.send_event({"type": "response.cancel"})
        self._send_dict({"type": "output_audio_buffer.clear"})
        self._emit_interrupted(self.gate.interrupt())

    def _emit_interrupted(self, response_id: str | None) -> None:
        if response_id is None:
            return
        item_id = self.gate.item_for(response_id)
        heard = self.gate.delivered_ms(item_id)
        if self.tracker is not None and item_id:
            heard = min(heard, self.tracker.played_ms(item_id, 0))
            self.tracker.on_interrupted()
            self._send_dict(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": int(heard),
                }
            )
        self.emit("audio_interrupted", AudioInterruptedEvent(item_id or None, 0, int(heard), response_id))

    # -- closing --------------------------------------------------------------------------------

    async def _close_from_peer(self, reason: str) -> None:
        await self._shutdown(reason)

    def _has_open_medium(self) -> bool:
        return self.peer is not None

    async def _release(self, reason: str | None) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        peer, self.peer = self.peer, None
        try:
            if peer is not None:
                await peer.close()
        finally:
            if self.session is not None:
                self.session.connection_lost()
            confirmed = self._confirmed
            if confirmed is not None and not confirmed.done():
                confirmed.set_exception(ConnectError(f"the connection ended while connecting: {reason}"))
            with contextlib.suppress(BaseException):
                if confirmed is not None and confirmed.done():
                    confirmed.exception()  # retrieved: no "never retrieved" warning
            self._pending.clear()
