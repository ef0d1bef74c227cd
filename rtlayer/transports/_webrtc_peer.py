"""The client's aiortc peer for a Realtime WebRTC call: signalling, tracks, data channel.

``WebRTCPeer`` knows nothing of the protocol's events: it opens the call (offer -> ``POST
/v1/realtime/calls`` -> answer), hands every data-channel text message and every received audio
frame (already downmixed and resampled to the app's format) to callbacks, and sends text. The
transport (``webrtc.py``) puts the Realtime session on top.

Signalling follows REALTIME_PROTOCOL.md section 5: ``application/sdp`` (the Agents JS SDK's way) or
``multipart/form-data`` with ``sdp`` and ``session`` parts (openai-python's way). A refusal raises
``HandshakeError`` carrying the server's own ``error.message``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from rtlayer._ice import host_policy, policy_for
from rtlayer._rtc_audio import FrameDownmixer, PacedAudioTrack, PcmFrameQueue
from rtlayer.audio import AudioFormat
from rtlayer.exceptions import ConnectError, HandshakeError
from rtlayer.transports._connect import connect_failure, server_message

__all__ = ["SignallingForm", "WebRTCPeer"]

logger = logging.getLogger("rtlayer.transports.webrtc")

SignallingForm = Literal["sdp", "multipart"]

MAX_ERROR_BODY = 64 * 1024
"""Bytes of a refusal's body read (the rest is not)."""


class WebRTCPeer:
    """One aiortc peer connection to a Realtime server, owned by a ``WebRTCTransport``.

    Callbacks (run on the loop, must not block):
    ``on_message(text)`` for each data-channel message, ``on_audio(pcm, frame)`` for each received
    frame converted to ``output_format``, ``on_state(state)`` for each connection state change.
    """

    def __init__(
        self,
        *,
        output_format: AudioFormat,
        input_rate: int,
        on_message: Callable[[str], None],
        on_audio: Callable[[bytes, AudioFrame], None],
        on_state: Callable[[str], None],
        input_track: MediaStreamTrack | None = None,
        allow_loopback: bool | None = None,
        ice_servers: list[RTCIceServer] | None = None,
        max_input_ms: int = 60_000,
    ) -> None:
        self.output_format = output_format
        self.input_queue = PcmFrameQueue(input_rate, max_ms=max_input_ms)
        self.track: MediaStreamTrack = input_track or PacedAudioTrack(self.input_queue.pull)
        self.own_track = input_track is None
        self.allow_loopback = allow_loopback
        self.ice_servers = ice_servers or []
        self._on_message = on_message
        self._on_audio = on_audio
        self._on_state = on_state
        self.pc: RTCPeerConnection | None = None
        self.channel: Any = None
        self.call_id: str | None = None
        self.channel_open = asyncio.Event()
        self.downmixer = FrameDownmixer(output_format)
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    @property
    def muted(self) -> bool:
        return isinstance(self.track, PacedAudioTrack) and self.track.muted

    def set_muted(self, muted: bool) -> None:
        """Mute: our track sends silence (an app's own track is left alone; the transport drops
        nothing it did not produce)."""
        if isinstance(self.track, PacedAudioTrack):
            self.track.muted = muted
            if muted:
                self.input_queue.clear()

    async def open(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        session: Mapping[str, Any] | None,
        model: str | None,
        form: SignallingForm = "sdp",
    ) -> str:
        """Offer, post, answer. Returns the call id (from ``Location``). Does not wait for ICE."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers))
        self.pc = pc
        pc.addTrack(self.track)
        channel = pc.createDataChannel("oai-events")
        self.channel = channel
        channel.on("open", self.channel_open.set)
        channel.on("message", self._message)
        pc.on("track", self._track)
        pc.on("connectionstatechange", lambda: self._on_state(self._connection_state(pc)))
        with host_policy(policy_for(urlsplit(url).hostname, self.allow_loopback)):
            await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        answer, location = await self._post_offer(url, headers, pc.localDescription.sdp, session, model, form)
        self.call_id = location.rstrip("/").rsplit("/", 1)[-1] or None
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except Exception as exc:
            raise ConnectError(f"the server's SDP answer could not be used: {exc}") from exc
        return self.call_id or ""

    async def _post_offer(
        self,
        url: str,
        headers: Mapping[str, str],
        sdp: str,
        session: Mapping[str, Any] | None,
        model: str | None,
        form: SignallingForm,
    ) -> tuple[str, str]:
        request_headers = {"Accept": "application/sdp", **headers}
        data: Any
        params = {}
        if form == "multipart":
            data = aiohttp.FormData()
            data.add_field("sdp", sdp, content_type="application/sdp")
            body = dict(session or {})
            if model and "model" not in body:
                body["model"] = model
            data.add_field("session", json.dumps(body), content_type="application/json")
        else:
            data = sdp.encode()
            request_headers["Content-Type"] = "application/sdp"
            if model:
                params["model"] = model
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(url, data=data, headers=request_headers, params=params) as response,
            ):
                if response.status not in (200, 201):
                    raw = await response.content.read(MAX_ERROR_BODY)
                    text = raw.decode("utf-8", "replace")
                    raise HandshakeError(
                        f"the server refused the call ({response.status}): "
                        f"{server_message(response.status, text)}",
                        status=response.status,
                        body=text,
                    )
                return await response.text(), response.headers.get("Location", "")
        except aiohttp.ClientError as exc:
            raise connect_failure(exc, url) from exc

    # -- data channel and media -------------------------------------------------------------------

    def send(self, text: str) -> bool:
        """Send one text message; False when the channel is not open (nothing sent)."""
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return False
        channel.send(text)
        return True

    def _message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            logger.warning("ignoring a %d-byte binary data channel message", len(message))
            return
        self._on_message(message)

    def _track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            task = asyncio.get_running_loop().create_task(
                self._read_audio(track), name="rtlayer-webrtc-audio"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, AudioFrame):
                self._on_audio(self.downmixer.process(frame), frame)

    def _connection_state(self, pc: RTCPeerConnection) -> str:
        """``pc.connectionState``, except that a lost path reads "failed", not "closed".

        When the remote peer vanishes (its process killed, the network gone), aioice stops getting
        answers to its consent checks (RFC 7675) and closes the ICE connection; aiortc then reports the
        peer connection "closed", exactly as after a hangup. Only its ICE transport's own state tells
        the two apart: "failed" for the lost path, "closed" for an orderly end.
        """
        state = pc.connectionState
        if state == "closed" and not self.closed:
            ice_states = {getattr(dtls.transport, "state", None) for dtls in _dtls_transports(pc)}
            if "failed" in ice_states:
                return "failed"
        return state

    def describe(self) -> str:
        """ICE / connection / data channel states, for timeout messages."""
        pc = self.pc
        if pc is None:
            return "no peer connection"
        channel = self.channel.readyState if self.channel is not None else "none"
        return f"ICE {pc.iceConnectionState}, connection {pc.connectionState}, data channel {channel}"

    async def close(self) -> None:
        """Stop our track, the receive task and the peer connection. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.own_track:
            self.track.stop()
        for task in list(self._tasks):
            task.cancel()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()


def _dtls_transports(pc: RTCPeerConnection) -> list[Any]:
    """The DTLS transports of ``pc`` (data channel and media; one when bundled), each over its ICE transport."""
    found: list[Any] = []
    if pc.sctp is not None:
        found.append(pc.sctp.transport)
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is not None and dtls not in found:
            found.append(dtls)
    return found
