"""The turn detector and the input buffer on their own: gate arithmetic, onset, hysteresis, bounds."""

from __future__ import annotations

from helpers import silence, wav

import rtlayer_native
from rtlayer.server.core.input_audio import MAX_BUFFER_MS, InputAudio, TurnEnded, TurnStarted
from rtlayer.server.core.turn_detection import SpeechStarted, SpeechStopped, TurnDetector, threshold_to_dbfs

VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200}


def test_threshold_maps_onto_an_energy_gate() -> None:
    assert [threshold_to_dbfs(t) for t in (0.0, 0.5, 1.0)] == [-65.0, -30.0, 5.0]


def test_a_click_does_not_start_a_turn_but_30_ms_of_voice_does() -> None:
    tone = b"\x00\x20" * 2400  # 100 ms at -12 dBFS (a DC level: only the energy matters)
    detector = TurnDetector(VAD)
    assert detector.feed(silence(500) + tone[:960] + silence(500)) == []  # 20 ms: too short
    events = detector.feed(tone + silence(300))
    # Onset at 1020 ms of audio (500 + 20 + 500) minus 300 ms of prefix padding; the voice ends at 1120 ms and
    # the turn 200 ms later.
    assert events == [SpeechStarted(720), SpeechStopped(1320)]


def test_the_quiet_tail_of_a_word_does_not_end_the_turn() -> None:
    speech = wav("joke_24k")[4800:14400]
    tail = rtlayer_native.apply_gain(speech, 0.05)  # 26 dB down: well under the gate
    softer = rtlayer_native.apply_gain(speech, 0.6)  # 4.4 dB down: inside the hysteresis band
    detector = TurnDetector(VAD)
    events = detector.feed(speech + softer + softer + tail + silence(400))
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    # The turn runs through the softer part and ends 200 ms into what is well under the gate.
    stopped = events[1]
    assert isinstance(stopped, SpeechStopped) and stopped.audio_end_ms >= 600


def test_manual_buffer_is_bounded_and_counts_what_it_drops() -> None:
    buffer = InputAudio(None)
    ten_seconds = silence(10_000)
    for _ in range(MAX_BUFFER_MS // 10_000 + 1):
        assert buffer.feed(ten_seconds) == []
    assert buffer.buffer_ms == MAX_BUFFER_MS
    assert buffer.dropped_bytes == len(ten_seconds)
    assert buffer.start_ms == 10_000  # the buffer now begins 10 s into the audio clock
    item_id, pcm = buffer.take()
    assert item_id.startswith("item_") and len(pcm) == MAX_BUFFER_MS * 48 and buffer.buffer_ms == 0


def test_turns_carry_their_own_audio() -> None:
    buffer = InputAudio({**VAD, "silence_duration_ms": 500})
    speech = wav("joke_24k")
    turns = buffer.feed(silence(1000) + speech + silence(700))
    assert [type(t) for t in turns] == [TurnStarted, TurnEnded]
    started, ended = turns
    assert isinstance(started, TurnStarted) and isinstance(ended, TurnEnded)
    assert started.item_id == ended.item_id
    assert len(ended.pcm16_24k) == (ended.audio_end_ms - started.audio_start_ms) * 48
    assert buffer.buffer_ms == 1000 + len(speech) / 48 + 700 - ended.audio_end_ms
