"""``ServerSession``: one Realtime session of the embedded server, sans-I/O.

Fed client frames, media audio, DTMF and time; it answers with server events (``events_to_send``) and asks
its shell to run responses (``response_jobs``) and transcriptions (``transcription_jobs``), whose results come
back through ``response_part`` / ``response_finished`` / ``transcription_result``. No sockets, no awaits, no
clock of its own: ``now`` (Unix seconds) is an argument, and ``get_timer`` / ``handle_timer`` drive the idle
timeout and the session's expiry. VAD time is the audio itself (samples received).

Input audio arrives in the session's input format (``input_audio_buffer.append``) or, for WebRTC and SIP, in
the media format (``receive_media_audio``); both are converted to PCM16 24 kHz by ``rtlayer_native`` and go into
one input buffer. With ``media`` set, output audio goes to a paced ``MediaOutput`` pulled frame by frame with
``pull_media_audio``, instead of ``response.output_audio.delta`` events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rtlayer.audio import PCM16_24K, AudioConverter, AudioFormat
from rtlayer.exceptions import InvalidAudioError, RequestRefused
from rtlayer.protocol import codec
from rtlayer.protocol.ids import new_event_id, new_id
from rtlayer.protocol.items import user_audio_message
from rtlayer.protocol.session_config import default_session, merge_session
from rtlayer.server.core import item_events
from rtlayer.server.core.client_events import check_client_event, without_nulls
from rtlayer.server.core.conversation import DEFAULT_MAX_BYTES as DEFAULT_MAX_CONVERSATION_BYTES
from rtlayer.server.core.conversation import Conversation
from rtlayer.server.core.idle import IdleTimer
from rtlayer.server.core.input_audio import MAX_BUFFER_BYTES, InputAudio, TurnStarted
from rtlayer.server.core.item_events import copy_item
from rtlayer.server.core.media_output import MediaOutput, clear_playback, pull_playback
from rtlayer.server.core.noise_reduction import noise_gate
from rtlayer.server.core.parts import ResponderInfo, ResponsePart
from rtlayer.server.core.parts import responder_info as info_of
from rtlayer.server.core.response import ResponseJob, ResponseState, rate_limits
from rtlayer.server.core.response_options import resolve_response_options
from rtlayer.server.core.transcription import TranscriptionJob, transcription_events

__all__ = ["DEFAULT_MAX_DURATION_S", "ResponseJob", "ServerSession", "TranscriptionJob"]

logger = logging.getLogger("rtlayer.server")

DEFAULT_MAX_DURATION_S = 3600.0
MIN_COMMIT_MS = 100.0
MAX_RESPONSES_IN_PROGRESS = 64
"""Responses (out-of-band ones included) one session may have running at once. Each holds a copy of its
context and a task: without a bound, one client asking for thousands at once could take the server's memory."""
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_APPEND = "input_audio_buffer.append"


