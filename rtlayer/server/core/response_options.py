"""The options of ``response.create`` resolved against the session: what one response will use.

Every field of the ``response`` object overrides the session's for this response only: ``instructions``,
``tools``, ``tool_choice``, ``output_modalities``, ``audio.output`` (format, voice), ``max_output_tokens``,
``metadata``; ``conversation: "none"`` makes it out-of-band (its items stay out of the conversation), and
``input`` (items, or ``{"type": "item_reference", "id": ...}``) replaces the conversation as its context.
Bad values raise ``RequestRefused`` naming ``response.<field>``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from rtlayer.audio import AudioFormat
from rtlayer.exceptions import RequestRefused
from rtlayer.protocol.items import item_text, normalize_client_item
from rtlayer.protocol.session_config import VOICES, merge_session, normalize_format
from rtlayer.protocol.session_fields import check_max_output_tokens, check_output_modalities, invalid_value
from rtlayer.server.core.conversation import Conversation
from rtlayer.server.core.item_events import copy_item
from rtlayer.server.core.parts import ResponseRequest
from rtlayer.server.core.response import AUDIO_IN_MS_PER_TOKEN, estimate_text_tokens
from rtlayer.server.core.truncation import truncate

__all__ = ["ResponseOptions", "resolve_response_options"]

_KNOWN = frozenset(
    {
        "conversation",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "output_modalities",
        "modalities",
        "audio",
        "max_output_tokens",
        "max_response_output_tokens",
        "metadata",
        "prompt",
        "voice",
        "output_audio_format",
        "temperature",
    }
)


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    """What one response uses."""

    in_conversation: bool
    items: list[dict[str, Any]]
    instructions: str
    tools: list[dict[str, Any]]
    tool_choice: Any
    output_modalities: list[str]
    output_format: AudioFormat
    voice: Any
    max_output_tokens: int | str
    metadata: dict[str, Any] | None

    def input_tokens(self, conversation: Conversation) -> tuple[int, int]:
        """Estimated (text, audio) input tokens: the context's text and kept user audio, plus instructions."""
        text = sum(estimate_text_tokens(item_text(i)) for i in self.items) + estimate_text_tokens(
            self.instructions
        )
        ids = {i.get("id") for i in self.items}
        audio = sum(
            int(r.duration_ms / AUDIO_IN_MS_PER_TOKEN)
            for k, r in conversation.audio.items()
            if k in ids and r.pcm16_24k is not None
        )
        return text, audio

    def request(self, response_id: str, conversation: Conversation, speed: float) -> ResponseRequest:
        """What the responder gets: the context's items (copies) and the last user audio among them."""
        records = conversation.audio
        user_audio = next(
            (
                records[i["id"]].pcm16_24k
                for i in reversed(self.items)
                if i.get("id") in records and records[i["id"]].pcm16_24k is not None
            ),
            None,
        )
        return ResponseRequest(
            response_id=response_id,
            items=[copy_item(i) for i in self.items],
            instructions=self.instructions,
            tools=self.tools,
            tool_choice=self.tool_choice,
            output_modalities=self.output_modalities,
            output_format=self.output_format.to_session(),
            voice=self.voice if isinstance(self.voice, str) else "marin",
            speed=speed,
            user_audio=user_audio,
            metadata=self.metadata,
            max_output_tokens=self.max_output_tokens,
        )


def _input_items(value: Any, conversation: Conversation) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid_value(
            "response.input", "Invalid type for 'response.input': expected an array of items."
        )
    items = []
    for i, raw in enumerate(value):
        p = f"response.input[{i}]"
        if isinstance(raw, dict) and raw.get("type") == "item_reference":
            ref = conversation.get(str(raw.get("id")))
            if ref is None:
                raise invalid_value(
                    f"{p}.id", f"Item with id '{raw.get('id')}' does not exist in the conversation."
                )
            items.append(ref)
        else:
            items.append(normalize_client_item(raw, p))
    return items


