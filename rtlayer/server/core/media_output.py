"""The paced output buffer of a media session (WebRTC, SIP), sans-I/O.

On a WebSocket the server sends output audio as ``response.output_audio.delta`` events and the client owns
playback. On WebRTC and SIP the server owns playback: answers are queued here, in the media format, and the
front pulls one frame every packet time (``pull``). Because the buffer knows what went out, an interruption can
truncate the assistant item at what the caller actually heard. Bounded: beyond ``capacity_ms`` the newest
audio is refused and counted (``dropped_bytes``), never the audio already promised to the caller.

A front that pulls frames ahead of their send time (SIP's native pacer) sets ``ahead``: a clear then takes
back the frames that front has not sent yet, so truncation still counts only what went out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any, Protocol

from rtlayer.audio import AudioFormat
from rtlayer.server.core.conversation import Conversation
from rtlayer.server.core.item_events import truncate

__all__ = ["MediaOutput", "Played", "PulledAhead", "Segment", "clear_playback", "pull_playback"]

RECALL_FRAMES = 64  # how many recent pulls a front pulling ahead may take back


@dataclass(slots=True)
class Segment:
    """Queued audio of one assistant item."""

    response_id: str
    item_id: str
    data: bytes
    offset: int = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset


@dataclass(frozen=True, slots=True)
class Played:
    """``nbytes`` of ``item_id`` (of ``response_id``) went out in one pulled frame."""

    response_id: str
    item_id: str
    nbytes: int


class PulledAhead(Protocol):
    """A consumer that pulls frames before they are sent (e.g. 40 ms ahead, into a native pacer)."""

    def unsent_frames(self) -> int:
        """Frames pulled and not sent yet."""
        ...

    def recall(self) -> int:
        """Drop the unsent frames at once; returns how many (none of them will be sent)."""
        ...


class MediaOutput:
    """FIFO of output audio segments in the media format; pulled a frame at a time."""

    def __init__(self, fmt: AudioFormat, capacity_ms: float = 10 * 60 * 1000.0) -> None:
        self.fmt = fmt
        self.capacity_bytes = fmt.bytes_for_ms(capacity_ms)
        self._queue: deque[Segment] = deque()
        self._queued = 0
        self.dropped_bytes = 0
        self.current_response: str | None = (
            None  # the response whose audio is playing (between started/stopped)
        )
        self.ahead: PulledAhead | None = None
        # called when audio is written to an empty buffer (an answer starts): a front pulling ahead
        # (SIP) uses it to queue the first frames at once instead of at its next fill
        self.on_audio: Callable[[], None] | None = None
        self._pulls: deque[list[Played]] = deque(maxlen=RECALL_FRAMES)  # what the latest frames held

    def __len__(self) -> int:
        """Bytes not played yet: queued here, plus those pulled ahead and not sent."""
        if self.ahead is None:
            return self._queued
        unsent = self.ahead.unsent_frames()
        pulls = list(self._pulls)[-unsent:] if unsent > 0 else []
        return self._queued + sum(p.nbytes for frame in pulls for p in frame)

    @property
    def queued_ms(self) -> float:
        return self.fmt.duration_ms(self._queued)

    def write(self, response_id: str, item_id: str, data: bytes) -> int:
        """Queue audio; returns the bytes accepted."""
        room = self.capacity_bytes - self._queued
        if room <= 0:
            self.dropped_bytes += len(data)
            return 0
        if len(data) > room:
            self.dropped_bytes += len(data) - room
            data = data[:room]
        starts = not self._queue
        tail = self._queue[-1] if self._queue else None
        if tail is not None and tail.item_id == item_id and tail.offset == 0 and len(tail.data) < 65536:
            tail.data += data
        else:
            self._queue.append(Segment(response_id, item_id, bytes(data)))
        self._queued += len(data)
        if starts and data and self.on_audio is not None:
            self.on_audio()
        return len(data)

    def pull(self, nbytes: int) -> tuple[bytes | None, list[Played]]:
        """Up to ``nbytes`` of queued audio, zero-padded to ``nbytes`` (None when nothing is queued)."""
        if not self._queue or nbytes <= 0:
            return None, []
        out = bytearray()
        played: list[Played] = []
        while self._queue and len(out) < nbytes:
            seg = self._queue[0]
            take = min(nbytes - len(out), seg.remaining)
            out += seg.data[seg.offset : seg.offset + take]
            seg.offset += take
            self._queued -= take
            played.append(Played(seg.response_id, seg.item_id, take))
            if seg.remaining == 0:
                self._queue.popleft()
        if len(out) < nbytes:
            silence = (
                b"\xff" if self.fmt.codec == "pcmu" else (b"\xd5" if self.fmt.codec == "pcma" else b"\x00")
            )
            out += silence * (nbytes - len(out))
        self._pulls.append(played)
        return bytes(out), played

    def recall_unsent(self) -> list[Played]:
        """Take back the frames the ``ahead`` consumer had pulled and not sent; what they held, oldest first."""
        if self.ahead is None:
            return []
        n = min(self.ahead.recall(), len(self._pulls))
        frames = [self._pulls.pop() for _ in range(n)]
        return [p for frame in reversed(frames) for p in frame]

    def clear(self) -> list[Segment]:
        """Drop everything queued; returns what was dropped."""
        dropped = list(self._queue)
        self._queue.clear()
        self._queued = 0
        return dropped

    def has_response(self, response_id: str) -> bool:
        return any(seg.response_id == response_id for seg in self._queue)


def pull_playback(
    out: MediaOutput, nbytes: int, conversation: Conversation, running: Container[str]
) -> tuple[bytes | None, list[dict[str, Any]]]:
    """One frame for the media track, and the ``output_audio_buffer.started`` / ``.stopped`` events it causes.

    Counts what each assistant item has played (``AudioRecord.played_bytes``); playback of a response stops
    when its audio is drained and it is no longer ``running``.
    """
    events: list[dict[str, Any]] = []
    frame, played = out.pull(nbytes)
    for p in played:
        if out.current_response != p.response_id:
            if out.current_response is not None:
                events.append({"type": "output_audio_buffer.stopped", "response_id": out.current_response})
            out.current_response = p.response_id
            events.append({"type": "output_audio_buffer.started", "response_id": p.response_id})
        record = conversation.audio.get(p.item_id)
        if record is not None:
            record.played_bytes += p.nbytes
    if (
        frame is None
        and out.current_response is not None
        and out.current_response not in running
        and (out.ahead is None or out.ahead.unsent_frames() == 0)  # pulled ahead: stop once all left
    ):
        events.append({"type": "output_audio_buffer.stopped", "response_id": out.current_response})
        out.current_response = None
    return frame, events


def clear_playback(
    out: MediaOutput, conversation: Conversation, last_response_id: str | None
) -> list[dict[str, Any]]:
    """Drop queued audio; each item it belonged to is truncated at what was played (the caller heard no more).

    Returns the ``conversation.item.truncated`` events, then ``output_audio_buffer.cleared``.
    """
    dropped = out.clear()
    recalled = out.recall_unsent()  # pulled ahead, never sent: the caller did not hear them either
    for p in recalled:
        record = conversation.audio.get(p.item_id)
        if record is not None:
            record.played_bytes -= p.nbytes
    first = recalled[0].response_id if recalled else (dropped[0].response_id if dropped else None)
    response_id = out.current_response or first or last_response_id
    events = []
    item_ids = [p.item_id for p in recalled] + [seg.item_id for seg in dropped]
    for item_id in dict.fromkeys(item_ids):
        item = conversation.get(item_id)
        record = conversation.audio.get(item_id)
        if item is not None and record is not None:
            events.append(truncate(conversation, item, int(record.fmt.duration_ms(record.played_bytes))))
    out.current_response = None
    if response_id is not None:
        events.append({"type": "output_audio_buffer.cleared", "response_id": response_id})
    return events
