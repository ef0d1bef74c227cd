"""Test kits for voice apps: the embedded server as a pytest plugin, a scripted model, assertions, and the
provider-side phone simulator (``rtlayer.testing.phone``: a Twilio, Telnyx, Plivo, Exotel or Vonage media
stream calling the app).

rtlayer has a real Realtime server; testing a voice app against it exercises the same sockets,
events and timing the app meets in production, with answers the test decides:

```python
# conftest.py
import pytest
from rtlayer.testing import FunctionCallPart, Rule, ScriptedResponder, server_scope

@pytest.fixture(scope=server_scope)
def realtime_responder():
    return ScriptedResponder([
        Rule(words=("weather",), calls=(FunctionCallPart("get_weather", {"city": "Paris"}),), require_tools=True),
        Rule(after_tool="get_weather", say="It is sunny in Paris."),
    ])

# test_app.py
async def test_the_app_answers_the_weather(realtime_server):
    transport = WebSocketTransport()
    log = EventLog.of(transport)
    await transport.connect(url=realtime_server.ws_url, api_key="test", initial_session_config=MY_APP_CONFIG)
    ...
    assert_tool_called(log, "get_weather", {"city": "Paris"})
    assert_turn_answered(log, transcript_contains="sunny")
```

The fixtures (``realtime_server``, ``realtime_responder``, ``realtime_server_options``,
``realtime_server_factory``) come from ``rtlayer.testing.plugin``, which pytest loads through its
``pytest11`` entry point once rtlayer is installed. Scope: the ini option ``rtlayer_server_scope``.

Names are looked up on first use: the plugin is loaded by every pytest run where rtlayer is installed, so
importing this package must cost nothing until a test asks for the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtlayer.server.responders import (
        AudioPart,
        EchoResponder,
        FunctionCallPart,
        Responder,
        ResponseRequest,
        Rule,
        ScriptedResponder,
        TextPart,
    )
    from rtlayer.server.state import ServerLimits
    from rtlayer.testing.assertions import (
        EventLog,
        assert_tool_called,
        assert_truncated_at,
        assert_turn_answered,
    )
    from rtlayer.testing.phone import PhoneSimulator
    from rtlayer.testing.plugin import server_scope
    from rtlayer.testing.server_thread import BackgroundServer

_HOMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "AudioPart",
            "EchoResponder",
            "FunctionCallPart",
            "Responder",
            "ResponseRequest",
            "Rule",
            "ScriptedResponder",
            "TextPart",
        ),
        "rtlayer.server.responders",
    ),
    "ServerLimits": "rtlayer.server.state",
    "EventLog": "rtlayer.testing.assertions",
    "assert_tool_called": "rtlayer.testing.assertions",
    "assert_truncated_at": "rtlayer.testing.assertions",
    "assert_turn_answered": "rtlayer.testing.assertions",
    "PhoneSimulator": "rtlayer.testing.phone",
    "server_scope": "rtlayer.testing.plugin",
    "BackgroundServer": "rtlayer.testing.server_thread",
}

__all__ = [
    "AudioPart",
    "BackgroundServer",
    "EchoResponder",
    "EventLog",
    "FunctionCallPart",
    "PhoneSimulator",
    "Responder",
    "ResponseRequest",
    "Rule",
    "ScriptedResponder",
    "ServerLimits",
    "TextPart",
    "assert_tool_called",
    "assert_truncated_at",
    "assert_turn_answered",
    "server_scope",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rtlayer.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
