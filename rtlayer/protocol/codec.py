"""Fast, sound JSON for wire events: ``dumps(event) -> str`` and ``loads(text) -> dict``.

``orjson`` (when installed) encodes typical events 4.5-8x faster than the stdlib (a 20 ms audio delta 4.9x) and
parses them 3-3.8x faster (``bench/test_protocol_codec.py`` measures it against stdlib ``json`` in the same run). Both paths
produce compact UTF-8 JSON with non-ASCII text kept as is, and both reject NaN/Infinity on input, so switching
encoder never changes what a peer receives. A frame that is not a JSON object raises ``ValueError``.

Nesting is bounded: ``loads`` refuses a value nested deeper than ``MAX_DEPTH`` levels with ``TooDeep`` (a
``ValueError``). orjson parses about 1024 levels but serialises only about 254, so a deep value accepted on
the way in (a session config, an item) would make every event that carries it fail on the way out; refusing
it up front keeps every accepted value sendable. ``check_depth`` is the same check for values that arrived
some other way (an HTTP body, a config built in code).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BACKEND", "MAX_DEPTH", "JSONDecodeError", "TooDeep", "check_depth", "dumps", "loads"]

JSONDecodeError = ValueError  # what loads raises on bad input (orjson's and json's errors both subclass it)

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted (a value at the top is at depth 1). Real events and JSON
schemas stay far below it; events wrap what they carry in a few levels more, still far below the ~254
that orjson can serialise."""


class TooDeep(ValueError):
    """A JSON value nested deeper than ``MAX_DEPTH``; ``path`` names where (``session.tools[0].parameters``)."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels at '{path}'")
        self.path = path
        self.limit = limit

    @property
    def param(self) -> str:
        """The top-level field the deep value is under (what an ``error`` event's ``param`` names)."""
        return self.path.split(".", 1)[0].split("[", 1)[0]


def check_depth(value: Any, limit: int = MAX_DEPTH, path: str = "") -> None:
    """Raise ``TooDeep`` if ``value`` nests objects/arrays deeper than ``limit`` levels.

    Iterative (an explicit stack), so a value deeper than Python's recursion limit is measured too.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 1)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = ((f"{where}.{k}" if where else str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            children = ((f"{where}[{i}]", v) for i, v in enumerate(node))
        else:
            continue
        if depth > limit:
            raise TooDeep(where or "(top)", limit)
        for child_path, child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, child_path, depth + 1))


def _checked(value: Any, text: str | bytes) -> Any:
    # Fast path: a text with fewer brackets than the limit cannot nest deeper (audio appends are flat).
    opens = (
        text.count("{") + text.count("[") if isinstance(text, str) else text.count(b"{") + text.count(b"[")
    )
    if opens > MAX_DEPTH:
        check_depth(value)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency, kept optional for minimal installs
    _orjson = None  # type: ignore[assignment]

if _orjson is not None:
    BACKEND = "orjson"
    _dumps_bytes = _orjson.dumps
    _loads = _orjson.loads

    def dumps(event: Any) -> str:
        """Compact JSON text of ``event``."""
        return _dumps_bytes(event).decode()

    def loads(text: str | bytes) -> Any:
        """Parse one JSON value (a wire event is an object; the caller checks); ``TooDeep`` past ``MAX_DEPTH``."""
        return _checked(_loads(text), text)

else:  # pragma: no cover
    BACKEND = "json"
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    _decoder = json.JSONDecoder(parse_constant=_reject_constant)

    def dumps(event: Any) -> str:
        """Compact JSON text of ``event``."""
        return _encoder.encode(event)

    def loads(text: str | bytes) -> Any:
        """Parse one JSON value (a wire event is an object; the caller checks); ``TooDeep`` past ``MAX_DEPTH``."""
        if isinstance(text, (bytes, bytearray)):
            text = text.decode()
        try:
            value = _decoder.decode(text)
        except RecursionError:  # the stdlib parser recurses: far too deep, whatever the limit
            raise TooDeep("(top)", MAX_DEPTH) from None
        return _checked(value, text)
