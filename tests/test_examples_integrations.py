"""The integration examples run, as a user runs them (a subprocess, the embedded server)."""

from __future__ import annotations

import re

import pytest
from test_examples import run_example

pytestmark = pytest.mark.timeout(60)


def test_agents_over_webrtc() -> None:
    out = run_example("agents_over_webrtc.py")
    assert re.search(r"^call rtc_\w+ connected$", out, re.MULTILINE), out
    assert 'tool: get_weather({"city": "Paris"})' in out
    assert "tool returned: sunny and 21 degrees in Paris" in out
    said = re.findall(r"agent said: (.*) \((\d+) ms of its audio received over WebRTC\)", out)
    assert [text for text, _ in said] == [
        "It is sunny and 21 degrees in Paris.",
        "I heard you loud and clear.",
    ]
    # Each answer was spoken, and its audio reached the agent over the call.
    assert all(int(ms) > 500 for _, ms in said), said
