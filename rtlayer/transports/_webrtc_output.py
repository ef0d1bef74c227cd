"""Which received WebRTC audio frames are the answer, sans-I/O.

A Realtime server's outgoing track never stops: between answers it carries silence, 50 frames a
second. The app wants ``audio`` events for the answer only, tagged with the response and item, so
``OutputGate`` lets frames through between ``output_audio_buffer.started`` and ``.stopped`` (or
``.cleared``) of a response, as the data channel reports them. RTP and the data channel are separate
paths, so the first frames of an answer can arrive just before ``started`` and the last ones just
after ``stopped``: the gate keeps a short pre-roll of received frames (released from the first
non-silent one when ``started`` arrives) and lets up to ``POST_ROLL`` non-silent frames through after
``stopped``. After an interruption (``interrupt`` or ``cleared``) nothing more of that response passes.

Transitions::

    idle    --started(r)-->            playing(r)   (pre-roll from its first non-silent frame released)
    playing --stopped(r)-->            tail(r)      (up to POST_ROLL non-silent frames, then idle)
    playing --cleared/interrupt-->     idle         (r is remembered as interrupted)
    tail    --silent frame/limit-->    idle

It also counts what it let through per item (``delivered_ms``), which is what the app was handed.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

__all__ = ["GatedFrame", "OutputGate"]

PRE_ROLL = 5
POST_ROLL = 3
_MAX_REMEMBERED = 32


@dataclass(frozen=True, slots=True)
class GatedFrame:
    """A frame of answer audio, with what it belongs to."""

    data: bytes
    response_id: str
    item_id: str


class OutputGate:
    """Feeds: ``server_event`` (each data channel event) and ``frame`` (each received frame)."""

    def __init__(self, frame_ms: float = 20.0) -> None:
        self.frame_ms = frame_ms
        self.response_id: str | None = None
        self.state = "idle"  # idle | playing | tail
        self._tail_left = 0
        self._pre_roll: collections.deque[tuple[bytes, bool]] = collections.deque(maxlen=PRE_ROLL)
        self._items: dict[str, str] = {}
        self._interrupted: dict[str, None] = {}
        self._delivered: dict[str, float] = {}
        self.frames_passed = 0
        self.frames_dropped = 0

    # -- what the app was handed ------------------------------------------------------------------

    def item_for(self, response_id: str) -> str:
        return self._items.get(response_id, "")

    def delivered_ms(self, item_id: str) -> float:
        return self._delivered.get(item_id, 0.0)

    @property
    def playing(self) -> bool:
        return self.state != "idle"

    # -- inputs -----------------------------------------------------------------------------------

    def server_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_item.added":
            item = event.get("item")
            response_id = event.get("response_id")
            if isinstance(item, dict) and item.get("type") == "message" and isinstance(response_id, str):
                self._items.setdefault(response_id, str(item.get("id", "")))
                self._trim(self._items)
        elif kind == "output_audio_buffer.started":
            response_id = str(event.get("response_id") or "")
            if response_id in self._interrupted:
                return
            self.response_id = response_id
            self.state = "playing"
        elif kind == "output_audio_buffer.stopped":
            if self.state == "playing" and event.get("response_id") in (None, self.response_id):
                self.state = "tail"
                self._tail_left = POST_ROLL
        elif kind == "output_audio_buffer.cleared":
            if self.response_id is not None and event.get("response_id") in (None, self.response_id):
                self.interrupt()

    def interrupt(self) -> str | None:
        """Stop passing the current response; returns its id if it was playing."""
        was = self.response_id if self.state != "idle" else None
        if self.response_id is not None:
            self._interrupted[self.response_id] = None
            self._trim(self._interrupted)
        self.state = "idle"
        self.response_id = None
        self._pre_roll.clear()
        return was

    def frame(self, data: bytes, silent: bool) -> list[GatedFrame]:
        """One received frame (already in the app's format); returns the frames to hand over."""
        if self.state == "idle":
            self._pre_roll.append((data, silent))
            self.frames_dropped += 1
            return []
        if self.state == "tail":
            if silent or self._tail_left <= 0:
                self.state = "idle"
                self._pre_roll.append((data, silent))
                self.frames_dropped += 1
                return []
            self._tail_left -= 1
        out: list[GatedFrame] = []
        if self._pre_roll:
            released = list(self._pre_roll)
            self._pre_roll.clear()
            first = next((i for i, (_, s) in enumerate(released) if not s), None)
            if first is not None:
                out.extend(self._pass(d) for d, _ in released[first:])
                self.frames_dropped -= len(released) - first
        out.append(self._pass(data))
        return out

    def _pass(self, data: bytes) -> GatedFrame:
        response_id = self.response_id or ""
        item_id = self._items.get(response_id, "")
        self._delivered[item_id] = self._delivered.get(item_id, 0.0) + self.frame_ms
        self._trim(self._delivered)
        self.frames_passed += 1
        return GatedFrame(data, response_id, item_id)

    @staticmethod
    def _trim(mapping: dict[str, Any]) -> None:
        while len(mapping) > _MAX_REMEMBERED:
            del mapping[next(iter(mapping))]
