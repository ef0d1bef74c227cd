"""``noise_reduction`` has an effect: a room's hum under the gate no longer opens a turn, speech still does."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import Driver, of_type, silence, wav

import rtlayer_native
from rtlayer.server.core.noise_reduction import NoiseGate


def hum(dbfs: float, seconds: float) -> bytes:
    """A 120 Hz hum (a fan, a transformer) at ``dbfs`` RMS, PCM16 24 kHz."""
    t = np.arange(int(24000 * seconds)) / 24000
    amplitude = 10 ** (dbfs / 20) * np.sqrt(2) * 32767
    return bytes((amplitude * np.sin(2 * np.pi * 120 * t)).astype("<i2").tobytes())


def session(noise_reduction: dict[str, object] | None) -> Driver:
    # a sensitive VAD (gate at -51 dBFS), as a quiet far microphone needs
    turn_detection = {"type": "server_vad", "threshold": 0.2, "create_response": False}
    return Driver(
        config={"audio": {"input": {"turn_detection": turn_detection, "noise_reduction": noise_reduction}}}
    )


@pytest.mark.parametrize(("noise_reduction", "false_turn"), [(None, True), ({"type": "far_field"}, False)])
def test_a_hum_opens_a_turn_only_without_noise_reduction(
    noise_reduction: dict[str, object] | None, false_turn: bool
) -> None:
    driver = session(noise_reduction)
    events = driver.append(hum(-45.0, 1.0))
    assert bool(of_type(events, "input_audio_buffer.speech_started")) is false_turn


def test_speech_goes_through_the_gate() -> None:
    driver = session({"type": "far_field", "strength": 0.5})
    events = driver.append(silence(200) + wav("hello_24k") + silence(800))
    assert len(of_type(events, "input_audio_buffer.speech_started")) >= 1


def test_the_gate_attenuates_quiet_blocks_and_keeps_loud_ones() -> None:
    gate = NoiseGate({"type": "near_field", "strength": 1.0})  # threshold -40 dBFS, closed gain -40 dB
    quiet, loud = hum(-50.0, 0.5), hum(-20.0, 0.5)
    out = gate.process(quiet + loud)
    assert len(out) == len(quiet + loud)
    assert rtlayer_native.rms_dbfs(out[: len(quiet)]) == pytest.approx(
        -90.0, abs=2.5
    )  # a few LSB: int16 rounding
    assert out[len(quiet) :] == loud
    assert gate.blocks_attenuated == 50
    # after speech, the gate stays open for its hangover: the soft end of a word is kept
    tail = hum(-50.0, 0.1)
    assert gate.process(tail) == tail
    assert NoiseGate({"type": "near_field", "strength": 0.0}).process(quiet) == quiet  # strength 0: off
