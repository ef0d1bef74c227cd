"""The events are typed for the user: a script is checked by mypy, as a user's editor or CI would.

``on("audio", ...)`` hands the listener an ``AudioEvent``, ``on("*", ...)`` a ``dict``; ``async with``
gives the transport's own class; ``async for event in transport`` yields raw event dicts; a typo in an
event name, or in a field of the event, is a type error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[1]

USER_SCRIPT = """
from rtlayer import FetchUpgradeTransport, WebRTCTransport, WebSocketTransport
from rtlayer.transport import RealtimeTransportLayer


async def main() -> None:
    async with WebSocketTransport() as t:
        reveal_type(t)  # 1
        reveal_type(t.on("audio", lambda e: e))  # 2
        reveal_type(t.on("*", lambda e: e))  # 3
        reveal_type(t.on("response.done", lambda e: e))  # 4
        reveal_type(t.once("function_call", lambda e: e.arguments))  # 5
        reveal_type(t.on("connection_change", lambda e: e.status))  # 6
        async for event in t:
            reveal_type(event)  # 7
    async with WebRTCTransport() as w:
        reveal_type(w)  # 8
    async with FetchUpgradeTransport() as f:
        reveal_type(f)  # 9
    contract: RealtimeTransportLayer = WebRTCTransport()
    reveal_type(contract.off("usage_update", lambda u: u.total_tokens))  # 10
    t.add_listener("name.known.at.run.time", print)


async def mistakes(t: WebSocketTransport) -> None:
    t.on("audoi", lambda e: None)  # MISTAKE 1
    t.on("audio", lambda e: e.dta)  # MISTAKE 2
"""

EXPECTED = {
    1: "rtlayer.transports.websocket.WebSocketTransport",
    2: "def (rtlayer.transport_events.AudioEvent) -> rtlayer.transport_events.AudioEvent",
    3: "def (dict[str, Any]) -> dict[str, Any]",
    4: "def (dict[str, Any]) -> dict[str, Any]",
    5: "def (rtlayer.transport_events.FunctionCallEvent) -> str",
    6: "def (rtlayer.transport_events.ConnectionChangeEvent) -> rtlayer.transport_events.TransportStatus",
    7: "dict[str, Any]",
    8: "rtlayer.transports.webrtc.WebRTCTransport",
    9: "rtlayer.transports.fetch_upgrade.FetchUpgradeTransport",
    10: "def (rtlayer.transport_events.Usage) -> int",
}


@pytest.mark.timeout(180)  # a cold mypy cache checks rtlayer first (~30 s); warm, about 3 s
def test_event_names_type_their_listeners_and_typos_fail(tmp_path: Path) -> None:
    script = tmp_path / "user_app.py"
    script.write_text(USER_SCRIPT)
    lines = USER_SCRIPT.splitlines()
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--show-error-codes",
            "--no-pretty",
            "--hide-error-context",
            "--follow-imports=silent",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--config-file",
            "",
            str(script),
        ]
    )
    assert status == 1, stdout + stderr  # the two mistakes, and nothing else
    revealed: dict[int, str] = {}
    errors: dict[int, str] = {}
    for line in stdout.splitlines():
        match = re.match(r".*user_app\.py:(\d+): (note|error): (.*)", line)
        if not match:
            continue
        source = lines[int(match.group(1)) - 1]
        if match.group(2) == "note" and match.group(3).startswith("Revealed type is"):
            number = int(source.rsplit("# ", 1)[1])
            revealed[number] = match.group(3).removeprefix("Revealed type is ").strip('"')
        elif match.group(2) == "error":
            errors[int(match.group(1))] = source.strip()
    assert revealed == EXPECTED
    assert sorted(source.rsplit("# ", 1)[1] for source in errors.values()) == ["MISTAKE 1", "MISTAKE 2"]


def test_every_event_name_has_its_overload() -> None:
    """A convenience event or server event type added later cannot be forgotten in the typed ``on``."""
    import ast
    import inspect
    from typing import get_args

    from rtlayer import _event_names
    from rtlayer.protocol.events import SERVER_EVENT_TYPES
    from rtlayer.transport_events import TRANSPORT_EVENT_NAMES

    typed: set[str] = set()
    tree = ast.parse(inspect.getsource(_event_names.Subscribe))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__call__":
            annotation = (node.args.posonlyargs + node.args.args)[1].annotation
            assert annotation is not None
            typed.update(re.findall(r"Literal\['([^']+)'\]", ast.unparse(annotation)))
    raw = set(get_args(_event_names.RawEventName))
    assert set(TRANSPORT_EVENT_NAMES) <= typed
    assert raw == (SERVER_EVENT_TYPES - {"error"}) | {"*"}
    assert not typed & raw
