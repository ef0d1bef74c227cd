"""Turns through the sans-I/O ServerSession: text, server VAD, manual, semantic VAD, G.711 input, barge-in.

Each test is an example of driving the session directly: client events in, server events out (each one
validated against the official client's models by ``Driver.drain``), time as an argument.
"""

from __future__ import annotations

import base64

import pytest
from helpers import AUDIO_ANSWER_END, Driver, audio_bytes, of_type, silence, wav

import rtlayer_native
from rtlayer.audio import PCMA, PCMU, AudioConverter, AudioFormat

AUDIO_ANSWER = [
    "response.created",
    "rate_limits.updated",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
ONE_TURN = {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}}


def test_session_created_is_the_first_event_with_the_service_defaults() -> None:
    d = Driver()
    (created,) = d.drain()
    session = created["session"]
    assert created["type"] == "session.created"
    assert session["id"].startswith("sess_") and session["object"] == "realtime.session"
    assert session["expires_at"] == int(d.now) + 3600
    assert session["output_modalities"] == ["audio"]
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }


async def test_text_turn_is_echoed_as_text() -> None:
    d = Driver(config={"output_modalities": ["text"]})
    d.drain()
    added = d.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello there"}],
            },
        }
    )
    assert [e["type"] for e in added] == ["conversation.item.added", "conversation.item.done"]
    assert added[0]["item"]["id"].startswith("item_") and added[0]["previous_item_id"] is None
    assert [e["type"] for e in d.send({"type": "response.create"})] == [
        "response.created",
        "rate_limits.updated",
    ]
    events = await d.run()
    assert [e["type"] for e in events] == [
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
    ]
    assert of_type(events, "response.output_text.done")[0]["text"] == "Hello there"
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"] == [
        {"type": "output_text", "text": "Hello there"}
    ]
    assert done["usage"]["output_tokens"] > 0 and done["usage"]["input_tokens"] > 0


async def test_text_turn_with_audio_output_is_spoken() -> None:
    d = Driver()
    d.drain()
    d.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Good morning"}],
            },
        }
    )
    d.send({"type": "response.create"})
    events = await d.run()
    types = [e["type"] for e in events]
    assert types[:3] == AUDIO_ANSWER[2:] and types[-6:] == AUDIO_ANSWER_END
    assert of_type(events, "response.output_audio_transcript.done")[0]["transcript"] == "Good morning"
    pcm = audio_bytes(events)
    # espeak-ng (or the synthetic fallback) says two words in well under two seconds, at a speech level.
    assert 0.3 < len(pcm) / 48000 < 2.5
    assert -35 < rtlayer_native.rms_dbfs(pcm) < -10


async def test_audio_turn_with_server_vad_has_the_service_event_order() -> None:
    d = Driver(config=ONE_TURN)
    d.drain()
    speech = wav("hello_24k")
    events = d.append(speech + silence(1000))
    assert [e["type"] for e in events] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        *AUDIO_ANSWER[:2],
    ]
    started, stopped, committed, added = events[:4]
    assert started["item_id"] == stopped["item_id"] == committed["item_id"] == added["item"]["id"]
    assert 0 <= started["audio_start_ms"] < 100
    # The speech ends 2.9 s in (the WAV ends in 0.3 s of silence); the turn ends 500 ms of silence later:
    # VAD time is audio time.
    assert 2850 <= stopped["audio_end_ms"] - 500 <= 2950
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    answer = await d.run()
    assert [e["type"] for e in answer][-6:] == AUDIO_ANSWER_END
    # The echo says back the committed audio: its length is the turn's length.
    turn_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
    assert abs(len(audio_bytes(answer)) / 48 - turn_ms) <= 20
    transcript = of_type(answer, "response.output_audio_transcript.done")[0]["transcript"]
    assert transcript == f"Echo: [speech {turn_ms / 1000:.1f} s]"


async def test_default_silence_duration_splits_at_the_pause_and_the_second_turn_barges_in() -> None:
    d = Driver()
    d.drain()
    events = d.append(wav("hello_24k") + silence(600))
    types = [e["type"] for e in events]
    assert types.count("input_audio_buffer.speech_started") == 2
    # The first answer had not been run when the second turn began: it is cancelled, reason turn_detected.
    done = of_type(events, "response.done")[0]["response"]
    assert done["status"] == "cancelled" and done["status_details"]["reason"] == "turn_detected"
    stops = of_type(events, "input_audio_buffer.speech_stopped")
    starts = of_type(events, "input_audio_buffer.speech_started")
    assert starts[1]["audio_start_ms"] >= stops[0]["audio_end_ms"]  # padding never reaches into the last turn


