"""The conversation of one server session: ordered items, with the audio facts truncation needs.

Items are the dicts the client sees. Beside them the conversation keeps, per item, what events do not carry:
the byte count and format of assistant audio (``conversation.item.truncate`` is checked against the audio's
real length), and the PCM16 24 kHz audio of the last few user audio items (responders echo it). Stored audio
is bounded (``MAX_USER_AUDIO_ITEMS``); older audio is dropped, its item and duration kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from rtlayer.audio import AudioFormat

__all__ = ["MAX_ITEMS", "MAX_USER_AUDIO_ITEMS", "AudioRecord", "Conversation"]

MAX_USER_AUDIO_ITEMS = 4
MAX_ITEMS = 10_000  # beyond this the oldest items are dropped (and counted), like the service's truncation


@dataclass(slots=True)
class AudioRecord:
    """Audio facts of one item: its format and how many bytes of it exist (or were kept after a truncate)."""

    fmt: AudioFormat
    nbytes: int = 0
    played_bytes: int = 0  # media mode: how much of it went out on the media track
    pcm16_24k: bytes | None = None  # user audio, kept for the last few items only
    truncated_ms: int | None = None

    @property
    def duration_ms(self) -> float:
        return self.fmt.duration_ms(self.nbytes)


@dataclass
class Conversation:
    """Items in order, by id."""

    id: str
    _items: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    audio: dict[str, AudioRecord] = field(default_factory=dict)
    dropped_items: int = 0

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, item_id: str) -> dict[str, Any] | None:
        return self._items.get(item_id)

    def items(self) -> list[dict[str, Any]]:
        return list(self._items.values())

    def last_id(self) -> str | None:
        return next(reversed(self._items), None) if self._items else None

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item before ``item_id`` (None for the first)."""
        prev = None
        for key in self._items:
            if key == item_id:
                return prev
            prev = key
        return None

    def add(
        self, item: dict[str, Any], previous_item_id: str | None = None, *, append: bool = True
    ) -> str | None:
        """Insert ``item`` after ``previous_item_id`` (or at the end when ``append``); returns the id before it.

        ``previous_item_id`` must exist (the caller checks); with ``append=False`` and no previous id, the item
        goes first ("root").
        """
        item_id = item["id"]
        if previous_item_id is None and append:
            prev = self.last_id()
            self._items[item_id] = item
        else:
            prev = previous_item_id
            rest: list[tuple[str, dict[str, Any]]] = []
            if previous_item_id is None:
                rest = list(self._items.items())
                self._items.clear()
            else:
                keys = list(self._items)
                cut = keys.index(previous_item_id) + 1
                rest = [(k, self._items.pop(k)) for k in keys[cut:]]
            self._items[item_id] = item
            self._items.update(rest)
        while len(self._items) > MAX_ITEMS:
            old, _ = self._items.popitem(last=False)
            self.audio.pop(old, None)
            self.dropped_items += 1
        return prev

    def delete(self, item_id: str) -> bool:
        self.audio.pop(item_id, None)
        return self._items.pop(item_id, None) is not None

    def keep_user_audio(self, item_id: str, pcm16_24k: bytes) -> None:
        """Remember a user item's audio (24 kHz PCM16), forgetting the audio of older items beyond the bound."""
        record = AudioRecord(AudioFormat("pcm16", 24000), len(pcm16_24k), pcm16_24k=pcm16_24k)
        self.audio[item_id] = record
        with_pcm = [k for k, r in self.audio.items() if r.pcm16_24k is not None]
        for old in with_pcm[:-MAX_USER_AUDIO_ITEMS]:
            self.audio[old].pcm16_24k = None

    def last_user_audio(self) -> bytes | None:
        """The audio of the most recent user item that has audio kept."""
        for item_id in reversed(self._items):
            record = self.audio.get(item_id)
            if record is not None and record.pcm16_24k is not None:
                return record.pcm16_24k
        return None
