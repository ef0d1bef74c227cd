"""The exceptions tree: the drawing in ``rtlayer.exceptions`` is the class hierarchy of every exception class
defined in ``rtlayer`` (read from the source), and a refusal renders the same way on a session and on an
HTTP route."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import rtlayer.exceptions as exceptions
from rtlayer.exceptions import RemoteProtocolError, RequestRefused

PACKAGE = Path(__file__).resolve().parent.parent / "rtlayer"
OUTSIDE_ON_PURPOSE = {"MissingExtraError", "LoadError"}  # named below the drawing, with why


def _drawn_tree() -> dict[str, str]:
    """Each class of the docstring's drawing and the class drawn as its parent."""
    doc = exceptions.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.split("::", 1)[1].split("\n\n", 2)[1].splitlines():
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


def _exception_classes() -> dict[str, str]:
    """Every exception class defined in ``rtlayer`` (read from the source): name -> its first base's name."""
    bases: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.bases:
                first = node.bases[0]
                bases[node.name] = first.id if isinstance(first, ast.Name) else ast.unparse(first)
    known = {"Exception", "ValueError", "ImportError", "TimeoutError"}
    found: dict[str, str] = {}
    changed = True
    while changed:  # the closure: classes whose first base is an exception
        changed = False
        for name, base in bases.items():
            if name not in found and (base in known or base in found):
                found[name] = base
                changed = True
    return found


def test_the_drawn_tree_is_the_class_hierarchy() -> None:
    drawn = _drawn_tree()
    assert set(exceptions.__all__) <= set(drawn) | {"RtlayerError"}
    for name, parent in drawn.items():
        if name in exceptions.__all__:
            assert getattr(exceptions, name).__bases__[0] is getattr(exceptions, parent), (name, parent)


def test_every_exception_class_of_rtlayer_is_drawn_or_named_as_outside() -> None:
    defined = _exception_classes()
    drawn = _drawn_tree()
    assert {name: defined[name] for name in drawn} == drawn
    outside = set(defined) - set(drawn) - {"RtlayerError"}
    assert outside == OUTSIDE_ON_PURPOSE
    assert all(name in (exceptions.__doc__ or "") for name in outside)


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
