"""Identifiers in the service's formats: ``event_`` + 21 base62 characters, ``item_...``, ``resp_...``.

Ids only need to be unique within a server process and unguessable enough not to collide across sessions;
``secrets`` gives both at negligible cost (one call per id).
"""

from __future__ import annotations

import secrets
import string

__all__ = ["ID_PREFIXES", "new_event_id", "new_id"]

_ALPHABET = string.ascii_letters + string.digits
ID_PREFIXES = frozenset({"event", "item", "resp", "sess", "conv", "call", "rtc", "ek", "evt"})


# Random bytes -> base62 in C: bytes below 248 (= 4 * 62) map to a character, the rest are dropped, so every
# character is equally likely (no modulo bias) and no Python loop runs per character.
_TABLE = bytes((_ALPHABET[b % 62] if b < 248 else "0").encode()[0] for b in range(256))
_REJECT = bytes(range(248, 256))


def _base62(n: int) -> str:
    while True:
        chars = secrets.token_bytes(n + 4).translate(_TABLE, _REJECT)
        if len(chars) >= n:  # fails with probability < 1e-4 for n = 21; then draw again
            return chars[:n].decode()


def new_event_id() -> str:
    """A server event id, ``event_`` + 21 base62 characters, like the service's."""
    return "event_" + _base62(21)


def new_id(prefix: str, length: int = 21) -> str:
    """An object id such as ``item_...``; ``prefix`` is one of ``ID_PREFIXES`` (a typo is a bug: ValueError)."""
    if prefix not in ID_PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}; expected one of {sorted(ID_PREFIXES)}")
    return f"{prefix}_{_base62(length)}"
