"""The exceptions tree: the drawing in ``rtlayer.exceptions`` is the class hierarchy, and a refusal renders
the same way on a session and on an HTTP route."""

from __future__ import annotations

import re

import rtlayer.exceptions as exceptions
from rtlayer.exceptions import RemoteProtocolError, RequestRefused


def _drawn_tree() -> dict[str, str]:
    """Each class of the docstring's drawing and the class drawn as its parent."""
    doc = exceptions.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.split("The tree::", 1)[1].splitlines():
        found = re.match(r"^\s*([│ ]*)(?:[├└]── )?([A-Z]\w+)(?=\s|$)", line)
        if found is None:
            continue
        depth = len(found.group(1)) // 4 + (1 if "──" in line else 0)
        name = found.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_drawn_tree_is_the_class_hierarchy_and_lists_every_exception() -> None:
    drawn = _drawn_tree()
    assert set(drawn) | {"RtlayerError"} == set(exceptions.__all__)
    for name, parent in drawn.items():
        cls, base = getattr(exceptions, name), getattr(exceptions, parent)
        assert base in cls.__mro__[1:2] or cls.__bases__[0] is base, (name, parent)


def test_a_refusal_is_one_error_event_and_one_http_body() -> None:
    refused = RequestRefused("invalid_value", "Invalid 'x'.", "session.x")
    assert isinstance(refused, RemoteProtocolError) and isinstance(refused, ValueError)
    assert str(refused) == "Invalid 'x'."
    assert refused.error_event("event_1") == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Invalid 'x'.",
            "param": "session.x",
            "event_id": "event_1",
        },
    }
    assert refused.status == 400
    assert refused.error_body() == {
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Invalid 'x'.",
            "param": "session.x",
        }
    }


def test_the_error_type_follows_the_http_status_unless_given() -> None:
    assert RequestRefused("rate_limit_exceeded", "slow down", status=429).type == "rate_limit_error"
    assert RequestRefused("server_error", "oops", status=500).type == "server_error"
    assert RequestRefused("call_not_found", "no", status=404).type == "invalid_request_error"
    assert RequestRefused("x", "y", type="server_error").type == "server_error"
