"""Fast, sound JSON for wire events: ``dumps(event) -> str`` and ``loads(text) -> dict``.

``orjson`` (when installed) encodes typical events 4.5-8x faster than the stdlib (a 20 ms audio delta 4.9x) and
parses them 3-3.8x faster (``bench/test_protocol_codec.py`` measures it against stdlib ``json`` in the same run). Both paths
produce compact UTF-8 JSON with non-ASCII text kept as is, and both reject NaN/Infinity on input, so switching
encoder never changes what a peer receives. A frame that is not a JSON object raises ``ValueError``.

Nesting is bounded: ``loads`` refuses a value nested deeper than ``MAX_DEPTH`` levels with ``TooDeep`` (a
``ValueError``). orjson parses about 1024 levels but serialises only about 254, so a deep value accepted on
the way in (a session config, an item) would make every event that carries it fail on the way out; refusing
it up front keeps every accepted value sendable. A text that could nest past what orjson survives is
parsed by the stdlib (``ORJSON_SAFE_OPENS``). ``check_depth`` is the same check for values that arrived
some other way (an HTTP body, a config built in code).
"""

from __future__ import annotations

import binascii
import json
import math
from typing import Any

from rtlayer.exceptions import RemoteProtocolError
from rtlayer_native._b64 import b64decode_plain, b64encode_str

__all__ = [
    "BACKEND",
    "MAX_DEPTH",
    "ORJSON_SAFE_CHARS",
    "ORJSON_SAFE_OPENS",
    "JSONDecodeError",
    "TooDeep",
    "b64decode_audio",
    "b64encode_audio",
    "check_depth",
    "dumps",
    "loads",
    "loads_without_depth_check",
]


def b64decode_audio(text: str | bytes) -> bytes:
    """The bytes of an event's base64 audio (``audio`` of an append, ``delta`` of an output delta), by the
    strict rules of ``base64.b64decode(text, validate=True)``; ``ValueError`` (``binascii.Error``) otherwise.

    Plain base64 (whole groups of the standard alphabet, padding only closing the last one: what every encoder
    writes) is decoded by ``rtlayer_native`` at about a third of binascii's cost; anything else goes to
    strict ``binascii``, whose rules alone decide what is refused (a non-ASCII str raises ``ValueError``
    there)."""
    data = b64decode_plain(text)
    return binascii.a2b_base64(text, strict_mode=True) if data is None else data


def b64encode_audio(data: bytes | bytearray | memoryview) -> str:
    """Standard padded base64 of audio, as the ``str`` an event carries: ``rtlayer_native`` for ``bytes``
    (about half of binascii's cost, and no second step to decode its bytes), binascii for other buffers."""
    if type(data) is bytes:
        return b64encode_str(data)
    return binascii.b2a_base64(data, newline=False).decode("ascii")


JSONDecodeError = ValueError  # what loads raises on bad input (orjson's and json's errors both subclass it)

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted (a value at the top is at depth 1). Real events and JSON
schemas stay far below it; events wrap what they carry in a few levels more, still far below the ~254
that orjson can serialise."""


class TooDeep(RemoteProtocolError, ValueError):
    """A JSON value nested deeper than ``MAX_DEPTH``; ``path`` names where (``session.tools[0].parameters``)."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels at '{path}'")
        self.path = path
        self.limit = limit

    @property
    def param(self) -> str | None:
        """The top-level field the deep value is under (an ``error`` event's ``param``), None if unknown."""
        if self.path == "(top)":
            return None
        return self.path.split(".", 1)[0].split("[", 1)[0] or None

    @property
    def what(self) -> str:
        """How an error message names it: ``'session'``, or ``the message``."""
        return f"'{self.param}'" if self.param else "the message"


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit``: a walk of containers only, no paths built."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        children = node.values() if type(node) is dict else node
        for child in children:
            if type(child) is dict or type(child) is list:
                if depth >= limit:
                    return True
                push((child, depth + 1))
    return False


