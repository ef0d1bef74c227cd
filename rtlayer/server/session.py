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

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

from rtlayer.audio import PCM16_24K, AudioConverter, AudioFormat
from rtlayer.exceptions import InvalidAudioError
from rtlayer.protocol import codec
from rtlayer.protocol.ids import new_event_id, new_id
from rtlayer.protocol.items import item_text, normalize_client_item, user_audio_message
from rtlayer.protocol.session_config import InvalidValue, default_session, merge_session
from rtlayer.server.client_events import check_client_event
from rtlayer.server.conversation import Conversation
from rtlayer.server.media_output import MediaOutput
from rtlayer.server.responders import ResponderInfo, ResponsePart, ResponseRequest, responder_info
from rtlayer.server.response import AUDIO_IN_MS_PER_TOKEN, ResponseJob, ResponseState, estimate_text_tokens
from rtlayer.server.response_options import resolve_response_options
from rtlayer.server.turn_detection import SpeechStarted, TurnDetector

__all__ = ["DEFAULT_MAX_DURATION_S", "ResponseJob", "ServerSession", "TranscriptionJob"]

DEFAULT_MAX_DURATION_S = 3600.0
MIN_COMMIT_MS = 100.0
MAX_INPUT_BUFFER_MS = 5 * 60 * 1000.0  # manual turns: older audio is dropped and counted beyond this
VAD_IDLE_KEEP_MS = 5000.0  # VAD turns: audio kept before speech (prefix padding, a manual commit)
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_BYTES_PER_MS = 48  # PCM16 24 kHz mono


@dataclass(frozen=True, slots=True)
class TranscriptionJob:
    """Committed user audio to transcribe with the responder's ``transcribe`` (if it has one)."""

    item_id: str
    content_index: int
    pcm16_24k: bytes