async def test_silence_and_low_noise_do_not_trigger_the_vad() -> None:
    d = Driver()
    d.drain()
    noise = rtlayer_native.apply_gain(wav("hello_24k"), 0.01)  # speech 40 dB down: about -60 dBFS
    assert d.append(silence(1000) + noise + silence(500)) == []


async def test_threshold_moves_the_gate() -> None:
    quiet = rtlayer_native.apply_gain(wav("joke_24k"), 0.1)  # about -41 dBFS
    d = Driver(config={"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.2}}}})
    d.drain()
    assert "input_audio_buffer.speech_started" in [e["type"] for e in d.append(quiet + silence(400))]
    d = Driver(config={"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.8}}}})
    d.drain()
    assert d.append(wav("joke_24k") + silence(400)) == []


async def test_manual_turn_commit_then_response() -> None:
    d = Driver(config={"audio": {"input": {"turn_detection": None}}})
    d.drain()
    assert d.append(wav("joke_24k")) == []  # no VAD: nothing happens until the client commits
    events = d.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    assert [e["type"] for e in events] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert (
        d.send({"type": "input_audio_buffer.commit"})[0]["error"]["code"] == "input_audio_buffer_commit_empty"
    )
    d.send({"type": "response.create"})
    answer = await d.run()
    assert abs(len(audio_bytes(answer)) - len(wav("joke_24k"))) <= 4


@pytest.mark.parametrize(("eagerness", "wait_ms"), [("high", 250), ("auto", 500), ("low", 800)])
def test_semantic_vad_eagerness_sets_the_end_of_turn_wait(eagerness: str, wait_ms: int) -> None:
    d = Driver(
        config={"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": eagerness}}}}
    )
    d.drain()
    events = d.append(wav("joke_24k") + silence(1000))
    stopped = of_type(events, "input_audio_buffer.speech_stopped")
    assert len(stopped) == 1
    # joke_24k.wav's speech ends about 0.8 s in; the turn ends `wait_ms` of silence after that.
    assert 780 + wait_ms <= stopped[0]["audio_end_ms"] <= 860 + wait_ms


@pytest.mark.parametrize("fmt", [PCMU, PCMA], ids=["pcmu", "pcma"])
async def test_g711_input_is_detected_and_answered_in_g711(fmt: AudioFormat) -> None:
    kind = {"pcmu": "audio/pcmu", "pcma": "audio/pcma"}[fmt.codec]
    d = Driver(config={"audio": {"input": {"format": {"type": kind}}, "output": {"format": {"type": kind}}}})
    d.drain()
    encoded = AudioConverter(AudioFormat(), fmt).convert(wav("joke_24k"))
    events = d.append(encoded + silence(600, fmt), fmt=fmt)
    assert "input_audio_buffer.committed" in [e["type"] for e in events]
    answer = await d.run()
    out = audio_bytes(answer)
    stopped = of_type(events, "input_audio_buffer.speech_stopped")[0]["audio_end_ms"]
    started = of_type(events, "input_audio_buffer.speech_started")[0]["audio_start_ms"]
    assert abs(len(out) / 8 - (stopped - started)) <= 20  # 8 bytes a ms: G.711 at 8 kHz
    assert of_type(answer, "response.done")[0]["response"]["audio"]["output"]["format"] == {"type": kind}


async def test_barge_in_cancels_the_running_answer_with_every_done_event() -> None:
    d = Driver(config=ONE_TURN)
    d.drain()
    d.append(wav("joke_24k") + silence(600))
    partial = await d.run(max_parts=3)  # the answer is streaming ...
    assert "response.output_audio.delta" in [e["type"] for e in partial]
    events = d.append(wav("joke_24k")[:9600])  # ... when the user speaks again
    types = [e["type"] for e in events]
    assert types[0] == "input_audio_buffer.speech_started"
    assert types[1:] == AUDIO_ANSWER_END
    done = events[-1]["response"]
    assert done["status"] == "cancelled" and done["status_details"] == {
        "type": "cancelled",
        "reason": "turn_detected",
    }
    assert done["output"][0]["status"] == "incomplete"


async def test_interrupt_response_false_lets_the_answer_finish() -> None:
    d = Driver(
        config={"audio": {"input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}}}
    )
    d.drain()
    d.append(wav("joke_24k") + silence(600))
    await d.run(max_parts=2)
    assert [e["type"] for e in d.append(wav("joke_24k")[:9600])] == ["input_audio_buffer.speech_started"]


async def test_create_response_false_only_commits() -> None:
    d = Driver(
        config={"audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": False}}}}
    )
    d.drain()
    types = [e["type"] for e in d.append(wav("joke_24k") + silence(600))]
    assert "input_audio_buffer.committed" in types and "response.created" not in types


