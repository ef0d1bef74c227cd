"""Which payload each event name carries, for the type checker: ``on("audio", ...)`` gets an ``AudioEvent``.

``Subscribe`` is the type of ``on``, ``once`` and ``off`` on every transport (and on ``EventEmitter``): one
overload per convenience event, one for ``*`` and the server event types (raw ``dict``s), one per event of
a media stream transport's phone call. A name that is
none of these (``on("audoi", ...)``) is a type error; names only known at run time go through
``add_listener`` / ``remove_listener``, which take any string.

Type-checking only: at run time the emitter is the plain dict-of-lists in ``rtlayer.transport``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from .transport_events import (
    AudioDoneEvent,
    AudioEvent,
    AudioInterruptedEvent,
    ConnectionChangeEvent,
    DtmfEvent,
    ErrorEvent,
    FunctionCallEvent,
    InputAudioTimeoutEvent,
    ItemDeletedEvent,
    ItemUpdateEvent,
    OutputTextDeltaEvent,
    TranscriptDeltaEvent,
    TurnDoneEvent,
    TurnStartedEvent,
    Usage,
)

if TYPE_CHECKING:  # type-only: the emitter's module never imports a transport
    from .transports.media_stream.events import CallStart, CallStop, ProviderProblem

__all__ = ["RawEventName", "Subscribe"]

_R = TypeVar("_R")

RawEventName = Literal[
    "*",
    "session.created",
    "session.updated",
    "conversation.created",
    "conversation.item.added",
    "conversation.item.created",
    "conversation.item.done",
    "conversation.item.retrieved",
    "conversation.item.truncated",
    "conversation.item.deleted",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.committed",
    "input_audio_buffer.cleared",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.timeout_triggered",
    "input_audio_buffer.dtmf_event_received",
    "output_audio_buffer.started",
    "output_audio_buffer.stopped",
    "output_audio_buffer.cleared",
    "rate_limits.updated",
    "response.created",
    "response.done",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.output_audio.delta",
    "response.output_audio.done",
    "response.output_audio_transcript.delta",
    "response.output_audio_transcript.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
    "mcp_list_tools.in_progress",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
]
"""``*`` and every server event type but ``error`` (which arrives as an ``ErrorEvent``): raw dicts."""


class Subscribe(Protocol):
    """``on`` / ``once`` / ``off``: ``(name, listener) -> listener``, the listener typed by the name."""

    @overload
    def __call__(
        self, name: Literal["connection_change"], listener: Callable[[ConnectionChangeEvent], _R], /
    ) -> Callable[[ConnectionChangeEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["error"], listener: Callable[[ErrorEvent], _R], /
    ) -> Callable[[ErrorEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["audio"], listener: Callable[[AudioEvent], _R], /
    ) -> Callable[[AudioEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["audio_done"], listener: Callable[[AudioDoneEvent], _R], /
    ) -> Callable[[AudioDoneEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["audio_interrupted"], listener: Callable[[AudioInterruptedEvent], _R], /
    ) -> Callable[[AudioInterruptedEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["audio_transcript_delta"], listener: Callable[[TranscriptDeltaEvent], _R], /
    ) -> Callable[[TranscriptDeltaEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["output_text_delta"], listener: Callable[[OutputTextDeltaEvent], _R], /
    ) -> Callable[[OutputTextDeltaEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["turn_started"], listener: Callable[[TurnStartedEvent], _R], /
    ) -> Callable[[TurnStartedEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["turn_done"], listener: Callable[[TurnDoneEvent], _R], /
    ) -> Callable[[TurnDoneEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["function_call"], listener: Callable[[FunctionCallEvent], _R], /
    ) -> Callable[[FunctionCallEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["item_update"], listener: Callable[[ItemUpdateEvent], _R], /
    ) -> Callable[[ItemUpdateEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["item_deleted"], listener: Callable[[ItemDeletedEvent], _R], /
    ) -> Callable[[ItemDeletedEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["usage_update"], listener: Callable[[Usage], _R], /
    ) -> Callable[[Usage], _R]: ...
    @overload
    def __call__(
        self, name: Literal["dtmf"], listener: Callable[[DtmfEvent], _R], /
    ) -> Callable[[DtmfEvent], _R]: ...
    @overload
    def __call__(
        self, name: Literal["input_audio_timeout"], listener: Callable[[InputAudioTimeoutEvent], _R], /
    ) -> Callable[[InputAudioTimeoutEvent], _R]: ...
    @overload
    def __call__(
        self, name: RawEventName, listener: Callable[[dict[str, Any]], _R], /
    ) -> Callable[[dict[str, Any]], _R]: ...
    # the phone call of a media stream transport (never emitted by the others)
    @overload
    def __call__(
        self, name: Literal["call_start"], listener: Callable[[CallStart], _R], /
    ) -> Callable[[CallStart], _R]: ...
    @overload
    def __call__(
        self, name: Literal["call_stop"], listener: Callable[[CallStop], _R], /
    ) -> Callable[[CallStop], _R]: ...
    @overload
    def __call__(
        self, name: Literal["provider_problem"], listener: Callable[[ProviderProblem], _R], /
    ) -> Callable[[ProviderProblem], _R]: ...
