"""The sans-I/O and small pieces of the WebRTC path: output gate, loopback ICE policy, framing, URLs."""

from __future__ import annotations

import time

import aioice.ice
import pytest
from av import AudioFrame
from helpers import tone

import rtlayer_native
from rtlayer._ice import host_policy, policy_for
from rtlayer._rtc_audio import FRAME_BYTES, FrameDownmixer, PacedAudioTrack, PcmFrameQueue
from rtlayer.audio import PCM16_24K, PCMU
from rtlayer.exceptions import RequestRefused
from rtlayer.server._webrtc_request import parse_call_request
from rtlayer.transports._connect import calls_url
from rtlayer.transports._webrtc_output import POST_ROLL, OutputGate

SILENT, LOUD = b"\x00" * 960, b"\x10" * 960

# -- OutputGate ------------------------------------------------------------------------------------


def started_gate() -> OutputGate:
    gate = OutputGate()
    gate.server_event(
        {
            "type": "response.output_item.added",
            "response_id": "resp_1",
            "item": {"type": "message", "id": "item_1"},
        }
    )
    return gate


def test_gate_drops_idle_silence_and_releases_the_answer_from_its_first_sound():
    gate = started_gate()
    assert gate.frame(SILENT, True) == [] and gate.frame(LOUD, False) == []  # RTP ahead of "started"
    gate.server_event({"type": "output_audio_buffer.started", "response_id": "resp_1"})
    passed = gate.frame(LOUD, False)
    assert [(f.response_id, f.item_id) for f in passed] == [("resp_1", "item_1")] * 2  # pre-roll + this one
    assert gate.delivered_ms("item_1") == 40


def test_gate_lets_a_short_tail_through_after_stopped():
    gate = started_gate()
    gate.server_event({"type": "output_audio_buffer.started", "response_id": "resp_1"})
    gate.frame(LOUD, False)
    gate.server_event({"type": "output_audio_buffer.stopped", "response_id": "resp_1"})
    tail = [gate.frame(LOUD, False) for _ in range(POST_ROLL + 2)]
    assert [len(t) for t in tail] == [1] * POST_ROLL + [0, 0]
    assert not gate.playing


def test_gate_passes_nothing_of_an_interrupted_response():
    gate = started_gate()
    gate.server_event({"type": "output_audio_buffer.started", "response_id": "resp_1"})
    assert gate.frame(LOUD, False)
    assert gate.interrupt() == "resp_1"
    assert gate.frame(LOUD, False) == []
    gate.server_event({"type": "output_audio_buffer.started", "response_id": "resp_1"})  # late, ignored
    assert gate.frame(LOUD, False) == [] and gate.interrupt() is None


# -- loopback ICE policy ---------------------------------------------------------------------------


def test_policy_is_scoped_and_aioice_default_is_untouched():
    with host_policy("default"):
        default = aioice.ice.get_host_addresses(True, True)
    assert "127.0.0.1" not in default
    with host_policy("loopback_only"):
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(False, True) == []
    with host_policy("allow_loopback"):
        assert aioice.ice.get_host_addresses(True, True) == [*default, "127.0.0.1"]
    assert aioice.ice.get_host_addresses(True, True) == default  # outside any block: aioice's own
    with pytest.raises(ValueError, match="unknown ICE policy"), host_policy("everything"):  # type: ignore[arg-type]
        pass


@pytest.mark.parametrize(
    ("host", "allow", "policy"),
    [
        ("127.0.0.1", None, "loopback_only"),
        ("localhost", True, "loopback_only"),
        ("::1", None, "loopback_only"),
        ("api.openai.com", None, "default"),
        ("api.openai.com", True, "allow_loopback"),
        ("127.0.0.1", False, "default"),
    ],
)
def test_policy_for_a_peer(host, allow, policy):
    assert policy_for(host, allow) == policy


# -- audio framing ---------------------------------------------------------------------------------


def test_queue_resamples_any_rate_to_exact_48k_frames():
    queue = PcmFrameQueue(16000, max_ms=100)
    queue.push(b"\x01\x00" * 16000)  # 1 s at 16 kHz, only 100 ms kept
    assert queue.dropped_frames == 45
    frames = [queue.pull() for _ in range(6)]
    assert all(len(f) == FRAME_BYTES for f in frames if f is not None)
    assert frames[-1] is None or frames[-2] is None
    queue.push(b"\x01\x00" * 10)  # less than a frame: padded when it is all there is
    assert len(queue.pull() or b"") == FRAME_BYTES and queue.pull() is None


async def test_paced_track_sends_20ms_frames_in_real_time_and_silence_when_muted():
    queue = PcmFrameQueue(24000)
    queue.push(tone(100))
    track = PacedAudioTrack(queue.pull)
    start = time.monotonic()
    frames = [await track.recv() for _ in range(8)]
    assert time.monotonic() - start >= 7 * 0.02 - 0.005  # paced: never faster than real time
    assert [f.pts for f in frames] == [i * 960 for i in range(8)]
    assert track.audio_frames_sent == 5  # 100 ms of tone (+ resampler tail), then silence
    track.muted = True
    queue.push(tone(100))
    muted = await track.recv()
    assert rtlayer_native.peak(bytes(muted.planes[0])) == 0
    track.stop()


def test_downmixer_takes_frames_to_the_apps_format():
    stereo = rtlayer_native.mono_to_stereo(rtlayer_native.Resampler(24000, 48000).process(tone(20)))
    frame = AudioFrame(format="s16", layout="stereo", samples=960)
    frame.planes[0].update(stereo[: 960 * 4])
    frame.sample_rate = 48000
    assert len(FrameDownmixer(PCM16_24K).process(frame)) == 960
    assert len(FrameDownmixer(PCMU).process(frame)) == 160


# -- signalling ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        (None, "https://api.openai.com/v1/realtime/calls"),  # a key and no URL: the hosted service
        ("127.0.0.1:9", "http://127.0.0.1:9/v1/realtime/calls"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9/v1/realtime/calls"),
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/realtime/calls"),
        ("ws://127.0.0.1:9/v1/realtime?model=m", "http://127.0.0.1:9/v1/realtime/calls"),
        ("https://example.test/v1/realtime/calls", "https://example.test/v1/realtime/calls"),
    ],
)
def test_calls_url(url, endpoint):
    assert calls_url(url) == endpoint


def test_calls_url_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="scheme"):
        calls_url("ftp://127.0.0.1/")
    with pytest.raises(ValueError, match="cannot tell"):
        calls_url("http://127.0.0.1/elsewhere")


def test_call_request_forms():
    offer = "v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 111\n"
    plain = parse_call_request("application/sdp", offer.encode())
    assert plain.sdp == "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" and plain.session is None
    body = (
        b'--b\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n' + offer.encode() + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="session"\r\n\r\n{"instructions": "hi"}\r\n--b--\r\n'
    )
    multipart = parse_call_request("multipart/form-data; boundary=b", body)
    assert multipart.session == {"instructions": "hi"} and multipart.sdp.startswith("v=0\r\n")
    with pytest.raises(RequestRefused, match="too large") as caught:
        parse_call_request("application/sdp", b"v=0" + b"x" * 300_000)
    assert caught.value.status == 413