async def test_input_transcription_when_configured() -> None:
    d = Driver(
        config={
            "audio": {
                "input": {
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "create_response": False},
                }
            }
        }
    )
    d.drain()
    events = d.append(wav("joke_24k") + silence(600))
    item_id = of_type(events, "input_audio_buffer.committed")[0]["item_id"]
    after = await d.run()
    assert [e["type"] for e in after] == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    completed = after[1]
    assert completed["item_id"] == item_id and completed["transcript"].startswith("[speech ")
    assert completed["usage"]["type"] == "duration" and 0.8 < completed["usage"]["seconds"] < 1.2
    retrieved = d.send({"type": "conversation.item.retrieve", "item_id": item_id})[0]["item"]
    assert retrieved["content"][0]["transcript"] == completed["transcript"]


def test_idle_timeout_triggers_a_response_from_the_timer() -> None:
    d = Driver(
        config={"audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000}}}}
    )
    d.drain()
    assert d.session.get_timer() == pytest.approx(d.now + 6.0)
    d.append(silence(400))
    d.session.handle_timer(d.now + 1.0)  # not yet
    assert d.drain() == []
    d.session.handle_timer(d.now + 6.0)
    types = d.types()
    assert types[:4] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert types[4] == "response.created"
    assert d.session.input_buffer_ms == 0  # what the timeout committed left the buffer


def test_session_expires_with_an_error_and_closes() -> None:
    d = Driver(max_duration_s=120)
    d.drain()
    assert d.session.get_timer() == d.now + 120
    d.session.handle_timer(d.now + 120)
    (error,) = d.drain()
    assert error["error"]["code"] == "session_expired"
    assert d.session.closed and d.session.get_timer() is None
    d.send({"type": "response.create"})
    assert d.drain() == []  # a closed session answers nothing


def test_official_client_session_updates_before_and_after_session_created() -> None:
    d = Driver()
    # openai / openai-agents send session.update at once, without waiting for session.created ...
    d.session.receive_event(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "output_modalities": ["text"],
                "audio": {"input": {"format": {"type": "audio/pcmu"}}},
            },
        },
        d.now,
    )
    # ... and {"tracing": "auto"} when it arrives.
    d.session.receive_event(
        {"type": "session.update", "session": {"type": "realtime", "tracing": "auto"}}, d.now
    )
    created, first, second = d.drain()
    assert [created["type"], first["type"], second["type"]] == [
        "session.created",
        "session.updated",
        "session.updated",
    ]
    assert second["session"]["instructions"] == "Be brief." and second["session"]["tracing"] == "auto"
    assert second["session"]["id"] == created["session"]["id"]
    # The new input format applies to the very next append.
    events = d.append(
        AudioConverter(AudioFormat(), PCMU).convert(wav("joke_24k")) + silence(600, PCMU), fmt=PCMU
    )
    assert "input_audio_buffer.committed" in [e["type"] for e in events]


def test_legacy_beta_session_update_is_understood() -> None:
    d = Driver()
    d.drain()
    (updated,) = d.send(
        {
            "type": "session.update",
            "session": {
                "modalities": ["text", "audio"],
                "voice": "verse",
                "input_audio_format": "g711_alaw",
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 600},
            },
        }
    )
    audio = updated["session"]["audio"]
    assert audio["input"]["format"] == {"type": "audio/pcma"} and audio["output"]["voice"] == "verse"
    assert audio["input"]["turn_detection"]["silence_duration_ms"] == 600
    assert updated["session"]["output_modalities"] == ["audio"]