def check_depth(value: Any, limit: int = MAX_DEPTH, path: str = "") -> None:
    """Raise ``TooDeep`` if ``value`` nests objects/arrays deeper than ``limit`` levels.

    Iterative (an explicit stack), so a value deeper than Python's recursion limit is measured too. The
    path of the deep branch is only worked out once a value is known to be too deep.
    """
    if not isinstance(value, (dict, list)) or not _too_deep(value, limit):
        return
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


def _opens(text: str | bytes) -> int:
    """How many objects and arrays ``text`` could open at most (a C-speed count, no parse)."""
    if isinstance(text, str):
        return text.count("{") + text.count("[")
    return text.count(b"{") + text.count(b"[")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _finite_float(text: str) -> float:
    """A JSON number as a float, refused when it overflows (``1e400``), as orjson refuses it: an infinity
    would reach ``int()`` somewhere as an ``OverflowError`` no caller expects."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _stdlib_loads(text: str | bytes) -> Any:
    """The stdlib parser: slower, but it stops a deep document with ``RecursionError`` instead of crashing."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid UTF-8: {exc}") from None
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise TooDeep("(top)", MAX_DEPTH) from None


ORJSON_SAFE_CHARS = 10_000
"""A text this short cannot nest deep enough to hurt orjson (it survives 50,000 levels): parsed at once."""
ORJSON_SAFE_OPENS = 1000
"""orjson (3.8) parses nesting without a limit of its own and crashes the process (SIGSEGV) somewhere
between 50,000 and 100,000 levels: a 200 kB frame of ``[`` brought the whole server down. A text that can
open more than this many objects/arrays is parsed by the stdlib instead; nearly every event opens far fewer
(audio appends: none)."""

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
        if len(text) <= ORJSON_SAFE_CHARS:  # the hot path: audio appends, small events
            value = _loads(text)
            # A flat object (an audio append) cannot be too deep, and fewer brackets than MAX_DEPTH cannot
            # nest deeper either. Inline, no helper call: this runs fifty times a second per stream.
            if type(value) is dict:
                for item in value.values():
                    kind = type(item)
                    if kind is dict or kind is list:
                        if _opens(text) > MAX_DEPTH:
                            check_depth(value)
                        break
            elif type(value) is list and _opens(text) > MAX_DEPTH:
                check_depth(value)
            return value
        opens = _opens(text)
        value = _loads(text) if opens <= ORJSON_SAFE_OPENS else _stdlib_loads(text)
        if opens > MAX_DEPTH:
            check_depth(value)
        return value

    def loads_without_depth_check(text: str | bytes) -> Any:
        """Parse one JSON value as ``loads`` does, minus the ``MAX_DEPTH`` check: still safe from the
        parser's own limits (``ValueError`` only), for a reader that looks up known keys and checks the depth
        of what it keeps, prints or passes on (a provider's media stream: fifty media frames and fifty marks
        a second, where the check cost as much as the parse)."""
        if len(text) <= ORJSON_SAFE_CHARS:
            return _loads(text)
        return _loads(text) if _opens(text) <= ORJSON_SAFE_OPENS else _stdlib_loads(text)

else:  # pragma: no cover
    BACKEND = "json"

    def dumps(event: Any) -> str:
        """Compact JSON text of ``event``."""
        return _encoder.encode(event)

    def loads(text: str | bytes) -> Any:
        """Parse one JSON value (a wire event is an object; the caller checks); ``TooDeep`` past ``MAX_DEPTH``."""
        value = _stdlib_loads(text)
        if _opens(text) > MAX_DEPTH:
            check_depth(value)
        return value

    def loads_without_depth_check(text: str | bytes) -> Any:
        """Parse one JSON value as ``loads`` does, minus the ``MAX_DEPTH`` check (see the orjson variant)."""
        return _stdlib_loads(text)
