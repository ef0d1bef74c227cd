"""Fuzzing what a client reads: hostile server events into a ``ClientSession`` (the event views
included), and hostile WAV files into ``read_wav`` (``client_targets.py``), each target in a child process
for a couple of seconds, seeded so that a failure replays (``python -m tests.fuzz client.session --replay N``).
``RTLAYER_FUZZ_LONG=1`` is the night mode (see ``fuzz_runner``)."""

from __future__ import annotations

import pytest
from fuzz_runner import LONG, check_target, load_targets

CLIENT = sorted(name for name in load_targets() if name.startswith(("client.", "wav.")))


def test_the_client_side_readers_have_targets() -> None:
    assert CLIENT == ["client.session", "wav.read"]


@pytest.mark.parametrize("name", CLIENT)
@pytest.mark.timeout(None if LONG else 60)
def test_client_target_finds_nothing(name: str) -> None:
    check_target(name)
