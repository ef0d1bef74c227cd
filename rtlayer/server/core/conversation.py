"""The conversation of one server session: ordered items, with the audio facts truncation needs.

Items are the dicts the client sees. Beside them the conversation keeps, per item, what events do not carry:
the byte count and format of assistant audio (``conversation.item.truncate`` is checked against the audio's
real length), and the PCM16 24 kHz audio of the last few user audio items (responders echo it). Stored audio
is bounded (``MAX_USER_AUDIO_ITEMS``); older audio is dropped, its item and duration kept.

Order is a doubly linked list over a dict (id -> links), so inserting after any item (``"root"`` included),
finding an item's predecessor and deleting are O(1): 10,000 inserts at the root once stalled every session for
seconds when each one rebuilt an ordered dict. Memory is bounded in bytes (``max_bytes``: each item's size in memory
plus the user audio kept): past it the oldest items are dropped and counted, like the service's truncation of a
long conversation; ``fits`` tells a caller whether one new item could ever fit.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from rtlayer.audio import AudioFormat

__all__ = ["DEFAULT_MAX_BYTES", "MAX_USER_AUDIO_ITEMS", "AudioRecord", "Conversation"]

MAX_USER_AUDIO_ITEMS = 4
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
"""Items plus kept user audio of one conversation; ``ServerLimits.max_conversation_bytes``."""
_CONTAINER_BYTES = 64  # what a small dict or list costs beside its contents
_SCALAR_BYTES = 32  # a number, a boolean, None


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


@dataclass(slots=True)
class _Node:
    item: dict[str, Any]
    size: int
    prev: str | None = None
    next: str | None = None


@dataclass
class Conversation:
    """Items in order, by id, within ``max_bytes``."""

    id: str
    max_bytes: int = DEFAULT_MAX_BYTES
    audio: dict[str, AudioRecord] = field(default_factory=dict)
    dropped_items: int = 0
    dropped_bytes: int = 0
    nbytes: int = 0
    """Bytes held: each item's size in memory plus the user audio kept."""
    _nodes: dict[str, _Node] = field(default_factory=dict)
    _first: str | None = None
    _last: str | None = None

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, item_id: str) -> dict[str, Any] | None:
        node = self._nodes.get(item_id)
        return node.item if node is not None else None

    def items(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        nodes, key = self._nodes, self._first
        while key is not None:
            node = nodes[key]
            out.append(node.item)
            key = node.next
        return out

    def last_id(self) -> str | None:
        return self._last

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item before ``item_id`` (None for the first, or an unknown id)."""
        node = self._nodes.get(item_id)
        return node.prev if node is not None else None

    @staticmethod
    def item_bytes(item: dict[str, Any]) -> int:
        """What an item costs in memory: its strings' sizes plus a little per value and container.

        A walk over the item's values, not a serialization: a 2 MB text costs O(1) to measure.
        """
        total = 0
        stack: list[Any] = [item]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                total += sys.getsizeof(value)
            elif isinstance(value, dict):
                total += _CONTAINER_BYTES
                stack.extend(value.values())
                stack.extend(value.keys())
            elif isinstance(value, list):
                total += _CONTAINER_BYTES
                stack.extend(value)
            else:
                total += _SCALAR_BYTES
        return total

    def fits(self, nbytes: int) -> bool:
        """Whether an item of ``nbytes`` (``item_bytes``, plus audio kept with it) fits in an empty conversation."""
        return nbytes <= self.max_bytes

    def add(
        self,
        item: dict[str, Any],
        previous_item_id: str | None = None,
        *,
        append: bool = True,
        nbytes: int | None = None,
    ) -> str | None:
        """Insert ``item`` after ``previous_item_id`` (or at the end when ``append``); returns the id before it.

        ``previous_item_id`` must exist (the caller checks); with ``append=False`` and no previous id, the item
        goes first ("root"). Older items are dropped (and counted) while the conversation is over its bytes.
        ``nbytes``: the item's ``item_bytes`` when the caller already measured it.
        """
        item_id = item["id"]
        prev = self._last if previous_item_id is None and append else previous_item_id
        nxt = self._nodes[prev].next if prev is not None else self._first
        node = _Node(item, self.item_bytes(item) if nbytes is None else nbytes, prev, nxt)
        self._nodes[item_id] = node
        if prev is None:
            self._first = item_id
        else:
            self._nodes[prev].next = item_id
        if nxt is None:
            self._last = item_id
        else:
            self._nodes[nxt].prev = item_id
        self.nbytes += node.size
        self._bound(keep=item_id)
        return prev

    def remeasure(self, item_id: str) -> None:
        """An item grew (an answer's text streamed into it): count its new size, within the bound."""
        node = self._nodes.get(item_id)
        if node is None:
            return
        size = self.item_bytes(node.item)
        self.nbytes += size - node.size
        node.size = size
        self._bound(keep=item_id)

    def delete(self, item_id: str) -> bool:
        node = self._nodes.pop(item_id, None)
        if node is None:
            return False
        if node.prev is None:
            self._first = node.next
        else:
            self._nodes[node.prev].next = node.next
        if node.next is None:
            self._last = node.prev
        else:
            self._nodes[node.next].prev = node.prev
        self.nbytes -= node.size + self._forget_audio(item_id)
        return True

    def keep_user_audio(self, item_id: str, pcm16_24k: bytes) -> None:
        """Remember a user item's audio (24 kHz PCM16), forgetting the audio of older items beyond the bound."""
        self.nbytes -= self._forget_audio(item_id)
        record = AudioRecord(AudioFormat("pcm16", 24000), len(pcm16_24k), pcm16_24k=pcm16_24k)
        self.audio[item_id] = record
        self.nbytes += len(pcm16_24k)
        with_pcm = [k for k, r in self.audio.items() if r.pcm16_24k is not None]
        for old in with_pcm[:-MAX_USER_AUDIO_ITEMS]:
            kept = self.audio[old].pcm16_24k
            self.nbytes -= len(kept or b"")
            self.audio[old].pcm16_24k = None
        self._bound(keep=item_id)

    def last_user_audio(self) -> bytes | None:
        """The audio of the most recent user item that has audio kept."""
        key = self._last
        while key is not None:
            record = self.audio.get(key)
            if record is not None and record.pcm16_24k is not None:
                return record.pcm16_24k
            key = self._nodes[key].prev
        return None

    def _forget_audio(self, item_id: str) -> int:
        record = self.audio.pop(item_id, None)
        return len(record.pcm16_24k) if record is not None and record.pcm16_24k is not None else 0

    def _bound(self, keep: str) -> None:
        """Drop the oldest items (never ``keep``) while over ``max_bytes``."""
        while self.nbytes > self.max_bytes:
            oldest = self._first if self._first != keep else self._nodes[keep].next
            if oldest is None:
                return  # ``keep`` alone is over: the caller checked ``fits``, so it is an answer growing
            before = self.nbytes
            self.delete(oldest)
            self.dropped_items += 1
            self.dropped_bytes += before - self.nbytes
