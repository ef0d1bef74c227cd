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


def _base62(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def new_event_id() -> str:
    """A server event id, ``event_`` + 21 base62 characters, like the service's."""
    return "event_" + _base62(21)


def new_id(prefix: str, length: int = 21) -> str:
    """An object id such as ``item_...``; ``prefix`` is one of ``ID_PREFIXES`` (a typo is a bug: ValueError)."""
    if prefix not in ID_PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}; expected one of {sorted(ID_PREFIXES)}")
    return f"{prefix}_{_base62(length)}"
