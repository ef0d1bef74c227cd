"""Event type names of the Realtime protocol (GA), as string constants.

Every name of ``shared/protocol/event-types.json`` is here, so code says ``ServerEventType.RESPONSE_DONE``
instead of repeating string literals; the values are plain ``str`` so events stay plain dicts.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CLIENT_EVENT_TYPES",
    "SERVER_EVENT_TYPES",
    "UNSUPPORTED_SERVER_EVENT_TYPES",
    "ClientEventType",
    "ServerEventType",
]


class ClientEventType:
    """The 11 events a client sends."""

    SESSION_UPDATE: Final = "session.update"
    INPUT_AUDIO_BUFFER_APPEND: Final = "input_audio_buffer.append"
    INPUT_AUDIO_BUFFER_COMMIT: Final = "input_audio_buffer.commit"
    INPUT_AUDIO_BUFFER_CLEAR: Final = "input_audio_buffer.clear"
    CONVERSATION_ITEM_CREATE: Final = "conversation.item.create"
    CONVERSATION_ITEM_RETRIEVE: Final = "conversation.item.retrieve"
    CONVERSATION_ITEM_TRUNCATE: Final = "conversation.item.truncate"
    CONVERSATION_ITEM_DELETE: Final = "conversation.item.delete"
    RESPONSE_CREATE: Final = "response.create"
    RESPONSE_CANCEL: Final = "response.cancel"
    OUTPUT_AUDIO_BUFFER_CLEAR: Final = "output_audio_buffer.clear"


class ServerEventType:
    """The 46 events a server sends."""

    ERROR: Final = "error"
    SESSION_CREATED: Final = "session.created"
    SESSION_UPDATED: Final = "session.updated"
    CONVERSATION_CREATED: Final = "conversation.created"
    CONVERSATION_ITEM_ADDED: Final = "conversation.item.added"
    CONVERSATION_ITEM_CREATED: Final = "conversation.item.created"
    CONVERSATION_ITEM_DONE: Final = "conversation.item.done"
    CONVERSATION_ITEM_RETRIEVED: Final = "conversation.item.retrieved"
    CONVERSATION_ITEM_TRUNCATED: Final = "conversation.item.truncated"
    CONVERSATION_ITEM_DELETED: Final = "conversation.item.deleted"
    INPUT_TRANSCRIPTION_DELTA: Final = "conversation.item.input_audio_transcription.delta"
    INPUT_TRANSCRIPTION_COMPLETED: Final = "conversation.item.input_audio_transcription.completed"
    INPUT_TRANSCRIPTION_FAILED: Final = "conversation.item.input_audio_transcription.failed"
    INPUT_TRANSCRIPTION_SEGMENT: Final = "conversation.item.input_audio_transcription.segment"
    INPUT_AUDIO_BUFFER_COMMITTED: Final = "input_audio_buffer.committed"
    INPUT_AUDIO_BUFFER_CLEARED: Final = "input_audio_buffer.cleared"
    INPUT_AUDIO_BUFFER_SPEECH_STARTED: Final = "input_audio_buffer.speech_started"
    INPUT_AUDIO_BUFFER_SPEECH_STOPPED: Final = "input_audio_buffer.speech_stopped"
    INPUT_AUDIO_BUFFER_TIMEOUT_TRIGGERED: Final = "input_audio_buffer.timeout_triggered"
    INPUT_AUDIO_BUFFER_DTMF_EVENT_RECEIVED: Final = "input_audio_buffer.dtmf_event_received"
    OUTPUT_AUDIO_BUFFER_STARTED: Final = "output_audio_buffer.started"
    OUTPUT_AUDIO_BUFFER_STOPPED: Final = "output_audio_buffer.stopped"
    OUTPUT_AUDIO_BUFFER_CLEARED: Final = "output_audio_buffer.cleared"
    RATE_LIMITS_UPDATED: Final = "rate_limits.updated"
    RESPONSE_CREATED: Final = "response.created"
    RESPONSE_DONE: Final = "response.done"
    RESPONSE_OUTPUT_ITEM_ADDED: Final = "response.output_item.added"
    RESPONSE_OUTPUT_ITEM_DONE: Final = "response.output_item.done"
    RESPONSE_CONTENT_PART_ADDED: Final = "response.content_part.added"
    RESPONSE_CONTENT_PART_DONE: Final = "response.content_part.done"
    RESPONSE_OUTPUT_TEXT_DELTA: Final = "response.output_text.delta"
    RESPONSE_OUTPUT_TEXT_DONE: Final = "response.output_text.done"
    RESPONSE_OUTPUT_AUDIO_DELTA: Final = "response.output_audio.delta"
    RESPONSE_OUTPUT_AUDIO_DONE: Final = "response.output_audio.done"
    RESPONSE_OUTPUT_AUDIO_TRANSCRIPT_DELTA: Final = "response.output_audio_transcript.delta"
    RESPONSE_OUTPUT_AUDIO_TRANSCRIPT_DONE: Final = "response.output_audio_transcript.done"
    RESPONSE_FUNCTION_CALL_ARGUMENTS_DELTA: Final = "response.function_call_arguments.delta"
    RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE: Final = "response.function_call_arguments.done"
    RESPONSE_MCP_CALL_ARGUMENTS_DELTA: Final = "response.mcp_call_arguments.delta"
    RESPONSE_MCP_CALL_ARGUMENTS_DONE: Final = "response.mcp_call_arguments.done"
    RESPONSE_MCP_CALL_IN_PROGRESS: Final = "response.mcp_call.in_progress"
    RESPONSE_MCP_CALL_COMPLETED: Final = "response.mcp_call.completed"
    RESPONSE_MCP_CALL_FAILED: Final = "response.mcp_call.failed"
    MCP_LIST_TOOLS_IN_PROGRESS: Final = "mcp_list_tools.in_progress"
    MCP_LIST_TOOLS_COMPLETED: Final = "mcp_list_tools.completed"
    MCP_LIST_TOOLS_FAILED: Final = "mcp_list_tools.failed"


def _values(cls: type) -> frozenset[str]:
    return frozenset(v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str))


CLIENT_EVENT_TYPES: Final[frozenset[str]] = _values(ClientEventType)
SERVER_EVENT_TYPES: Final[frozenset[str]] = _values(ServerEventType)

#: Server events the embedded server never emits, on purpose, and why. Clients still accept them all.
UNSUPPORTED_SERVER_EVENT_TYPES: Final[dict[str, str]] = {
    "conversation.created": "beta only: a GA session announces no conversation",
    "conversation.item.created": "beta only: GA sends conversation.item.added and conversation.item.done",
    "conversation.item.input_audio_transcription.segment": "diarized transcription: no diarizing model here",
    **{
        name: "remote MCP servers: the embedded server calls no network service"
        for name in (
            "mcp_list_tools.in_progress",
            "mcp_list_tools.completed",
            "mcp_list_tools.failed",
            "response.mcp_call.in_progress",
            "response.mcp_call.completed",
            "response.mcp_call.failed",
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
        )
    },
}