def _item_tokens(item: dict[str, Any], conversation: Conversation) -> int:
    record = conversation.audio.get(item.get("id", ""))
    audio = int(record.duration_ms / AUDIO_IN_MS_PER_TOKEN) if record is not None else 0
    return estimate_text_tokens(item_text(item)) + audio


def resolve_response_options(
    options: dict[str, Any], session: dict[str, Any], conversation: Conversation
) -> ResponseOptions:
    """Resolve ``response.create``'s ``response`` object against the session config."""
    for key in options:
        if key not in _KNOWN:
            raise invalid_value(f"response.{key}", f"Unknown parameter: 'response.{key}'.")
    conv = options.get("conversation", "auto")
    if conv not in ("auto", "none", conversation.id):
        raise invalid_value(
            "response.conversation", f"Invalid value: '{conv}'. Supported values are: 'auto' and 'none'."
        )
    in_conversation = conv != "none"
    instructions = options.get("instructions", session.get("instructions") or "")
    if not isinstance(instructions, str):
        raise invalid_value(
            "response.instructions", "Invalid type for 'response.instructions': expected a string."
        )
    if options.get("input") is not None:
        items = _input_items(options["input"], conversation)
    else:
        items = truncate(
            conversation.items(),
            session.get("truncation", "auto"),
            estimate_text_tokens(instructions),
            lambda item: _item_tokens(item, conversation),
        )
    # tools and tool_choice are checked by the same rules as the session's
    overrides: dict[str, Any] = {k: options[k] for k in ("tools", "tool_choice") if k in options}
    try:
        merged = merge_session(session, overrides) if overrides else session
    except RequestRefused as exc:
        raise RequestRefused(
            exc.code,
            exc.message.replace("session.", "response."),
            None if exc.param is None else exc.param.replace("session.", "response.", 1),
        ) from None
    mods_raw = options.get("output_modalities", options.get("modalities"))
    if isinstance(mods_raw, list) and len(mods_raw) > 1 and "audio" in mods_raw:
        mods_raw = ["audio"]  # beta ["text", "audio"]
    mods = (
        check_output_modalities(mods_raw, "response.output_modalities")
        if mods_raw is not None
        else list(session["output_modalities"])
    )
    audio_out = options.get("audio", {}).get("output", {}) if isinstance(options.get("audio"), dict) else {}
    if not isinstance(audio_out, dict):
        raise invalid_value(
            "response.audio.output", "Invalid type for 'response.audio.output': expected an object."
        )
    fmt_raw = audio_out.get("format", options.get("output_audio_format"))
    fmt = (
        session["audio"]["output"]["format"]
        if fmt_raw is None
        else normalize_format(fmt_raw, "response.audio.output.format")
    )
    voice = audio_out.get("voice", options.get("voice", session["audio"]["output"]["voice"]))
    if not (
        (isinstance(voice, str) and voice in VOICES)
        or (isinstance(voice, dict) and isinstance(voice.get("id"), str))
    ):
        raise invalid_value(
            "response.audio.output.voice",
            f"Invalid value: '{voice}'. Supported values are: " + ", ".join(repr(v) for v in VOICES) + ".",
        )
    max_tokens = options.get(
        "max_output_tokens", options.get("max_response_output_tokens", session["max_output_tokens"])
    )
    check_max_output_tokens(max_tokens, "response.max_output_tokens")
    metadata = options.get("metadata")
    if metadata is not None:
        if (
            not isinstance(metadata, dict)
            or len(metadata) > 16
            or not all(
                isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
                for k, v in metadata.items()
            )
        ):
            raise invalid_value(
                "response.metadata",
                "Invalid 'response.metadata': expected at most 16 string keys "
                "(64 characters) with string values (512 characters).",
            )
        metadata = dict(metadata)
    return ResponseOptions(
        in_conversation=in_conversation,
        items=items,
        instructions=instructions,
        tools=copy.deepcopy(merged["tools"]),
        tool_choice=copy.deepcopy(merged["tool_choice"]),
        output_modalities=mods,
        output_format=AudioFormat.from_session(fmt),
        voice=voice,
        max_output_tokens=max_tokens,
        metadata=metadata,
    )