class ServerSession:
    """One Realtime session; see the module docstring and ``docs/INTERNALS.md`` section 4."""

    def __init__(
        self,
        responder_info_: ResponderInfo | object | None = None,
        now: float = 0.0,
        config: dict[str, Any] | None = None,
        media: AudioFormat | None = None,
        *,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
    ) -> None:
        info = (
            responder_info_
            if isinstance(responder_info_, ResponderInfo)
            else (responder_info(responder_info_) if responder_info_ is not None else ResponderInfo())
        )
        self.responder = info
        self.id = new_id("sess")
        self.media = media
        self.created_at = now
        self.expires_at = int(now + max_duration_s)
        initial = dict(config or {})
        self.config: dict[str, Any] = merge_session(
            default_session(str(initial.pop("model", "gpt-realtime"))), initial
        )
        self.conversation = Conversation(new_id("conv"))
        self.closed = False
        self._out: list[dict[str, Any]] = []
        self._jobs: list[ResponseJob] = []
        self._transcriptions: list[TranscriptionJob] = []
        self._responses: dict[str, ResponseState] = {}  # in progress, by id
        self._active: ResponseState | None = None  # the in-progress response of the default conversation
        self._last_response_id: str | None = None
        self._voice_locked = False
        self._requests_made = 0
        self._idle_deadline: float | None = None
        # input audio: one buffer of PCM16 24 kHz, positioned on the session's audio clock
        self._buf = bytearray()
        self._buf_start_ms = 0.0
        self._audio_ms = 0.0
        self._speech_item: str | None = None
        self.input_dropped_bytes = 0
        self.dtmf_ignored = 0
        self._input_converter = AudioConverter(self.input_format, PCM16_24K)
        self._media_converter = AudioConverter(media, PCM16_24K) if media is not None else None
        self.media_output = MediaOutput(media) if media is not None else None
        self._vad: TurnDetector | None = None
        self._configure_vad()
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
        return len(self._buf) / _BYTES_PER_MS

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
        code: str | None,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        self._emit(
            {
                "type": "error",
                "error": {
                    "type": type_,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

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
        except ValueError as exc:
            if self._check_open(now):
                self._error("invalid_json", f"The message could not be parsed as JSON: {exc}", None)
            return
        self.receive_event(event, now)

    def receive_event(self, event: Any, now: float) -> None:
        """One parsed client event."""
        if not self._check_open(now):
            return
        problem = check_client_event(event)
        event_id = (
            event.get("event_id")
            if isinstance(event, dict) and isinstance(event.get("event_id"), str)
            else None
        )
        if problem is not None:
            self._error(problem.code, problem.message, problem.param, event_id)
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
            self.input_dropped_bytes += len(data)
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
        if self._idle_deadline is not None:
            when = min(when, self._idle_deadline)
        return when

    def handle_timer(self, now: float) -> None:
        """Fire what is due: session expiry, the idle timeout."""
        if not self._check_open(now):
            return
        if self._idle_deadline is not None and now >= self._idle_deadline:
            self._idle_deadline = None
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
        td = self.turn_detection
        timeout = td.get("idle_timeout_ms") if td is not None and td.get("type") == "server_vad" else None
        self._idle_deadline = now + delay_s + timeout / 1000.0 if timeout else None

    def _idle_timeout(self, now: float) -> None:
        item_id = self._speech_item or new_id("item")
        self._emit(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "item_id": item_id,
                "audio_start_ms": int(self._buf_start_ms),
                "audio_end_ms": int(self._audio_ms),
            }
        )
        pcm = bytes(self._buf)
        self._buf.clear()
        if self._vad is not None:
            self._vad.reset()
        self._speech_item = None
        self._commit(item_id, pcm, now, new_buffer_start_ms=self._audio_ms)
        td = self.turn_detection or {}
        if td.get("create_response", True) and self._active is None:
            self._create_response({}, None, now)

    # -- the input buffer and VAD -----------------------------------------------------------------

    def _configure_vad(self) -> None:
        td = self.turn_detection
        self._vad = TurnDetector(td, start_ms=self._audio_ms) if td is not None else None
        self._speech_item = None

    def _ingest(self, pcm: bytes, now: float) -> None:
        self._buf += pcm
        self._audio_ms += len(pcm) / _BYTES_PER_MS
        vad = self._vad
        if vad is None:
            self._bound_buffer(MAX_INPUT_BUFFER_MS, count_drop=True)
            return
        for ev in vad.feed(pcm):
            if isinstance(ev, SpeechStarted):
                start_ms = max(
                    ev.audio_start_ms, math.ceil(self._buf_start_ms)
                )  # padding never reaches into the last turn
                self._trim_to(start_ms)
                self._speech_item = new_id("item")
                self._idle_deadline = None
                self._emit(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": start_ms,
                        "item_id": self._speech_item,
                    }
                )
                if (self.turn_detection or {}).get("interrupt_response", True):
                    self._barge_in(now)
            else:
                item_id = self._speech_item or new_id("item")
                self._speech_item = None
                self._emit(
                    {
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": ev.audio_end_ms,
                        "item_id": item_id,
                    }
                )
                cut = int((ev.audio_end_ms - self._buf_start_ms) * _BYTES_PER_MS) & ~1
                cut = max(0, min(cut, len(self._buf)))
                turn, rest = bytes(self._buf[:cut]), self._buf[cut:]
                self._buf = bytearray(rest)
                self._commit(item_id, turn, now, new_buffer_start_ms=ev.audio_end_ms)
                td = self.turn_detection or {}
                if td.get("create_response", True) and self._active is None:
                    self._create_response({}, None, now)
        if not vad.speaking:
            self._bound_buffer(VAD_IDLE_KEEP_MS, count_drop=False)
        else:
            self._bound_buffer(MAX_INPUT_BUFFER_MS, count_drop=True)

    def _trim_to(self, start_ms: float) -> None:
        drop = int((start_ms - self._buf_start_ms) * _BYTES_PER_MS) & ~1
        if drop > 0:
            del self._buf[: min(drop, len(self._buf))]
            self._buf_start_ms = start_ms

    def _bound_buffer(self, max_ms: float, count_drop: bool) -> None:
        excess = len(self._buf) - int(max_ms) * _BYTES_PER_MS
        if excess > 0:
            del self._buf[:excess]
            self._buf_start_ms += excess / _BYTES_PER_MS
            if count_drop:
                self.input_dropped_bytes += excess

    def _commit(self, item_id: str, pcm: bytes, now: float, new_buffer_start_ms: float | None = None) -> None:
        """Turn ``pcm`` into a user audio item: committed, item added and done (and maybe a transcription)."""
        self._buf_start_ms = (
            self._audio_ms - len(self._buf) / _BYTES_PER_MS
            if new_buffer_start_ms is None
            else new_buffer_start_ms
        )
        item = user_audio_message(item_id)
        prev = self.conversation.add(item)
        self.conversation.keep_user_audio(item_id, pcm)
        self._emit({"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id})
        self._emit({"type": "conversation.item.added", "previous_item_id": prev, "item": _copy(item)})
        self._emit({"type": "conversation.item.done", "previous_item_id": prev, "item": _copy(item)})
        if self.config["audio"]["input"]["transcription"] is not None and self.responder.can_transcribe:
            self._transcriptions.append(TranscriptionJob(item_id, 0, pcm))

    def transcription_result(
        self, item_id: str, transcript: str | None, now: float, error: str | None = None
    ) -> None:
        """The responder's transcript of a ``TranscriptionJob`` (or why it failed)."""
        if self.closed:
            return
        item = self.conversation.get(item_id)
        if item is None:
            return  # deleted meanwhile
        if error is not None or transcript is None:
            self._emit(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item_id,
                    "content_index": 0,
                    "error": {
                        "type": "transcription_error",
                        "code": "transcription_failed",
                        "message": error or "The responder could not transcribe this audio.",
                        "param": None,
                    },
                }
            )
            return
        record = self.conversation.audio.get(item_id)
        seconds = round(record.duration_ms / 1000.0, 3) if record is not None else 0.0
        item["content"][0]["transcript"] = transcript
        self._emit(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item_id,
                "content_index": 0,
                "delta": transcript,
            }
        )
        self._emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": seconds},
            }
        )

    # -- client events ------------------------------------------------------------------------------

    def _on_session_update(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        try:
            new = merge_session(self.config, event["session"])
        except InvalidValue as exc:
            self._error("invalid_value", exc.message, exc.param, event_id)
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
        self.config = new
        if new["audio"]["input"]["format"] != old["audio"]["input"]["format"]:
            self._input_converter = AudioConverter(self.input_format, PCM16_24K)
        if new["audio"]["input"]["turn_detection"] != old["audio"]["input"]["turn_detection"]:
            self._configure_vad()
            if self._active is None:
                self._arm_idle(now)
        self._emit({"type": "session.updated", "session": self.session_object()})

    def _on_input_audio_buffer_append(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
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
        item_id = self._speech_item or new_id("item")
        pcm = bytes(self._buf)
        self._buf.clear()
        if self._vad is not None:
            self._vad.reset()
        self._speech_item = None
        self._idle_deadline = None
        self._commit(item_id, pcm, now, new_buffer_start_ms=self._audio_ms)

    def _on_input_audio_buffer_clear(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._buf.clear()
        self._buf_start_ms = self._audio_ms
        if self._vad is not None:
            self._vad.reset()
        self._speech_item = None
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

    def _on_conversation_item_create(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        prev = event.get("previous_item_id")
        if prev is not None and prev != "root" and prev not in self.conversation:
            self._error(
                "invalid_value",
                f"Previous item with id '{prev}' does not exist.",
                "previous_item_id",
                event_id,
            )
            return
        try:
            item = normalize_client_item(event["item"])
        except InvalidValue as exc:
            self._error("invalid_value", exc.message, exc.param, event_id)
            return
        if item["id"] in self.conversation:
            self._error("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id", event_id)
            return
        pcm = self._take_item_audio(item, event_id)
        if pcm is None:
            return
        previous = self.conversation.add(item, None if prev == "root" else prev, append=prev is None)
        if pcm:
            self.conversation.keep_user_audio(item["id"], pcm)
        self._emit({"type": "conversation.item.added", "previous_item_id": previous, "item": _copy(item)})
        self._emit({"type": "conversation.item.done", "previous_item_id": previous, "item": _copy(item)})

    def _take_item_audio(self, item: dict[str, Any], event_id: str | None) -> bytes | None:
        """Decode the base64 ``audio`` of input_audio parts (kept aside, not echoed); None after an error."""
        pcm = b""
        for i, part in enumerate(item.get("content") or []):
            audio = part.pop("audio", None) if part.get("type") == "input_audio" else None
            if audio is None:
                continue
            try:
                data = base64.b64decode(audio, validate=True)
                pcm += AudioConverter(self.input_format, PCM16_24K).convert(data)
            except (binascii.Error, ValueError) as exc:
                self._error(
                    "invalid_value",
                    f"Invalid 'item.content[{i}].audio': {exc}.",
                    f"item.content[{i}].audio",
                    event_id,
                )
                return None
        return pcm

    def _on_conversation_item_retrieve(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        item = self.conversation.get(event["item_id"])
        if item is None:
            self._error(
                "item_retrieve_invalid_item_id",
                f"Error retrieving item: the item with id '{event['item_id']}' does not exist.",
                "item_id",
                event_id,
            )
            return
        out = _copy(item)
        record = self.conversation.audio.get(item["id"])
        if (
            record is not None
            and record.pcm16_24k is not None
            and self.input_format == PCM16_24K
            and out.get("content")
        ):
            out["content"][0]["audio"] = base64.b64encode(record.pcm16_24k).decode()
        self._emit({"type": "conversation.item.retrieved", "item": out})

    def _on_conversation_item_delete(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        if not self.conversation.delete(event["item_id"]):
            self._error(
                "item_delete_invalid_item_id",
                f"Error deleting item: the item with id '{event['item_id']}' does not exist.",
                "item_id",
                event_id,
            )
            return
        self._emit({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    def _on_conversation_item_truncate(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        item_id, index, end_ms = event["item_id"], event["content_index"], event["audio_end_ms"]
        item = self.conversation.get(item_id)
        record = self.conversation.audio.get(item_id)
        if item is None or item.get("role") != "assistant" or record is None:
            self._error(
                "item_truncate_invalid_item_id",
                f"Error truncating item: the item with id '{item_id}' "
                "does not exist or is not an assistant message with audio.",
                "item_id",
                event_id,
            )
            return
        if index != 0:
            self._error(
                "invalid_value",
                f"Invalid 'content_index': {index}. The item has one content part (0).",
                "content_index",
                event_id,
            )
            return
        duration = record.duration_ms
        if end_ms < 0 or end_ms > math.ceil(duration):
            self._error(
                "invalid_value",
                f"Audio content of {duration:.0f}ms is shorter than the requested "
                f"truncation point of {end_ms}ms.",
                "audio_end_ms",
                event_id,
            )
            return
        self._truncate(item, end_ms)

    def _truncate(self, item: dict[str, Any], end_ms: int) -> None:
        """Cut an assistant item's audio (and, in proportion, its transcript) at ``end_ms``; tell the client."""
        record = self.conversation.audio[item["id"]]
        duration = record.duration_ms
        record.nbytes = min(record.nbytes, record.fmt.bytes_for_ms(end_ms))
        record.truncated_ms = end_ms
        content = item.get("content") or []
        if content and isinstance(content[0].get("transcript"), str) and duration > 0:
            words = content[0]["transcript"].split(" ")
            keep = math.floor(len(words) * min(1.0, end_ms / duration))
            content[0]["transcript"] = " ".join(words[:keep])
        self._emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item["id"],
                "content_index": 0,
                "audio_end_ms": int(end_ms),
            }
        )

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
        except InvalidValue as exc:
            self._error("invalid_value", exc.message, exc.param, event_id)
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
        self._idle_deadline = None
        response_id = new_id("resp")
        text_in = sum(estimate_text_tokens(item_text(i)) for i in opts.items) + estimate_text_tokens(
            opts.instructions
        )
        audio_in = sum(
            int(r.duration_ms / AUDIO_IN_MS_PER_TOKEN)
            for k, r in self.conversation.audio.items()
            if r.pcm16_24k is not None and any(i.get("id") == k for i in opts.items)
        )
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
        user_audio = next(
            (
                self.conversation.audio[i["id"]].pcm16_24k
                for i in reversed(opts.items)
                if i.get("id") in self.conversation.audio
                and self.conversation.audio[i["id"]].pcm16_24k is not None
            ),
            None,
        )
        request = ResponseRequest(
            response_id=response_id,
            items=[_copy(i) for i in opts.items],
            instructions=opts.instructions,
            tools=opts.tools,
            tool_choice=opts.tool_choice,
            output_modalities=opts.output_modalities,
            output_format=opts.output_format.to_session(),
            voice=opts.voice if isinstance(opts.voice, str) else "marin",
            speed=float(self.config["audio"]["output"].get("speed", 1.0)),
            user_audio=user_audio,
            metadata=opts.metadata,
            max_output_tokens=opts.max_output_tokens,
        )
        job = ResponseJob(response_id, request)
        state.job = job
        self._responses[response_id] = state
        if opts.in_conversation:
            self._active = state
        self._last_response_id = response_id
        self._requests_made += 1
        state.start(self._rate_limits(text_in + audio_in))
        self._jobs.append(job)

    def _rate_limits(self, tokens: int) -> list[dict[str, Any]]:
        return [
            {
                "name": "requests",
                "limit": 5000,
                "remaining": max(0, 5000 - self._requests_made),
                "reset_seconds": 0.012,
            },
            {
                "name": "tokens",
                "limit": 40000,
                "remaining": max(0, 40000 - tokens),
                "reset_seconds": round(tokens / 40000 * 60, 3),
            },
        ]

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
        out = self.media_output
        if out is None or self.closed:
            return None
        frame, played = out.pull(nbytes)
        for p in played:
            if out.current_response != p.response_id:
                if out.current_response is not None:
                    self._emit({"type": "output_audio_buffer.stopped", "response_id": out.current_response})
                out.current_response = p.response_id
                self._emit({"type": "output_audio_buffer.started", "response_id": p.response_id})
            record = self.conversation.audio.get(p.item_id)
            if record is not None:
                record.played_bytes += p.nbytes
        if frame is None and out.current_response is not None and out.current_response not in self._responses:
            self._emit({"type": "output_audio_buffer.stopped", "response_id": out.current_response})
            out.current_response = None
        return frame

    def clear_media_audio(self, now: float) -> None:
        """Drop queued output audio; the items it belonged to are truncated at what was played."""
        out = self.media_output
        if out is None or self.closed:
            return
        dropped = out.clear()
        response_id = out.current_response or (dropped[0].response_id if dropped else self._last_response_id)
        for item_id in dict.fromkeys(seg.item_id for seg in dropped):
            item = self.conversation.get(item_id)
            record = self.conversation.audio.get(item_id)
            if item is not None and record is not None:
                self._truncate(item, int(record.fmt.duration_ms(record.played_bytes)))
        out.current_response = None
        if response_id is not None:
            self._emit({"type": "output_audio_buffer.cleared", "response_id": response_id})


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    if isinstance(out.get("content"), list):
        out["content"] = [dict(c) for c in out["content"]]
    return out
