"""What the client knows about one assistant audio item, and the playout clock used without a tracker."""

from __future__ import annotations

__all__ = ["AudioItem", "PlayoutClock"]


class PlayoutClock:
    """When the app gives no tracker: audio is assumed to play in real time, in order, from its arrival.

    ``push`` schedules each chunk after the previous one (or now, after a gap); what has been heard at
    ``now`` is what was received minus what is still queued.
    """

    __slots__ = ("queued_until", "received_ms")

    def __init__(self) -> None:
        self.queued_until: float | None = None
        self.received_ms = 0.0

    def push(self, ms: float, now: float) -> None:
        start = now if self.queued_until is None or self.queued_until < now else self.queued_until
        self.queued_until = start + ms / 1000.0
        self.received_ms += ms

    def played_ms(self, now: float) -> float:
        if self.queued_until is None:
            return 0.0
        return max(0.0, self.received_ms - max(0.0, (self.queued_until - now) * 1000.0))

    def playing(self, now: float) -> bool:
        return self.queued_until is not None and self.queued_until > now


class AudioItem:
    """One assistant item's audio: how much arrived (in the session's output format), whether it is done."""

    __slots__ = ("clock", "content_index", "done", "item_id", "received_bytes", "response_id")

    def __init__(self, item_id: str, content_index: int, response_id: str) -> None:
        self.item_id = item_id
        self.content_index = content_index
        self.response_id = response_id
        self.received_bytes = 0
        self.done = False
        self.clock = PlayoutClock()
