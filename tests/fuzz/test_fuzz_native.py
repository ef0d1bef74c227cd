"""Fuzzing rtlayer_native: every public function and class (``native_targets.py``), each target in its
own child process for a couple of seconds (about 17 s for all), seeded so that a failure replays.

A crash, a hang, memory growth or any error that rtlayer_native does not document fails the target's
test, with the command that replays the input. ``RTLAYER_FUZZ_LONG=1`` runs each target for
``RTLAYER_FUZZ_INPUTS`` inputs (default 1,000,000) instead: the night mode (see ``fuzz_runner``).
"""

from __future__ import annotations

import pytest
from fuzz_runner import LONG, check_target, load_targets

NATIVE = sorted(name for name in load_targets() if name.startswith("native."))


def test_every_public_name_of_rtlayer_native_has_a_target() -> None:
    import rtlayer_native as rn

    covered = {
        "native.g711": {"ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode"},
        "native.pcm": {
            "pcm16_to_float32", "float32_to_pcm16", "apply_gain", "rms", "peak", "rms_dbfs", "peak_dbfs",
            "stereo_to_mono", "mono_to_stereo",
        },
        "native.resampler": {"Resampler", "SUPPORTED_RATES", "QUALITIES"},
        "native.transcoder": {"Transcoder", "CODECS"},
        "native.ring": {"AudioRing"},
        "native.framer": {"Framer"},
        "native.pacer": {"Pacer", "monotonic_ns"},
    }  # fmt: skip
    assert set(covered) <= set(NATIVE)
    assert set().union(*covered.values()) == set(rn.__all__)


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.timeout(None if LONG else 60)
def test_native_target_finds_nothing(name: str) -> None:
    check_target(name, ci_minimum=50)  # 50: even under load