def test_a_failed_transcription_is_reported_as_failed() -> None:
    d = Driver(config={"audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}}})
    d.drain()
    d.append(wav("joke_24k"))
    item_id = d.send({"type": "input_audio_buffer.commit"})[0]["item_id"]
    (job,) = d.session.transcription_jobs()
    assert job.item_id == item_id and len(job.pcm16_24k) == len(wav("joke_24k"))
    d.session.transcription_result(item_id, None, d.now, error="no speech recognizer here")
    (failed,) = d.drain()
    assert failed["type"] == "conversation.item.input_audio_transcription.failed"
    assert failed["error"]["message"] == "no speech recognizer here"


@pytest.mark.parametrize("fmt", [PCMU, PCMA, AudioFormat()])
def test_retrieved_user_audio_comes_back_in_the_input_format(fmt: AudioFormat) -> None:
    d = Driver(config={"audio": {"input": {"format": fmt.to_session(), "turn_detection": None}}})
    d.drain()
    sent = AudioConverter(AudioFormat(), fmt, quality="high").convert(wav("hello_24k"))
    d.append(sent, fmt=fmt)
    item_id = of_type(d.send({"type": "input_audio_buffer.commit"}), "input_audio_buffer.committed")[0][
        "item_id"
    ]
    retrieved = d.send({"type": "conversation.item.retrieve", "item_id": item_id, "event_id": "evt_r"})[0]
    assert retrieved["type"] == "conversation.item.retrieved"
    got = base64.b64decode(retrieved["item"]["content"][0]["audio"])
    if fmt == AudioFormat():
        assert got == sent  # PCM16 24 kHz is kept as sent, byte for byte
    # Same length in the same format (give or take the resampler's rounding), and the same loudness.
    assert abs(len(got) - len(sent)) <= fmt.bytes_for_ms(2)
    level = [rtlayer_native.rms_dbfs(AudioConverter(fmt, AudioFormat()).convert(x)) for x in (sent, got)]
    assert abs(level[0] - level[1]) < 1.0, level


IDLE = {"audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 2000}}}}


async def test_idle_timeout_starts_when_the_answer_has_finished_playing() -> None:
    d = Driver(config=IDLE)
    d.drain()
    d.append(wav("hello_24k") + silence(600))
    answer = await d.run()
    played_s = len(audio_bytes(answer)) / 48_000
    assert played_s > 0.5
    # response.done time plus the answer's playback duration, plus the timeout (the service's rule)
    assert d.session.get_timer() == pytest.approx(d.now + played_s + 2.0)
    d.session.handle_timer(d.now + played_s + 1.9)
    assert d.drain() == []
    # The microphone keeps streaming silence in real time while the answer plays and after it.
    d.append(silence(int((played_s + 2.0) * 1000)))
    d.session.handle_timer(d.now)
    (triggered,) = of_type(d.drain(), "input_audio_buffer.timeout_triggered")
    # The segment is the silence after playback: about as long as the timeout.
    assert triggered["audio_end_ms"] - triggered["audio_start_ms"] == pytest.approx(2000, abs=30)


async def test_idle_timeout_restarts_when_the_client_truncates_playback() -> None:
    d = Driver(config=IDLE)
    d.drain()
    d.append(wav("joke_24k") + silence(600))
    answer = await d.run()
    item_id = of_type(answer, "response.output_item.added")[0]["item"]["id"]
    d.now += 0.5  # the client stops playback half a second in
    d.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 500}
    )
    assert d.session.get_timer() == pytest.approx(d.now + 2.0)


async def test_no_idle_prompt_while_the_user_is_still_speaking_after_a_barge_in() -> None:
    d = Driver(config=IDLE)
    d.drain()
    d.append(wav("joke_24k") + silence(600))
    await d.run(max_parts=3)  # the answer is streaming when the user speaks again
    speech = wav("joke_24k")
    assert "input_audio_buffer.speech_started" in [e["type"] for e in d.append(speech[:9600])]
    assert d.session.get_timer() == d.session.expires_at  # no idle deadline while they speak
    d.session.handle_timer(d.now + 30)
    assert "input_audio_buffer.timeout_triggered" not in [e["type"] for e in d.drain()]
