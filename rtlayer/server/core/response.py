"""One response being produced: responder parts in, protocol events out, in the service's order.

Lifecycle (the events of ``REALTIME_PROTOCOL.md`` section 3)::

    state        input                      -> state        events
    (new)        start()                    -> idle         response.created, rate_limits.updated
    idle         TextPart / AudioPart       -> message      output_item.added, [conversation.item.added],
                                                            content_part.added, then the delta
    message      TextPart                   -> message      output_text.delta | output_audio_transcript.delta
    message      AudioPart                  -> message      output_audio.delta (WebSocket) | media buffer (WebRTC/SIP)
    message      FunctionCallPart           -> idle         the message's *.done events, then the call's
    idle         FunctionCallPart           -> idle         output_item.added, [conversation.item.added],
                                                            function_call_arguments.delta..., .done,
                                                            [conversation.item.done], output_item.done
    any          finish(status)             -> done         open message's *.done events, response.done

``[conversation.*]`` events only when the response writes to the conversation (``conversation: "auto"``).
A cancelled or interrupted response still gets every ``*.done`` event, with item status ``incomplete``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtlayer.audio import PCM16_24K, AudioConverter, AudioFormat
from rtlayer.protocol.codec import b64encode_audio
from rtlayer.protocol.ids import new_id
from rtlayer.protocol.items import assistant_message, function_call_item
from rtlayer.server.core.conversation import AudioRecord, Conversation
from rtlayer.server.core.parts import AudioPart, FunctionCallPart, ResponsePart, ResponseRequest, TextPart

__all__ = ["ResponseJob", "ResponseState", "estimate_text_tokens", "rate_limits", "usage_dict"]

Emit = Callable[[dict[str, Any]], None]
AudioSink = Callable[["ResponseState", str, bytes], None]  # (response, item_id, audio in the output format)

AUDIO_OUT_MS_PER_TOKEN = 50.0  # the service counts roughly 20 audio tokens a second of output
AUDIO_IN_MS_PER_TOKEN = 100.0  # and 10 a second of input
ARGUMENT_DELTA_CHARS = 24  # function arguments stream in pieces of about this size


def estimate_text_tokens(text: str) -> int:
    """About 4 characters a token, as tokenizers average on English."""
    return (len(text) + 3) // 4


def rate_limits(requests_made: int, tokens: int) -> list[dict[str, Any]]:
    """The ``rate_limits.updated`` payload: a plausible budget (5000 requests, 40000 tokens a minute), spent as used."""
    return [
        {
            "name": "requests",
            "limit": 5000,
            "remaining": max(0, 5000 - requests_made),
            "reset_seconds": 0.012,
        },
        {
            "name": "tokens",
            "limit": 40000,
            "remaining": max(0, 40000 - tokens),
            "reset_seconds": round(min(tokens, 40000) / 40000 * 60, 3),
        },
    ]


def usage_dict(input_text: int, input_audio: int, output_text: int, output_audio: int) -> dict[str, Any]:
    """The ``usage`` object of ``response.done``."""
    inp, out = input_text + input_audio, output_text + output_audio
    return {
        "total_tokens": inp + out,
        "input_tokens": inp,
        "output_tokens": out,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


@dataclass(eq=False)
class ResponseJob:
    """A response the shell must run: ``responder.respond(request)``, parts fed back to the session.

    ``cancelled`` turns true when the session ends the response early (cancel, barge-in, token limit); the
    shell may stop iterating then (parts for a finished response are ignored anyway).
    """

    response_id: str
    request: ResponseRequest
    cancelled: bool = False


@dataclass(eq=False)
class ResponseState:
    """The server's side of one response."""

    id: str
    emit: Emit
    conversation: Conversation | None  # None: out-of-band (``conversation: "none"``)
    conversation_id: str | None
    output_modalities: list[str]
    output_format: AudioFormat
    voice: Any
    max_output_tokens: int | str
    metadata: dict[str, Any] | None
    input_tokens: tuple[int, int]  # (text, audio)
    audio_sink: AudioSink | None = None  # media mode: where output audio goes instead of delta events
    wire_format: AudioFormat | None = (
        None  # format of the audio produced (media mode: the media's), else output_format
    )
    status: str = "in_progress"
    status_details: dict[str, Any] | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    text_tokens: int = 0
    audio_ms: float = 0.0
    audio_bytes_out: int = 0
    dropped_audio_parts: int = 0
    job: ResponseJob | None = None
    _message: dict[str, Any] | None = None
    _text: list[str] = field(default_factory=list)
    _converter: AudioConverter | None = None

    @property
    def wants_audio(self) -> bool:
        return "audio" in self.output_modalities

    @property
    def _voice_name(self) -> str | None:
        # A custom voice is {"id": ...} in the session; a response reports voices by name or id only.
        return (
            self.voice
            if isinstance(self.voice, str)
            else str(self.voice.get("id"))
            if isinstance(self.voice, dict)
            else None
        )

    @property
    def done(self) -> bool:
        return self.status != "in_progress"

    @property
    def output_tokens(self) -> int:
        return self.text_tokens + int(self.audio_ms / AUDIO_OUT_MS_PER_TOKEN)

    def _shape(self, with_output: bool) -> dict[str, Any]:
        text_in, audio_in = self.input_tokens
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": self.status,
            "status_details": self.status_details,
            "output": [dict(i) for i in self.output] if with_output else [],
            "conversation_id": self.conversation_id,
            "output_modalities": list(self.output_modalities),
            "max_output_tokens": self.max_output_tokens,
            "audio": {"output": {"format": self.output_format.to_session(), "voice": self._voice_name}},
            "usage": usage_dict(
                text_in, audio_in, self.text_tokens, int(self.audio_ms / AUDIO_OUT_MS_PER_TOKEN)
            )
            if with_output
            else None,
            "metadata": self.metadata,
        }

    def _ev(self, type_: str, **fields: Any) -> None:
        self.emit({"type": type_, **fields})

    def _add_item(self, item: dict[str, Any]) -> None:
        self.output.append(item)
        self._ev(
            "response.output_item.added",
            response_id=self.id,
            output_index=len(self.output) - 1,
            item=dict(item),
        )
        if self.conversation is not None:
            prev = self.conversation.add(item)
            self._ev("conversation.item.added", previous_item_id=prev, item=dict(item))

    def _finish_item(self, item: dict[str, Any], status: str) -> None:
        item["status"] = status
        if self.conversation is not None and item["id"] in self.conversation:
            self.conversation.remeasure(item["id"])  # its text streamed in since it was added
            prev = self.conversation.previous_id(item["id"])
            self._ev("conversation.item.done", previous_item_id=prev, item=_copy_item(item))
        self._ev(
            "response.output_item.done",
            response_id=self.id,
            output_index=self.output.index(item),
            item=_copy_item(item),
        )

    # -- parts ----------------------------------------------------------------------------------

    def start(self, rate_limits: list[dict[str, Any]]) -> None:
        self._ev("response.created", response=self._shape(with_output=False))
        self._ev("rate_limits.updated", rate_limits=rate_limits)

    def _open_message(self) -> dict[str, Any]:
        if self._message is not None:
            return self._message
        item = assistant_message(new_id("item"))
        self._add_item(item)
        self._message = item
        self._text = []
        part = {"type": "audio", "transcript": ""} if self.wants_audio else {"type": "text", "text": ""}
        self._ev(
            "response.content_part.added",
            response_id=self.id,
            item_id=item["id"],
            output_index=len(self.output) - 1,
            content_index=0,
            part=part,
        )
        if self.wants_audio:
            item["content"] = [{"type": "output_audio", "transcript": ""}]
            fmt = self.wire_format or self.output_format
            self._converter = AudioConverter(PCM16_24K, fmt)
            if self.conversation is not None:
                self.conversation.audio[item["id"]] = AudioRecord(fmt)
        else:
            item["content"] = [{"type": "output_text", "text": ""}]
        return item

    def _where(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "response_id": self.id,
            "item_id": item["id"],
            "output_index": self.output.index(item),
            "content_index": 0,
        }

    def add_part(self, part: ResponsePart) -> None:
        """Turn one responder part into events (ignored once the response is done)."""
        if self.done:
            return
        if isinstance(part, TextPart):
            if not part.text:
                return
            item = self._open_message()
            self._text.append(part.text)
            self.text_tokens += estimate_text_tokens(part.text)
            kind = (
                "response.output_audio_transcript.delta" if self.wants_audio else "response.output_text.delta"
            )
            self._ev(kind, **self._where(item), delta=part.text)
        elif isinstance(part, AudioPart):
            if not self.wants_audio:
                self.dropped_audio_parts += 1
                return
            if not part.pcm16_24k:
                return
            item = self._open_message()
            assert self._converter is not None
            self.audio_ms += len(part.pcm16_24k) / 48.0
            self._send_audio(item, self._converter.convert(part.pcm16_24k))
        elif isinstance(part, FunctionCallPart):
            self._close_message("completed")
            self._function_call(part)

    def _send_audio(self, item: dict[str, Any], data: bytes) -> None:
        if not data:
            return
        self.audio_bytes_out += len(data)
        record = self.conversation.audio.get(item["id"]) if self.conversation is not None else None
        if record is not None:
            record.nbytes += len(data)
        if self.audio_sink is not None:
            self.audio_sink(self, item["id"], data)
        else:
            delta = b64encode_audio(data)  # one delta per 100 ms of every answer
            self._ev("response.output_audio.delta", **self._where(item), delta=delta)

    def _function_call(self, part: FunctionCallPart) -> None:
        args = part.arguments if isinstance(part.arguments, str) else json.dumps(dict(part.arguments))
        call_id = part.call_id or new_id("call", 16)
        item = function_call_item(new_id("item"), call_id, part.name)
        self._add_item(item)
        index = self.output.index(item)
        for start in range(0, len(args), ARGUMENT_DELTA_CHARS):
            self._ev(
                "response.function_call_arguments.delta",
                response_id=self.id,
                item_id=item["id"],
                output_index=index,
                call_id=call_id,
                delta=args[start : start + ARGUMENT_DELTA_CHARS],
            )
        item["arguments"] = args
        self.text_tokens += estimate_text_tokens(args)
        self._ev(
            "response.function_call_arguments.done",
            response_id=self.id,
            item_id=item["id"],
            output_index=index,
            call_id=call_id,
            name=part.name,
            arguments=args,
        )
        self._finish_item(item, "completed")

    def _close_message(self, status: str) -> None:
        item = self._message
        if item is None:
            return
        self._message = None
        text = "".join(self._text)
        where = self._where(item)
        if self.wants_audio:
            if self._converter is not None:
                self._send_audio(item, self._converter.flush())
                self._converter = None
            self._ev("response.output_audio.done", **where)
            self._ev("response.output_audio_transcript.done", **where, transcript=text)
            item["content"] = [{"type": "output_audio", "transcript": text}]
            part = {"type": "audio", "transcript": text}
        else:
            self._ev("response.output_text.done", **where, text=text)
            item["content"] = [{"type": "output_text", "text": text}]
            part = {"type": "text", "text": text}
        self._ev("response.content_part.done", **where, part=part)
        self._finish_item(item, status)

    def finish(self, status: str, details: dict[str, Any] | None = None) -> None:
        """End the response: close what is open, then ``response.done`` (idempotent)."""
        if self.done:
            return
        self._close_message("completed" if status == "completed" else "incomplete")
        self.status = status
        self.status_details = details
        if self.job is not None and status != "completed":
            self.job.cancelled = True
        self._ev("response.done", response=self._shape(with_output=True))

    def over_token_limit(self) -> bool:
        return self.max_output_tokens != "inf" and self.output_tokens >= int(self.max_output_tokens)


def _copy_item(item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    if "content" in out:
        out["content"] = [dict(c) for c in out["content"]]
    return out
