"""What a responder and the session core exchange: the request of one response and the parts of its answer.

The core (``ServerSession``) builds a ``ResponseRequest`` and turns ``ResponsePart``s into protocol events;
a responder (``rtlayer.server.responders``, or the user's own) reads the one and yields the others. Plain
data and one ``Protocol``, so the core depends on no responder and no responder on the core. Users import
these names from ``rtlayer.server.responders``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AudioPart",
    "FunctionCallPart",
    "Responder",
    "ResponderInfo",
    "ResponsePart",
    "ResponseRequest",
    "TextPart",
    "responder_info",
]


@dataclass(frozen=True, slots=True)
class TextPart:
    """Output text, or the transcript of the audio that goes with it."""

    text: str


@dataclass(frozen=True, slots=True)
class AudioPart:
    """Output audio, PCM16 24 kHz mono."""

    pcm16_24k: bytes


@dataclass(frozen=True, slots=True)
class FunctionCallPart:
    """A call of one of the session's tools; ``arguments`` is JSON text or a dict (encoded by the session)."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    call_id: str | None = None


ResponsePart = TextPart | AudioPart | FunctionCallPart


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    """Everything a responder may look at to answer one ``response.create``."""

    response_id: str
    items: list[dict[str, Any]]  # the conversation (or the response's own ``input``), oldest first
    instructions: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    output_format: dict[str, Any] = field(default_factory=lambda: {"type": "audio/pcm", "rate": 24000})
    voice: str = "marin"
    speed: float = 1.0
    user_audio: bytes | None = None  # the last committed user audio, PCM16 24 kHz
    metadata: dict[str, Any] | None = None
    max_output_tokens: int | str = "inf"

    @property
    def wants_audio(self) -> bool:
        return "audio" in self.output_modalities


@runtime_checkable
class Responder(Protocol):
    """Answers responses; see the module docstring."""

    def respond(self, request: ResponseRequest) -> AsyncIterator[ResponsePart]: ...


@dataclass(frozen=True, slots=True)
class ResponderInfo:
    """What a ``ServerSession`` needs to know about its responder (it never calls it: the shell does)."""

    name: str = "echo"
    can_transcribe: bool = False


def responder_info(responder: object) -> ResponderInfo:
    """The ``ResponderInfo`` of a responder object."""
    return ResponderInfo(
        name=type(responder).__name__, can_transcribe=callable(getattr(responder, "transcribe", None))
    )