class ServerSession:
    """One Realtime session; see the module docstring and ``docs/INTERNALS.md`` section 4."""

    def __init__(
        self,
        responder_info: ResponderInfo | object | None = None,
        now: float = 0.0,
        config: dict[str, Any] | None = None,
        media: AudioFormat | None = None,
        *,
        formats_fixed: bool = False,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
        max_conversation_bytes: int = DEFAULT_MAX_CONVERSATION_BYTES,
        max_input_buffer_bytes: int = MAX_BUFFER_BYTES,
    ) -> None:
        """``responder_info``: a ``ResponderInfo`` or the responder itself (the session never calls it).

        Raises ``RequestRefused`` when ``config`` (an initial session config, e.g. an ephemeral key's) is invalid.
        """
        if isinstance(responder_info, ResponderInfo):
            self.responder = responder_info
        else:
            self.responder = info_of(responder_info) if responder_info is not None else ResponderInfo()
        self.id = new_id("sess")
        self.media = media
        #: the audio formats are the medium's, not the client's (a SIP call: the caller's codec, fixed by the
        #: SDP answer); a ``session.update``'s formats are then dropped, as the accept body's are
        self.formats_fixed = formats_fixed
        #: ``session.update`` events whose formats were dropped (``formats_fixed``)
        self.formats_dropped = 0
        self.created_at = now
        self.expires_at = int(now + max_duration_s)
        initial = dict(config or {})
        self.config: dict[str, Any] = merge_session(
            default_session(str(initial.pop("model", "gpt-realtime"))), initial
        )
        self.conversation = Conversation(new_id("conv"), max_bytes=max_conversation_bytes)
        self.closed = False
        self._out: list[dict[str, Any]] = []
        self._jobs: list[ResponseJob] = []
        self._transcriptions: list[TranscriptionJob] = []
        self._responses: dict[str, ResponseState] = {}  # in progress, by id
        self._active: ResponseState | None = None  # the in-progress response of the default conversation
        self._last_response_id: str | None = None
        self._voice_locked = False
        self._requests_made = 0
        self._idle = IdleTimer()
        # input audio: one buffer of PCM16 24 kHz, positioned on the session's audio clock
        self.input_audio = InputAudio(self.turn_detection, max_input_buffer_bytes)
        self._media_dropped_bytes = 0
        self.dtmf_ignored = 0
        self._input_converter = AudioConverter(self.input_format, PCM16_24K)
        self._noise_gate = noise_gate(self.config)
        self._media_converter = AudioConverter(media, PCM16_24K) if media is not None else None
        self.media_output = MediaOutput(media) if media is not None else None
        self._arm_idle(now)
        self._emit({"type": "session.created", "session": self.session_object()})

    # -- views ----------------------------------------------------------------------------------

    @property
    def input_format(self) -> AudioFormat:
        return AudioFormat.from_session(self.config["audio"]["input"]["format"])

    @property
    def output_format(self) -> AudioFormat:
        return AudioFormat.from_session(self.config["audio"]["output"]["format"])

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = self.config["audio"]["input"]["turn_detection"]
        return td

    @property
    def input_buffer_ms(self) -> float:
        return self.input_audio.buffer_ms

    @property
    def input_dropped_bytes(self) -> int:
        """Input audio dropped: undecodable media frames, and a buffer past its bound."""
        return self.input_audio.dropped_bytes + self._media_dropped_bytes

    @property
    def active_response_id(self) -> str | None:
        return self._active.id if self._active is not None else None

    def session_object(self) -> dict[str, Any]:
        """The whole effective session, as ``session.created`` / ``session.updated`` carry it."""
        obj: dict[str, Any] = {"type": "realtime", "object": "realtime.session", "id": self.id}
        obj.update(self.config)
        obj["expires_at"] = self.expires_at
        return obj

    # -- output to the shell ----------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", new_event_id())
        self._out.append(event)

    def _error(
        self,
        code: str,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        self._refuse(RequestRefused(code, message, param, type=type_), event_id)

    def _refuse(self, refusal: RequestRefused, event_id: str | None = None) -> None:
        """Answer the client event ``event_id`` with the ``error`` event of ``refusal``; the session goes on."""
        self._emit(refusal.error_event(event_id))

    def events_to_send(self) -> list[dict[str, Any]]:
        """Server events produced since the last call, in order."""
        out, self._out = self._out, []
        return out

    def response_jobs(self) -> list[ResponseJob]:
        """Responses the shell must now run with the responder."""
        jobs, self._jobs = self._jobs, []
        return jobs

    def transcription_jobs(self) -> list[TranscriptionJob]:
        """User audio the shell should transcribe with ``responder.transcribe`` (when configured)."""
        jobs, self._transcriptions = self._transcriptions, []
        return jobs

    # -- input ----------------------------------------------------------------------------------

    def receive_text(self, text: str | bytes, now: float) -> None:
        """One client text frame; malformed JSON is answered with an ``error`` event."""
        try:
            event = codec.loads(text)
        except codec.TooDeep as exc:
            if self._check_open(now):
                self._error("invalid_value", f"Invalid {exc.what}: {exc}.", exc.param)
            return
        except ValueError as exc:
            if self._check_open(now):
                self._error("invalid_json", f"The message could not be parsed as JSON: {exc}", None)
            return
        self.receive_event(event, now)

    def receive_event(self, event: Any, now: float) -> None:
        """One parsed client event."""
        if not self._check_open(now):
            return
        if type(event) is dict and event.get("type") == _APPEND:
            # The hot path, fifty times a second per stream: an append holding exactly ``type``, ``audio``
            # (a string) and maybe ``event_id`` (a string) passes every check below unchanged (no null to
            # strip, no unknown field, the right types), so it skips them. Anything else takes the full path.
            audio, event_id = event.get("audio"), event.get("event_id")
            if (
                type(audio) is str
                and len(event) == (2 if event_id is None else 3)
                and (event_id is None or type(event_id) is str)
            ):
                self._on_input_audio_buffer_append(event, event_id, now)
                return
        event = without_nulls(event)  # an optional field sent as null is a field not given
        event_id = (
            event.get("event_id")
            if isinstance(event, dict) and isinstance(event.get("event_id"), str)
            else None
        )
        try:
            check_client_event(event)
        except RequestRefused as refusal:
            self._refuse(refusal, event_id)
            return
        handler = getattr(self, "_on_" + event["type"].replace(".", "_"))
        handler(event, event_id, now)

    def receive_media_audio(self, data: bytes, now: float) -> None:
        """WebRTC/SIP input audio, in the media format."""
        if not self._check_open(now) or self._media_converter is None:
            return
        try:
            pcm = self._media_converter.convert(data)
        except (InvalidAudioError, ValueError):
            self._media_dropped_bytes += len(data)
            return
        self._ingest(pcm, now)

    def receive_dtmf(self, digit: str, now: float) -> None:
        """A DTMF digit from the phone line (SIP); answered with ``input_audio_buffer.dtmf_event_received``."""
        if not self._check_open(now):
            return
        if not isinstance(digit, str) or digit.upper() not in DTMF_DIGITS or len(digit) != 1:
            self.dtmf_ignored += 1
            return
        self._out.append(
            {
                "type": "input_audio_buffer.dtmf_event_received",
                "event": digit.upper(),
                "received_at": int(now),
            }
        )

    # -- timers -----------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called (Unix seconds), or None."""
        if self.closed:
            return None
        when = float(self.expires_at)
        if self._idle.deadline is not None:
            when = min(when, self._idle.deadline)
        return when

    def handle_timer(self, now: float) -> None:
        """Fire what is due: session expiry, the idle timeout."""
        if not self._check_open(now):
            return
        if self._idle.due(now):
            self._idle_timeout(now)

    def _check_open(self, now: float) -> bool:
        if self.closed:
            return False
        if now >= self.expires_at:
            for state in list(self._responses.values()):
                self._finish(
                    state,
                    now,
                    "failed",
                    {
                        "type": "failed",
                        "error": {
                            "type": "invalid_request_error",
                            "code": "session_expired",
                            "message": "Session expired.",
                        },
                    },
                )
            self._error(
                "session_expired",
                "Your session hit the maximum duration of 60 minutes."
                if self.expires_at - self.created_at >= 3600
                else "Your session hit its maximum duration.",
            )
            self.closed = True
            return False
        return True

    def _arm_idle(self, now: float, delay_s: float = 0.0) -> None:
        """Start ``idle_timeout_ms`` once ``delay_s`` of answer audio has played (see ``rtlayer.server.core.idle``)."""
        vad = self.input_audio.vad
        self._idle.arm(
            self.turn_detection,
            now,
            playback_s=delay_s,
            input_ms=self.input_audio.audio_ms,
            speaking=vad is not None and vad.speaking,
        )

    def _idle_timeout(self, now: float) -> None:
        start, end = self._idle.segment(self.input_audio.start_ms, self.input_audio.audio_ms)
        item_id, pcm = self.input_audio.take()
        self._emit(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "item_id": item_id,
                "audio_start_ms": start,
                "audio_end_ms": end,
            }
        )
        self._commit(item_id, pcm, now)
        td = self.turn_detection or {}
        if td.get("create_response", True) and self._active is None:
            self._create_response({}, None, now)

    # -- the input buffer and VAD -----------------------------------------------------------------

    def _ingest(self, pcm: bytes, now: float) -> None:
        if self._noise_gate is not None:
            pcm = self._noise_gate.process(pcm)
        for turn in self.input_audio.feed(pcm):
            if isinstance(turn, TurnStarted):
                self._emit(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": turn.audio_start_ms,
                        "item_id": turn.item_id,
                    }
                )
                if (self.turn_detection or {}).get("interrupt_response", True):
                    self._barge_in(now)
                self._idle.stop()  # the user speaks: no idle prompt (the cancelled answer re-armed it)
            else:
                self._emit(
                    {
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": turn.audio_end_ms,
                        "item_id": turn.item_id,
                    }
                )
                self._commit(turn.item_id, turn.pcm16_24k, now)
                td = self.turn_detection or {}
                if td.get("create_response", True) and self._active is None:
                    self._create_response({}, None, now)

    def _commit(self, item_id: str, pcm: bytes, now: float) -> None:
        """Turn ``pcm`` into a user audio item: committed, item added and done (and maybe a transcription)."""
        item = user_audio_message(item_id)
        prev = self.conversation.add(item)
        self.conversation.keep_user_audio(item_id, pcm)
        self._emit({"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id})
        self._emit({"type": "conversation.item.added", "previous_item_id": prev, "item": copy_item(item)})
        self._emit({"type": "conversation.item.done", "previous_item_id": prev, "item": copy_item(item)})
        if self.config["audio"]["input"]["transcription"] is not None and self.responder.can_transcribe:
            self._transcriptions.append(TranscriptionJob(item_id, 0, pcm))

    def transcription_result(
        self, item_id: str, transcript: str | None, now: float, error: str | None = None
    ) -> None:
        """The responder's transcript of a ``TranscriptionJob`` (or why it failed)."""
        if self.closed:
            return
        for event in transcription_events(self.conversation, item_id, transcript, error):
            self._emit(event)

    # -- client events ------------------------------------------------------------------------------

    def _on_session_update(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        try:
            new = merge_session(self.config, event["session"])
        except RequestRefused as refusal:
            self._refuse(refusal, event_id)
            return
        old_out, new_out = self.config["audio"]["output"], new["audio"]["output"]
        if self._voice_locked and new_out.get("voice") != old_out.get("voice"):
            self._error(
                "invalid_value",
                "Cannot update a conversation's voice if assistant audio is present.",
                "session.audio.output.voice",
                event_id,
            )
            return
        old = self.config
        if self.formats_fixed:
            self._keep_formats(old, new)
        self.config = new
        if new["audio"]["input"]["format"] != old["audio"]["input"]["format"]:
            self._input_converter = AudioConverter(self.input_format, PCM16_24K)
        if new["audio"]["input"]["noise_reduction"] != old["audio"]["input"]["noise_reduction"]:
            self._noise_gate = noise_gate(new)
        if new["audio"]["input"]["turn_detection"] != old["audio"]["input"]["turn_detection"]:
            self.input_audio.configure(self.turn_detection)
            if self._active is None:
                self._arm_idle(now)
        self._emit({"type": "session.updated", "session": self.session_object()})

    def _keep_formats(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Puts the call's formats back into ``new`` (a valid update's merge), counting an update that tried
        to change them. The session goes on: the ``session.updated`` that follows shows the call's format."""
        changed = [
            side
            for side in ("input", "output")
            if new["audio"][side]["format"] != old["audio"][side]["format"]
        ]
        for side in changed:
            new["audio"][side]["format"] = old["audio"][side]["format"]
        if changed:
            self.formats_dropped += 1
            if self.formats_dropped == 1:  # one warning per session, however often the client repeats it
                logger.warning(
                    "session %s: ignoring audio.%s.format in session.update: this call's audio is %s",
                    self.id,
                    "/".join(changed),
                    old["audio"]["input"]["format"]["type"],
                )

    def _on_input_audio_buffer_append(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        try:
            data = codec.b64decode_audio(event["audio"])
        except ValueError:  # binascii.Error included
            self._error(
                "invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes.", "audio", event_id
            )
            return
        try:
            pcm = self._input_converter.convert(data)
        except (InvalidAudioError, ValueError) as exc:
            self._error("invalid_value", f"Invalid 'audio': {exc}.", "audio", event_id)
            return
        self._ingest(pcm, now)

    def _on_input_audio_buffer_commit(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        ms = self.input_buffer_ms
        if ms < MIN_COMMIT_MS:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. "
                f"Expected at least 100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                None,
                event_id,
            )
            return
        item_id, pcm = self.input_audio.take()
        self._idle.stop()
        self._commit(item_id, pcm, now)

    def _on_input_audio_buffer_clear(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self.input_audio.clear()
        self._emit({"type": "input_audio_buffer.cleared"})

    def _on_output_audio_buffer_clear(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        if self.media_output is None:
            self._error(
                "invalid_value",
                "output_audio_buffer.clear is only supported on WebRTC and SIP sessions; "
                "on a WebSocket the client owns playback (stop it and send conversation.item.truncate).",
                "type",
                event_id,
            )
            return
        self.clear_media_audio(now)

    def _answer(
        self, event_id: str | None, build: Callable[[], list[dict[str, Any]] | dict[str, Any]]
    ) -> bool:
        """Emit what ``build`` answers, or the ``error`` its ``RequestRefused`` describes (then False)."""
        try:
            answer = build()
        except RequestRefused as refusal:
            self._refuse(refusal, event_id)
            return False
        for event in answer if isinstance(answer, list) else [answer]:
            self._emit(event)
        return True

    def _on_conversation_item_create(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._answer(event_id, lambda: item_events.create_item(self.conversation, event, self.input_format))

    def _on_conversation_item_retrieve(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._answer(
            event_id,
            lambda: item_events.retrieve_item(self.conversation, event["item_id"], self.input_format),
        )

    def _on_conversation_item_delete(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._answer(event_id, lambda: item_events.delete_item(self.conversation, event["item_id"]))

    def _on_conversation_item_truncate(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        truncated = self._answer(
            event_id,
            lambda: item_events.truncate_item(
                self.conversation, event["item_id"], event["content_index"], event["audio_end_ms"]
            ),
        )
        if truncated and self._active is None and self._idle.deadline is not None:
            self._arm_idle(now)  # the client stopped playback now: the idle wait starts now

    def _on_response_create(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._create_response(event.get("response") or {}, event_id, now)

    def _on_response_cancel(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        wanted = event.get("response_id")
        state = (
            self._responses.get(wanted)
            if wanted
            else (self._active or next(reversed(self._responses.values()), None))
        )
        if state is None:
            self._error(
                "response_cancel_not_active", "Cancellation failed: no active response found.", None, event_id
            )
            return
        self._finish(state, now, "cancelled", {"type": "cancelled", "reason": "client_cancelled"})

    # -- responses ----------------------------------------------------------------------------------

    def _create_response(self, options: dict[str, Any], event_id: str | None, now: float) -> None:
        try:
            opts = resolve_response_options(options, self.config, self.conversation)
        except RequestRefused as refusal:
            self._refuse(refusal, event_id)
            return
        if opts.in_conversation and self._active is not None:
            self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response "
                f"in progress: {self._active.id}. Wait until the response is finished before creating a new one.",
                None,
                event_id,
            )
            return
        if len(self._responses) >= MAX_RESPONSES_IN_PROGRESS:
            self._error(
                "too_many_active_responses",
                f"This session already has {MAX_RESPONSES_IN_PROGRESS} responses in progress: wait for one "
                "to finish (response.done) or cancel one before creating another.",
                None,
                event_id,
            )
            return
        self._idle.stop()
        response_id = new_id("resp")
        text_in, audio_in = opts.input_tokens(self.conversation)
        state = ResponseState(
            id=response_id,
            emit=self._emit,
            conversation=self.conversation if opts.in_conversation else None,
            conversation_id=self.conversation.id if opts.in_conversation else None,
            output_modalities=opts.output_modalities,
            output_format=opts.output_format,
            voice=opts.voice,
            max_output_tokens=opts.max_output_tokens,
            metadata=opts.metadata,
            input_tokens=(text_in, audio_in),
            audio_sink=self._to_media if self.media_output is not None else None,
            wire_format=self.media,
        )
        speed = float(self.config["audio"]["output"].get("speed", 1.0))
        job = ResponseJob(response_id, opts.request(response_id, self.conversation, speed))
        state.job = job
        self._responses[response_id] = state
        if opts.in_conversation:
            self._active = state
        self._last_response_id = response_id
        self._requests_made += 1
        state.start(rate_limits(self._requests_made, text_in + audio_in))
        self._jobs.append(job)

    def response_part(self, response_id: str, part: ResponsePart, now: float) -> None:
        """One part of a running response, from the responder (ignored if the response already ended)."""
        state = self._responses.get(response_id)
        if state is None or self.closed:
            return
        state.add_part(part)
        if state.audio_bytes_out:
            self._voice_locked = True
        if state.over_token_limit():
            self._finish(state, now, "incomplete", {"type": "incomplete", "reason": "max_output_tokens"})

    def response_finished(self, response_id: str, now: float, error: str | None = None) -> None:
        """The responder is done with a response (``error``: it failed)."""
        state = self._responses.get(response_id)
        if state is None or self.closed:
            return
        if error is not None:
            self._finish(
                state,
                now,
                "failed",
                {
                    "type": "failed",
                    "error": {"type": "server_error", "code": "responder_error", "message": error},
                },
            )
        else:
            self._finish(state, now, "completed", None)

    def _finish(self, state: ResponseState, now: float, status: str, details: dict[str, Any] | None) -> None:
        state.finish(status, details)
        self._responses.pop(state.id, None)
        if self._active is state:
            self._active = None
        if state.audio_bytes_out:
            self._voice_locked = True
        if self.media_output is not None:
            self._arm_idle(now, self.media_output.queued_ms / 1000.0)
        else:
            self._arm_idle(now, state.audio_ms / 1000.0)

    def _barge_in(self, now: float) -> None:
        """The user started speaking: cancel the answer and, in media mode, stop its playback where it is."""
        if self._active is not None:
            self._finish(self._active, now, "cancelled", {"type": "cancelled", "reason": "turn_detected"})
        if self.media_output is not None and len(self.media_output):
            self.clear_media_audio(now)

    # -- media mode (WebRTC, SIP) -------------------------------------------------------------------

    def _to_media(self, state: ResponseState, item_id: str, data: bytes) -> None:
        assert self.media_output is not None
        self.media_output.write(state.id, item_id, data)

    def pull_media_audio(self, nbytes: int, now: float) -> bytes | None:
        """One frame of output audio in the media format (zero-padded), or None when nothing is queued."""
        if self.media_output is None or self.closed:
            return None
        frame, events = pull_playback(self.media_output, nbytes, self.conversation, self._responses)
        for event in events:
            self._emit(event)
        return frame

    def clear_media_audio(self, now: float) -> None:
        """Drop queued output audio; the items it belonged to are truncated at what was played."""
        if self.media_output is None or self.closed:
            return
        for event in clear_playback(self.media_output, self.conversation, self._last_response_id):
            self._emit(event)
