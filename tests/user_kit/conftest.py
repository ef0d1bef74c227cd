"""How a user scripts the model for every test of a folder: override ``realtime_responder``."""

from __future__ import annotations

import pytest

from rtlayer.testing import FunctionCallPart, Rule, ScriptedResponder, server_scope


@pytest.fixture(scope=server_scope)
def realtime_responder() -> ScriptedResponder:
    return ScriptedResponder(
        [
            Rule(
                words=("weather", "forecast"),
                calls=(FunctionCallPart("get_weather", {"city": "Paris"}),),
                require_tools=True,  # a session without the tool is not asked to call it
            ),
            Rule(after_tool="get_weather", say="It is sunny in Paris."),
            Rule(words=("story",), say="Once upon a time there was a very long answer.", delay_ms=400),
        ],
        default="I only know the weather.",
    )
