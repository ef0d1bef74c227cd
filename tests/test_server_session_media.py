"""Media mode (WebRTC, SIP): audio in from RTP, answers out through the paced media buffer, DTMF.

The front pulls one frame per packet time; the session knows what was played, so an interruption truncates
the answer at what the caller heard.
"""

from __future__ import annotations

from typing import Any

from helpers import Driver, of_type, silence, wav

from rtlayer.audio import PCM16_24K, PCM16_48K, PCMU, AudioConverter, AudioFormat


def feed(d: Driver, audio: bytes, fmt: AudioFormat, frame_ms: int = 20) -> list[dict[str, Any]]:
    size = fmt.bytes_for_ms(frame_ms)
    for offset in range(0, len(audio), size):
        d.session.receive_media_audio(audio[offset : offset + size], d.now)
        d.now += frame_ms / 1000
    return d.drain()


def pull_all(d: Driver, frame_bytes: int, limit: int = 1000) -> tuple[bytes, list[dict[str, Any]]]:
    out = bytearray()
    events: list[dict[str, Any]] = []
    for _ in range(limit):
        frame = d.session.pull_media_audio(frame_bytes, d.now)
        d.now += 0.02
        events += d.drain()
        if frame is None:
            break
        assert len(frame) == frame_bytes
        out += frame
    return bytes(out), events


async def test_webrtc_turn_is_answered_on_the_media_buffer_not_in_events() -> None:
    d = Driver(media=PCM16_48K)
    d.drain()
    speech = AudioConverter(PCM16_24K, PCM16_48K).convert(wav("joke_24k") + silence(600))
    events = feed(d, speech, PCM16_48K)
    stopped = of_type(events, "input_audio_buffer.speech_stopped")[0]["audio_end_ms"]
    started = of_type(events, "input_audio_buffer.speech_started")[0]["audio_start_ms"]
    answer = await d.run()
    assert "response.output_audio.delta" not in [e["type"] for e in answer]  # audio goes on the track
    assert "response.output_audio.done" in [e["type"] for e in answer]
    response_id = answer[-1]["response"]["id"]
    played, playback = pull_all(d, PCM16_48K.bytes_for_ms(20))
    assert [e["type"] for e in playback] == ["output_audio_buffer.started", "output_audio_buffer.stopped"]
    assert all(e["response_id"] == response_id for e in playback)
    # What plays is the turn, echoed, resampled to 48 kHz (frames are padded to 20 ms).
    assert abs(len(played) / 96 - (stopped - started)) <= 25


async def test_sip_barge_in_truncates_the_answer_at_what_was_heard() -> None:
    d = Driver(
        media=PCMU,
        config={
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}},
                "output": {"format": {"type": "audio/pcmu"}},
            }
        },
    )
    d.drain()
    caller = AudioConverter(PCM16_24K, PCMU)
    feed(d, caller.convert(wav("joke_24k") + silence(600)), PCMU)
    answer = await d.run()
    item_id = of_type(answer, "response.output_item.done")[0]["item"]["id"]
    for _ in range(15):  # 300 ms of the answer go out in 20 ms RTP packets
        assert d.session.pull_media_audio(160, d.now) is not None
        d.now += 0.02
    assert [e["type"] for e in d.drain()] == ["output_audio_buffer.started"]
    events = feed(d, caller.convert(wav("joke_24k")[:14400]), PCMU)  # the caller talks over it
    assert [e["type"] for e in events] == [
        "input_audio_buffer.speech_started",
        "conversation.item.truncated",
        "output_audio_buffer.cleared",
    ]
    truncated = events[1]
    assert truncated["item_id"] == item_id and truncated["audio_end_ms"] == 300
    assert d.session.pull_media_audio(160, d.now) is None
    # The item now holds 300 ms: a later truncate past that is refused.
    err = d.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 301}
    )
    assert err[0]["error"]["param"] == "audio_end_ms"


async def test_output_audio_buffer_clear_from_the_client() -> None:
    d = Driver(media=PCM16_48K)
    d.drain()
    d.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        }
    )
    d.send({"type": "response.create"})
    answer = await d.run()
    response_id = answer[-1]["response"]["id"]
    d.session.pull_media_audio(1920, d.now)
    d.drain()
    events = d.send({"type": "output_audio_buffer.clear"})
    assert [e["type"] for e in events] == ["conversation.item.truncated", "output_audio_buffer.cleared"]
    assert events[0]["audio_end_ms"] == 20 and events[1]["response_id"] == response_id


def test_dtmf_digits_become_events_without_event_id() -> None:
    d = Driver(media=PCMU)
    d.drain()
    for digit in "5#x":
        d.session.receive_dtmf(digit, d.now)
    events = d.drain()
    assert events == [
        {"type": "input_audio_buffer.dtmf_event_received", "event": "5", "received_at": int(d.now)},
        {"type": "input_audio_buffer.dtmf_event_received", "event": "#", "received_at": int(d.now)},
    ]
    assert d.session.dtmf_ignored == 1


def test_nothing_to_play_is_none() -> None:
    d = Driver(media=PCMU)
    d.drain()
    assert d.session.pull_media_audio(160, d.now) is None
    assert d.drain() == []


def test_a_sip_calls_formats_stay_the_callers_codec_whatever_an_update_says() -> None:
    pcmu = {"type": "audio/pcmu"}
    call = {"audio": {"input": {"format": pcmu}, "output": {"format": pcmu}}}
    d = Driver(media=PCMU, config=call, formats_fixed=True)
    d.drain()
    pcm = {"type": "audio/pcm", "rate": 24000}
    (updated,) = d.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"output": {"format": pcm}},
            },
        }
    )
    assert updated["session"]["instructions"] == "Be brief."  # the rest of the update applies
    assert (
        updated["session"]["audio"]["input"]["format"]
        == updated["session"]["audio"]["output"]["format"]
        == pcmu
    )
    assert d.session.formats_dropped == 1
    # a format that is not one stays a refusal, as anywhere: the update is validated before it is kept
    (error,) = d.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/mp3"}}}},
        }
    )
    assert error["type"] == "error" and error["error"]["param"] == "session.audio.input.format.type"
    assert d.session.formats_dropped == 1
    # the same update where the medium does not fix the formats (formats_fixed left False): it applies
    free = Driver(media=PCMU, config=call)
    free.drain()
    (changed,) = free.send(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"format": pcm}}}}
    )
    assert changed["session"]["audio"]["output"]["format"] == pcm
