"""Fuzzing what the media-stream bridge reads from a telephony provider, and what the provider simulator reads
from an app (``media_targets.py``): each target in
a child process for a couple of seconds, seeded so that a failure replays (``python -m tests.fuzz
media.dialect --replay N``). ``RTLAYER_FUZZ_LONG=1`` is the night mode (see ``fuzz_runner``)."""

from __future__ import annotations

import pytest
from fuzz_runner import LONG, check_target, load_targets

MEDIA = sorted(name for name in load_targets() if name.startswith("media."))


def test_the_media_stream_readers_have_targets() -> None:
    assert MEDIA == ["media.dialect", "media.simulator"]


@pytest.mark.parametrize("name", MEDIA)
@pytest.mark.timeout(None if LONG else 60)
def test_media_target_finds_nothing(name: str) -> None:
    check_target(name)
