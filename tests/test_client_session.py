"""ClientSession, sans-I/O: truncation arithmetic, barge-in after output_audio.done, sequencing, mute, config.

No sockets and no sleeping: time is the ``now`` argument.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import pytest

from rtlayer.audio import PCM16_16K, PCM16_24K, PCM16_48K, AudioFormat, PlaybackTracker
from rtlayer.client.session import ClientSession
from rtlayer.transport import AudioEvent, AudioInterruptedEvent, FunctionCallEvent


def session_event(fmt: AudioFormat, *, speed: float = 1.0, interrupt_response: bool = True) -> dict[str, Any]:
    return {
        "type": "session.updated",
        "session": {
            "type": "realtime",
            "audio": {
                "input": {
                    "format": fmt.to_session(),
                    "turn_detection": {"type": "server_vad", "interrupt_response": interrupt_response},
                },
                "output": {"format": fmt.to_session(), "speed": speed},
            },
        },
    }


def delta(nbytes: int, item_id: str = "item_a", response_id: str = "resp_a") -> dict[str, Any]:
    return {
        "type": "response.output_audio.delta",
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(b"\x01" * nbytes).decode(),
    }


def start_response(cs: ClientSession, response_id: str = "resp_a") -> None:
    cs.receive_event(
        {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}, 0.0
    )


def truncates(cs: ClientSession) -> list[dict[str, Any]]:
    return [e for e in cs.events_to_send() if e["type"] == "conversation.item.truncate"]


@pytest.mark.parametrize(
    ("fmt", "bytes_per_second"),
    [
        (AudioFormat("pcm16", 8000), 16000),
        (PCM16_16K, 32000),
        (PCM16_24K, 48000),
        (PCM16_48K, 96000),
        (AudioFormat("pcmu", 8000), 8000),
        (AudioFormat("pcma", 8000), 8000),
    ],
)
def test_truncate_at_what_the_tracker_says_was_played(fmt: AudioFormat, bytes_per_second: int) -> None:
    tracker = PlaybackTracker()
    cs = ClientSession(tracker=tracker, output_format=fmt)
    cs.receive_event(session_event(fmt), 0.0)
    start_response(cs)
    cs.receive_event(delta(bytes_per_second * 2), 0.0)  # 2 s received
    assert cs.audio_received_ms("item_a") == pytest.approx(2000.0)
    tracker.on_play_bytes("item_a", 0, bytes_per_second * 3 // 4)  # 750 ms played
    tracker.on_play_ms("item_a", 0, 0.9)
    cs.events_to_send()
    assert cs.interrupt(now=5.0)
    [truncate] = truncates(cs)
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 750,
    }
    assert isinstance(truncate["audio_end_ms"], int)


def test_truncate_never_beyond_the_audio_received() -> None:
    tracker = PlaybackTracker()
    cs = ClientSession(tracker=tracker)
    start_response(cs)
    cs.receive_event(delta(4800), 0.0)  # 100 ms
    tracker.on_play_ms("item_a", 0, 500.0)  # an app that over-reports
    cs.interrupt(now=1.0)
    assert truncates(cs)[0]["audio_end_ms"] == 100


def test_speed_does_not_change_the_arithmetic() -> None:
    """``speed`` is baked into the audio the server sends: 1 s played is 1 s of the item, at any speed."""
    for speed in (0.25, 1.0, 1.5):
        cs = ClientSession()
        cs.receive_event(session_event(PCM16_24K, speed=speed), 0.0)
        start_response(cs)
        cs.receive_event(delta(48000 * 3), 10.0)
        cs.events_to_send()
        cs.interrupt(now=11.0)
        assert truncates(cs)[0]["audio_end_ms"] == 1000


def test_playout_clock_without_tracker_and_barge_in_after_audio_done() -> None:
    cs = ClientSession()
    start_response(cs)
    cs.receive_event(delta(48000), 100.0)  # 1 s of audio at t=100
    cs.receive_event(delta(24000), 100.2)  # queued behind: 1.5 s in all, playing until t=101.5
    cs.receive_event(
        {
            "type": "response.output_audio.done",
            "response_id": "resp_a",
            "item_id": "item_a",
            "output_index": 0,
            "content_index": 0,
        },
        100.3,
    )
    cs.receive_event({"type": "response.done", "response": {"id": "resp_a", "status": "completed"}}, 100.4)
    cs.emitted()
    cs.events_to_send()
    # The server is done, but the user is still hearing buffered audio: the barge-in must still truncate.
    assert cs.heard_ms("item_a", 101.2) == pytest.approx(1200.0)
    cs.receive_event(
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "item_u"}, 101.2
    )
    sent = cs.events_to_send()
    assert sent == [
        {"type": "conversation.item.truncate", "item_id": "item_a", "content_index": 0, "audio_end_ms": 1200}
    ]
    interrupted = [p for n, p in cs.emitted() if n == "audio_interrupted"]
    assert interrupted == [AudioInterruptedEvent("item_a", 0, 1200, "resp_a")]


def test_no_truncate_once_everything_was_played() -> None:
    cs = ClientSession()
    start_response(cs)
    cs.receive_event(delta(4800), 0.0)
    cs.receive_event(
        {
            "type": "response.output_audio.done",
            "response_id": "resp_a",
            "item_id": "item_a",
            "content_index": 0,
        },
        0.05,
    )
    cs.events_to_send()
    assert not cs.interrupt(now=0.5)
    assert truncates(cs) == []


def test_speech_started_cancels_only_when_the_server_does_not() -> None:
    for interrupt_response, expect_cancel in ((True, False), (False, True)):
        cs = ClientSession()
        cs.receive_event(session_event(PCM16_24K, interrupt_response=interrupt_response), 0.0)
        start_response(cs)
        cs.receive_event(delta(48000), 0.0)
        cs.events_to_send()
        cs.receive_event(
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u"}, 0.25
        )
        types = [e["type"] for e in cs.events_to_send()]
        assert types == (
            ["response.cancel", "conversation.item.truncate"]
            if expect_cancel
            else ["conversation.item.truncate"]
        )


def test_late_deltas_of_an_interrupted_item_are_not_played() -> None:
    cs = ClientSession()
    start_response(cs)
    cs.receive_event(delta(4800), 0.0)
    cs.interrupt(now=0.01)
    cs.emitted()
    cs.receive_event(delta(4800), 0.02)
    names = [n for n, _ in cs.emitted()]
    assert "audio" not in names and names == ["*", "response.output_audio.delta"]


def test_output_converted_and_framed_for_the_app() -> None:
    cs = ClientSession(output_format=PCM16_48K, output_frame_ms=20)
    start_response(cs)
    cs.receive_event(delta(48000 // 10 + 200), 0.0)  # 100 ms + a bit, 24 kHz
    cs.receive_event(
        {
            "type": "response.output_audio.done",
            "response_id": "resp_a",
            "item_id": "item_a",
            "content_index": 0,
        },
        0.0,
    )
    frames = [p for n, p in cs.emitted() if n == "audio"]
    assert all(isinstance(f, AudioEvent) and len(f.data) == 1920 for f in frames)  # 20 ms at 48 kHz
    assert len(frames) == 6  # 104 ms -> 5 full frames + the padded remainder


def test_sequencer_coalesces_automatic_requests_and_waits_for_the_active_response() -> None:
    cs = ClientSession()
    start_response(cs)
    cs.send_message("one")
    cs.send_message("two")
    assert [e["type"] for e in cs.events_to_send()] == [
        "conversation.item.create",
        "conversation.item.create",
    ]
    cs.receive_event({"type": "response.done", "response": {"id": "resp_a", "status": "completed"}}, 0.0)
    creates = cs.events_to_send()
    assert [e["type"] for e in creates] == ["response.create"]  # two automatic requests, one response
    assert cs.sequencer.coalesced == 1
    cs.send_event({"type": "response.create", "response": {"instructions": "x"}})
    assert cs.events_to_send() == []  # the first is still in flight
    start_response(cs, "resp_b")
    cs.receive_event({"type": "response.done", "response": {"id": "resp_b", "status": "completed"}}, 0.0)
    [manual] = cs.events_to_send()
    assert manual["response"] == {"instructions": "x"}


def test_sequencer_retries_after_a_response_it_did_not_ask_for() -> None:
    cs = ClientSession()
    cs.request_response()
    [create] = cs.events_to_send()
    # A server-VAD response started first: the server refuses ours, naming it.
    cs.receive_event(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "busy",
                "event_id": create["event_id"],
            },
        },
        0.0,
    )
    assert cs.events_to_send() == []
    cs.receive_event({"type": "response.done", "response": {"id": "resp_vad", "status": "completed"}}, 0.0)
    assert [e["type"] for e in cs.events_to_send()] == ["response.create"]


def test_sequencer_drops_a_refused_manual_request_and_goes_on() -> None:
    cs = ClientSession()
    cs.send_event({"type": "response.create", "event_id": "mine", "response": {"max_output_tokens": 0}})
    cs.events_to_send()
    cs.request_response()
    assert cs.events_to_send() == []
    cs.receive_event(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "bad",
                "event_id": "mine",
            },
        },
        0.0,
    )
    [auto] = cs.events_to_send()
    assert auto["type"] == "response.create" and "response" not in auto


def test_function_call_event_and_output_round_trip() -> None:
    cs = ClientSession()
    cs.receive_event(
        {
            "type": "response.output_item.done",
            "response_id": "resp_a",
            "output_index": 0,
            "item": {
                "id": "item_f",
                "type": "function_call",
                "status": "completed",
                "name": "add",
                "call_id": "call_1",
                "arguments": '{"a": 1}',
            },
        },
        0.0,
    )
    [call] = [p for n, p in cs.emitted() if n == "function_call"]
    assert call == FunctionCallEvent("add", "call_1", '{"a": 1}', "item_f", "resp_a")
    cs.send_function_call_output(call, "2")
    assert [e["type"] for e in cs.events_to_send()] == ["conversation.item.create", "response.create"]


def test_mute_sends_silence_of_the_same_length() -> None:
    cs = ClientSession(input_format=PCM16_16K)
    loud = b"\x00\x40" * 320  # 20 ms at 16 kHz
    cs.mute(True)
    text = cs.encode_audio(loud)
    audio = base64.b64decode(text.split('"audio":"')[1].rstrip('"}'))
    assert len(audio) == 960 and audio.count(0) >= 950  # 20 ms at 24 kHz, silent (resampler rounding aside)
    assert cs.muted_bytes == len(loud)
    cs.mute(False)
    audio = base64.b64decode(cs.encode_audio(loud).split('"audio":"')[1].rstrip('"}'))
    assert max(audio) > 0


def test_legacy_initial_config_maps_to_ga() -> None:
    cs = ClientSession()
    update = cs.session_update(
        {
            "modalities": ["text"],
            "inputAudioFormat": "g711_ulaw",
            "voice": "alloy",
            "turn_detection": {"type": "server_vad", "silenceDurationMs": 300},
        },
        model="m",
    )
    assert update["session"] == {
        "type": "realtime",
        "model": "m",
        "output_modalities": ["text"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcmu"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
            },
            "output": {"voice": "alloy"},
        },
    }


def test_reset_history_deletes_and_recreates() -> None:
    cs = ClientSession()
    a = {"id": "a", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]}
    b = {"id": "b", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "b"}]}
    b2 = {**b, "content": [{"type": "input_text", "text": "B"}]}
    c = {"id": "c", "type": "message", "role": "system", "content": [{"type": "input_text", "text": "c"}]}
    cs.reset_history([a, b], [b2, c])
    sent = [(e["type"], e.get("item_id") or e["item"]["id"]) for e in cs.events_to_send()]
    assert sent == [
        ("conversation.item.delete", "a"),
        ("conversation.item.delete", "b"),
        ("conversation.item.create", "c"),
        ("conversation.item.create", "b"),
    ]


def test_audio_after_a_format_change_is_encoded_for_it_at_once() -> None:
    """The server applies session.update before the audio that follows it, so the client switches formats
    when it sends the update, not a round trip later when session.updated arrives."""
    cs = ClientSession(input_format=PCM16_16K)
    cs.update_session_config({"input_audio_format": "g711_ulaw"})
    text = cs.encode_audio(b"\x00\x10" * 320)  # 20 ms at 16 kHz
    assert len(base64.b64decode(text.split('"audio":"')[1].rstrip('"}'))) == 160  # 20 ms of 8 kHz mu-law


def test_odd_length_pcm_is_refused_clearly_and_the_session_goes_on() -> None:
    from rtlayer.exceptions import InvalidAudioError

    for cs in (ClientSession(), ClientSession(input_format=PCM16_16K)):
        with pytest.raises(InvalidAudioError, match="even number of bytes"):
            cs.encode_audio(b"\x00\x01\x02")
        assert cs.encode_audio(b"\x00\x00" * 160).startswith('{"type":"input_audio_buffer.append"')


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda cs: cs.send_event("response.create"), "a client event is a mapping"),
        (lambda cs: cs.send_event(None), "got NoneType"),
        (lambda cs: cs.send_message(42), "a message is a text (str) or a message item"),
        (lambda cs: cs.send_message({"content": "hi"}), "'content' of type str"),
        (lambda cs: cs.update_session_config("voice=ash"), "a session config is a mapping"),
        (lambda cs: cs.add_image(b"\x89PNG"), "an image is a data: URL (str), got bytes"),
    ],
)
def test_app_calls_of_the_wrong_shape_raise_at_the_call_and_the_session_goes_on(
    call: Callable[[ClientSession], None], message: str
) -> None:
    cs = ClientSession()
    with pytest.raises(TypeError, match=re.escape(message)):
        call(cs)
    assert cs.events_to_send() == []  # nothing half-sent
    cs.send_message("next")
    assert [e["type"] for e in cs.events_to_send()] == ["conversation.item.create", "response.create"]


def test_a_raw_session_update_also_switches_formats_and_is_sent_untouched() -> None:
    cs = ClientSession()
    raw = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"format": "g711_alaw"}}},
    }
    cs.send_event(raw)
    assert cs.events_to_send() == [raw]
    assert cs.session_input_format.codec == "pcma"


def server_session(kind: str, input_format: str, output_format: str) -> dict[str, Any]:
    def fmt(kind: str) -> dict[str, Any]:
        return {"type": kind, "rate": 24000} if kind == "audio/pcm" else {"type": kind}

    audio = {"input": {"format": fmt(input_format)}, "output": {"format": fmt(output_format)}}
    return {"type": kind, "session": {"type": "realtime", "audio": audio}}


def test_session_created_after_the_apps_format_update_does_not_switch_back() -> None:
    """The server greets a connection with session.created (its defaults, PCM16) before it reads the app's
    session.update; audio sent in between is already in the app's format, so the session must not convert
    it for the defaults (it garbled G.711 on the media-stream bridge)."""
    ulaw = AudioFormat("pcmu", 8000)
    cs = ClientSession(input_format=ulaw, output_format=ulaw)
    cs.update_session_config({"audio": {"input": {"format": "g711_ulaw"}, "output": {"format": "g711_ulaw"}}})
    cs.receive_event(server_session("session.created", "audio/pcm", "audio/pcm"), 0.0)
    assert (cs.session_input_format, cs.session_output_format) == (ulaw, ulaw)
    caller = bytes(range(160))  # 20 ms of mu-law, passed through untouched
    text = cs.encode_audio(caller)
    assert base64.b64decode(text.split('"audio":"')[1].rstrip('"}')) == caller
    cs.receive_event(delta(160), 0.0)
    assert [e.data for name, e in cs.emitted() if name == "audio"] == [b"\x01" * 160]

    cs.receive_event(server_session("session.updated", "audio/pcmu", "audio/pcmu"), 0.0)
    assert (cs.session_input_format, cs.session_output_format) == (ulaw, ulaw)


def test_session_created_still_sets_what_the_app_did_not_ask_for() -> None:
    cs = ClientSession()
    cs.update_session_config({"audio": {"input": {"format": "g711_alaw"}}})
    cs.receive_event(server_session("session.created", "audio/pcm", "audio/pcmu"), 0.0)
    assert cs.session_input_format == AudioFormat("pcma", 8000)
    assert cs.session_output_format == AudioFormat("pcmu", 8000)  # the server's: the app left it alone


def test_session_updated_says_what_the_server_applied() -> None:
    cs = ClientSession()
    cs.update_session_config({"audio": {"input": {"format": "g711_ulaw"}}})
    cs.receive_event(server_session("session.updated", "audio/pcm", "audio/pcm"), 0.0)
    assert cs.session_input_format == PCM16_24K  # refused or changed since: the server's word wins
