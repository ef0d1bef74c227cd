"""Input audio transcription of committed user turns, sans-I/O: the job and the events of its result.

When the session config asks for ``audio.input.transcription`` and the responder can transcribe, each committed
user audio item becomes a ``TranscriptionJob``; the shell runs the responder's ``transcribe`` and hands the
text back, and ``transcription_events`` says it the way the service does (``...delta`` then ``...completed``
with a duration usage, or ``...failed``), after storing the transcript on the item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtlayer.server.core.conversation import Conversation

__all__ = ["TranscriptionJob", "transcription_events"]


@dataclass(frozen=True, slots=True)
class TranscriptionJob:
    """Committed user audio to transcribe with the responder's ``transcribe`` (if it has one)."""

    item_id: str
    content_index: int
    pcm16_24k: bytes


def transcription_events(
    conv: Conversation, item_id: str, transcript: str | None, error: str | None
) -> list[dict[str, Any]]:
    """The events for a transcription's result; none if the item was deleted meanwhile."""
    item = conv.get(item_id)
    if item is None:
        return []
    if error is not None or transcript is None:
        return [
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
        ]
    record = conv.audio.get(item_id)
    seconds = round(record.duration_ms / 1000.0, 3) if record is not None else 0.0
    item["content"][0]["transcript"] = transcript
    return [
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": item_id,
            "content_index": 0,
            "delta": transcript,
        },
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": transcript,
            "usage": {"type": "duration", "seconds": seconds},
        },
    ]
